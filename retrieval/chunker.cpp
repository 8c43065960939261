#include "retrieval/chunker.h"

#include <stdexcept>

#include "retrieval/text.h"

namespace thalamus::retrieval {
namespace {

bool IsSpaceByte(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// 1 after ASCII sentence punctuation (which needs a following space to end a
// sentence: "3.5", "a::b"), 2 after a CJK full stop or fullwidth ! or ?.
int SentenceEnd(std::string_view text, size_t end) {
  if (end == 0) return 0;
  const char c = text[end - 1];
  if (c == '.' || c == '!' || c == '?' || c == ';' || c == ':') return 1;
  if (end < 3) return 0;
  const std::string_view last = text.substr(end - 3, 3);
  return last == "\xE3\x80\x82" || last == "\xEF\xBC\x81" || last == "\xEF\xBC\x9F" ? 2 : 0;
}

// How good a place byte offset `pos` is to end a chunk, judged by what comes
// right before it: 4 blank line, 3 line break, 2 sentence end, 1 space, 0 none.
int BreakQuality(std::string_view text, size_t pos) {
  size_t i = pos;
  int newlines = 0;
  while (i > 0 && IsSpaceByte(text[i - 1])) {
    if (text[i - 1] == '\n') ++newlines;
    --i;
  }
  if (newlines >= 2) return 4;
  if (newlines == 1) return 3;
  const bool spaced = i < pos;
  const int sentence = SentenceEnd(text, i);
  if (sentence == 2 || (sentence == 1 && spaced)) return 2;
  return spaced ? 1 : 0;
}

// The units a chunk is measured in, as byte spans. Whitespace characters are
// units in character mode (they count towards the size) but never in token mode.
struct Units {
  std::vector<Span> spans;
  bool characters = true;
};

Units MakeUnits(std::string_view text, ChunkUnit unit) {
  Units units;
  units.characters = unit == ChunkUnit::kCharacters;
  if (!units.characters) {
    units.spans = SplitWords(text);
    return units;
  }
  const std::vector<size_t> offsets = CodePointOffsets(text);
  units.spans.reserve(offsets.size());
  for (size_t i = 0; i + 1 < offsets.size(); ++i) units.spans.push_back({offsets[i], offsets[i + 1]});
  return units;
}

bool IsBlank(std::string_view text, const Span& span) {
  for (size_t i = span.begin; i < span.end; ++i) {
    if (!IsSpaceByte(text[i])) return false;
  }
  return true;
}

// The end (exclusive unit index) of the chunk that starts at unit `s`.
size_t ChooseEnd(std::string_view text, const Units& units, size_t s, size_t size) {
  const size_t n = units.spans.size();
  if (n - s <= size) return n;
  const size_t window_end = s + size;
  size_t best = window_end;
  int best_quality = -1;
  for (size_t b = window_end; b > s + size / 2; --b) {
    const int quality = BreakQuality(text, units.spans[b].begin);
    if (quality > best_quality) best = b, best_quality = quality;
    if (quality == 4) break;  // nothing beats a blank line; the latest one wins
  }
  return best;
}

// Where the next chunk starts: `overlap` units back from `end`, moved forward
// to a word start inside the overlap (character mode) and past whitespace.
size_t NextStart(std::string_view text, const Units& units, size_t s, size_t end, size_t overlap) {
  size_t next = end > overlap ? end - overlap : 0;
  if (next <= s) next = s + 1;
  if (units.characters && next < end && next > 0 && !IsBlank(text, units.spans[next - 1])) {
    size_t word_start = next;
    while (word_start < end &&
           !(IsBlank(text, units.spans[word_start - 1]) && !IsBlank(text, units.spans[word_start]))) {
      ++word_start;
    }
    if (word_start < end) next = word_start;
  }
  while (next < units.spans.size() && IsBlank(text, units.spans[next])) ++next;
  return next;
}

}  // namespace

void ChunkOptions::Validate() const {
  if (size == 0) throw std::invalid_argument("chunk size must be at least 1");
  if (overlap >= size) {
    throw std::invalid_argument("chunk overlap (" + std::to_string(overlap) +
                                ") must be smaller than the chunk size (" + std::to_string(size) + ")");
  }
}

std::string ChunkOptions::Signature() const {
  return std::string(unit == ChunkUnit::kCharacters ? "chars" : "tokens") + ":" + std::to_string(size) + ":" +
         std::to_string(overlap);
}

ChunkUnit ParseChunkUnit(std::string_view name) {
  if (name == "chars" || name == "characters") return ChunkUnit::kCharacters;
  if (name == "tokens") return ChunkUnit::kTokens;
  throw std::invalid_argument("unknown chunk unit '" + std::string(name) + "' (expected chars or tokens)");
}

std::vector<TextChunk> ChunkText(std::string_view text, const ChunkOptions& options) {
  options.Validate();
  const Units units = MakeUnits(text, options.unit);
  const size_t n = units.spans.size();
  std::vector<TextChunk> chunks;
  size_t s = 0;
  while (s < n && IsBlank(text, units.spans[s])) ++s;
  while (s < n) {
    const size_t end = ChooseEnd(text, units, s, options.size);
    size_t last = end;
    while (last > s && IsBlank(text, units.spans[last - 1])) --last;
    chunks.push_back({units.spans[s].begin, units.spans[last - 1].end});
    if (end == n) break;
    s = NextStart(text, units, s, end, options.overlap);
  }
  return chunks;
}

}  // namespace thalamus::retrieval
