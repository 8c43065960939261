// The feature-hashing embedder (Weinberger et al., "Feature Hashing for Large
// Scale Multitask Learning"): no vocabulary, no weights, one pass over the text.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "retrieval/embedder.h"
#include "retrieval/text.h"

namespace thalamus::retrieval {
namespace {

// Feature families get different seeds so "ab" the word and "ab" the n-gram
// land in unrelated buckets.
constexpr uint64_t kWordSeed = 0x9E3779B97F4A7C15ull;
constexpr uint64_t kBigramSeed = 0xC2B2AE3D27D4EB4Full;
constexpr uint64_t kSubwordSeed = kWordSeed;  // "OpenFile" adds the words "open" and "file"
constexpr uint64_t kNgramSeed = 0x165667B19E3779F9ull;

constexpr float kWordWeight = 1.0f;
constexpr float kStopWordWeight = 0.1f;
constexpr float kBigramWeight = 0.5f;
constexpr float kSubwordWeight = 0.5f;
constexpr float kNgramWeight = 0.2f;
constexpr size_t kMinNgramWordBytes = 4;

// splitmix64's finalizer: spreads every input bit over the output.
uint64_t Mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// FNV-1a over the bytes, then mixed with the family seed.
uint64_t Hash(std::string_view bytes, uint64_t seed) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001B3ull;
  }
  return Mix(h ^ seed);
}

bool IsStopWord(std::string_view word) {
  static constexpr std::string_view kStopWords[] = {
      "a",    "an",   "and",  "are",   "as",    "at",   "be",    "but",   "by",   "for",  "from", "has",
      "have", "if",   "in",   "into",  "is",    "it",   "its",   "no",    "not",  "of",   "on",   "or",
      "so",   "such", "that", "the",   "their", "then", "there", "these", "they", "this", "to",   "was",
      "were", "will", "with", "which", "we",    "you",  "can",   "do",    "does", "i"};
  return std::find(std::begin(kStopWords), std::end(kStopWords), word) != std::end(kStopWords);
}

bool IsAsciiPunctuation(std::string_view word) {
  return word.size() == 1 && !((word[0] >= '0' && word[0] <= '9') || (word[0] >= 'a' && word[0] <= 'z') ||
                               static_cast<unsigned char>(word[0]) >= 0x80);
}

// Parts of an identifier split at lower-to-upper and letter-digit changes:
// "parseHTTPRequest2" -> parse, HTTP, Request, 2.
std::vector<std::string_view> IdentifierParts(std::string_view raw) {
  std::vector<std::string_view> parts;
  auto kind = [](char c) { return c >= 'a' && c <= 'z' ? 0 : c >= 'A' && c <= 'Z' ? 1 : c >= '0' && c <= '9' ? 2 : 3; };
  size_t begin = 0;
  for (size_t i = 1; i < raw.size(); ++i) {
    const int a = kind(raw[i - 1]), b = kind(raw[i]);
    const bool lower_to_upper = a == 0 && b == 1;
    const bool acronym_end = a == 1 && b == 1 && i + 1 < raw.size() && kind(raw[i + 1]) == 0;
    const bool digit_change = (a == 2) != (b == 2);
    if (lower_to_upper || acronym_end || digit_change) {
      parts.push_back(raw.substr(begin, i - begin));
      begin = i;
    }
  }
  parts.push_back(raw.substr(begin));
  return parts;
}

class FeatureBag {
 public:
  void Add(uint64_t hash, float weight) { weights_[hash] += weight; }

  // Sublinear term frequency keeps one repeated word from dominating a passage.
  void WriteNormalized(size_t dim, float* out) const {
    std::fill(out, out + dim, 0.0f);
    for (const auto& [hash, weight] : weights_) {
      const float value = weight <= 1.0f ? weight : 1.0f + std::log(weight);
      out[hash % dim] += (hash >> 63) ? -value : value;
    }
    double norm = 0;
    for (size_t i = 0; i < dim; ++i) norm += static_cast<double>(out[i]) * out[i];
    if (norm <= 0) return;
    const float scale = static_cast<float>(1.0 / std::sqrt(norm));
    for (size_t i = 0; i < dim; ++i) out[i] *= scale;
  }

 private:
  std::unordered_map<uint64_t, float> weights_;
};

void AddNgrams(const std::string& word, FeatureBag& bag) {
  const std::string padded = "<" + word + ">";
  const std::vector<size_t> offsets = CodePointOffsets(padded);
  const size_t chars = offsets.size() - 1;
  for (size_t n = 3; n <= 4; ++n) {
    for (size_t i = 0; i + n <= chars; ++i) {
      bag.Add(Hash(std::string_view(padded).substr(offsets[i], offsets[i + n] - offsets[i]), kNgramSeed + n),
              kNgramWeight);
    }
  }
}

}  // namespace

HashingEmbedder::HashingEmbedder(size_t dim) : dim_(dim) {
  if (dim < 16)
    throw std::invalid_argument("hashing embedder: dimension must be at least 16, got " + std::to_string(dim));
}

std::string HashingEmbedder::id() const { return "hashing-v1:" + std::to_string(dim_); }

void HashingEmbedder::Embed(std::string_view text, float* out) const {
  FeatureBag bag;
  uint64_t previous = 0;
  bool has_previous = false;
  for (const Span& span : SplitWords(text)) {
    const std::string_view raw = text.substr(span.begin, span.end - span.begin);
    const std::string word = NormalizeWord(raw);
    if (word.empty() || IsAsciiPunctuation(word)) continue;
    const uint64_t hash = Hash(word, kWordSeed);
    bag.Add(hash, IsStopWord(word) ? kStopWordWeight : kWordWeight);
    if (has_previous) bag.Add(Mix(previous * 31 + hash) ^ kBigramSeed, kBigramWeight);
    previous = hash;
    has_previous = true;
    const std::vector<std::string_view> parts = IdentifierParts(raw);
    if (parts.size() > 1) {
      for (std::string_view part : parts) bag.Add(Hash(NormalizeWord(part), kSubwordSeed), kSubwordWeight);
    }
    if (word.size() >= kMinNgramWordBytes) AddNgrams(word, bag);
  }
  bag.WriteNormalized(dim_, out);
}

void HashingEmbedder::EmbedDocuments(const std::vector<std::string>& texts, float* out) const {
  const size_t n = texts.size();
  const size_t threads = std::min<size_t>(std::max(1u, std::thread::hardware_concurrency()), n / 16);
  if (threads <= 1) {
    for (size_t i = 0; i < n; ++i) Embed(texts[i], out + i * dim_);
    return;
  }
  std::vector<std::thread> workers;
  for (size_t t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (size_t i = t; i < n; i += threads) Embed(texts[i], out + i * dim_);
    });
  }
  for (std::thread& worker : workers) worker.join();
}

}  // namespace thalamus::retrieval
