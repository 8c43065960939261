#include "models/tokenizer.h"

#include <algorithm>
#include <array>
#include <fstream>
#include <functional>
#include <queue>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "models/byte_level.h"
#include "models/text.h"

namespace thalamus::models {
namespace {

struct AddedToken {
  std::string content;  // as matched: NFC-normalized for normalized tokens
  int32_t id = 0;
  bool special = false, normalized = false, lstrip = false, rstrip = false, single_word = false;
};

struct Merge {
  int32_t rank;
  int32_t merged_id;
};

uint64_t PairKey(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

// The last character before `end` / the first at `begin`, for single_word.
char32_t CharBefore(std::string_view text, size_t end) {
  size_t start = end;
  do --start;
  while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80);
  return text::NextCodePoint(text, start);
}

size_t SkipSpacesBackward(std::string_view text, size_t end, size_t floor) {
  while (end > floor) {
    size_t start = end;
    do --start;
    while (start > floor && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80);
    size_t pos = start;
    if (!text::IsWhiteSpace(text::NextCodePoint(text, pos))) break;
    end = start;
  }
  return end;
}

size_t SkipSpacesForward(std::string_view text, size_t begin) {
  while (begin < text.size()) {
    size_t pos = begin;
    if (!text::IsWhiteSpace(text::NextCodePoint(text, pos))) break;
    begin = pos;
  }
  return begin;
}

// Added tokens matched leftmost-longest, as the Aho-Corasick automaton with
// MatchKind::LeftmostLongest in `tokenizers` does; `by_first_byte` keeps the
// scan to the few tokens that can start at a position.
class AddedTokenMatcher {
 public:
  void Add(AddedToken token) {
    if (token.content.empty()) return;
    tokens_.push_back(std::move(token));
  }
  void Finish() {
    std::stable_sort(tokens_.begin(), tokens_.end(),
                     [](const AddedToken& a, const AddedToken& b) { return a.content.size() > b.content.size(); });
    for (size_t i = 0; i < tokens_.size(); ++i)
      by_first_byte_[static_cast<unsigned char>(tokens_[i].content[0])].push_back(i);
  }

  // Calls piece(text, -1) for text between matches and piece({}, id) for each match.
  template <typename Fn>
  void Split(std::string_view text, Fn&& piece) const {
    size_t emitted = 0, pos = 0;
    while (pos < text.size()) {
      const AddedToken* token = LongestAt(text, pos);
      if (token == nullptr) {
        ++pos;
        continue;
      }
      size_t start = pos, stop = pos + token->content.size();
      pos = stop;
      if (token->single_word && !IsSingleWord(text, start, stop)) continue;
      if (token->lstrip) start = SkipSpacesBackward(text, start, emitted);
      if (token->rstrip) pos = stop = SkipSpacesForward(text, stop);
      if (emitted < start) piece(text.substr(emitted, start - emitted), -1);
      piece(std::string_view(), token->id);
      emitted = stop;
    }
    if (emitted < text.size()) piece(text.substr(emitted), -1);
  }

  bool empty() const { return tokens_.empty(); }

 private:
  const AddedToken* LongestAt(std::string_view text, size_t pos) const {
    for (size_t index : by_first_byte_[static_cast<unsigned char>(text[pos])]) {
      if (text.substr(pos).starts_with(tokens_[index].content)) return &tokens_[index];
    }
    return nullptr;
  }
  static bool IsSingleWord(std::string_view text, size_t start, size_t stop) {
    if (start > 0 && text::IsWordChar(CharBefore(text, start))) return false;
    size_t pos = stop;
    return stop == text.size() || !text::IsWordChar(text::NextCodePoint(text, pos));
  }

  std::vector<AddedToken> tokens_;
  std::array<std::vector<size_t>, 256> by_first_byte_;
};

}  // namespace

struct Tokenizer::Data {
  std::string source;
  bool nfc = false;
  bool add_prefix_space = false;
  bool use_regex = true;
  std::unordered_map<std::string, int32_t> token_ids;  // vocabulary strings and added tokens
  std::vector<std::string> id_bytes;                   // what each id decodes to
  std::vector<uint8_t> known, special;                 // per id
  std::array<int32_t, 256> byte_ids{};                 // BPE's starting symbols
  std::unordered_map<uint64_t, Merge> merges;
  AddedTokenMatcher raw_added, normalized_added;

  void EncodeWord(std::string_view word, std::vector<int32_t>& ids) const;
  void EncodeNormalized(std::string_view text, std::vector<int32_t>& ids) const;
};

// Merges the lowest-ranked adjacent pair first (the leftmost among equals),
// with a heap over a linked list of symbols: O(n log n) for long words.
void Tokenizer::Data::EncodeWord(std::string_view word, std::vector<int32_t>& ids) const {
  if (word.size() == 1) {
    ids.push_back(byte_ids[static_cast<unsigned char>(word[0])]);
    return;
  }
  struct Symbol {
    int32_t id, prev, next;
    bool alive;
  };
  struct Candidate {
    int32_t rank, pos, merged_id;
    bool operator>(const Candidate& other) const { return rank != other.rank ? rank > other.rank : pos > other.pos; }
  };
  const int32_t n = static_cast<int32_t>(word.size());
  std::vector<Symbol> symbols(n);
  for (int32_t i = 0; i < n; ++i)
    symbols[i] = {byte_ids[static_cast<unsigned char>(word[i])], i - 1, i + 1 < n ? i + 1 : -1, true};
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  auto consider = [&](int32_t left) {
    if (left < 0 || symbols[left].next < 0) return;
    auto found = merges.find(PairKey(symbols[left].id, symbols[symbols[left].next].id));
    if (found != merges.end()) queue.push({found->second.rank, left, found->second.merged_id});
  };
  for (int32_t i = 0; i + 1 < n; ++i) consider(i);
  while (!queue.empty()) {
    Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    if (!left.alive || left.next < 0) continue;
    auto found = merges.find(PairKey(left.id, symbols[left.next].id));
    if (found == merges.end() || found->second.merged_id != top.merged_id) continue;  // stale
    Symbol& right = symbols[left.next];
    left.id = top.merged_id;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    consider(left.prev);
    consider(top.pos);
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) ids.push_back(symbols[i].id);
}

void Tokenizer::Data::EncodeNormalized(std::string_view piece, std::vector<int32_t>& ids) const {
  std::string prefixed;
  if (add_prefix_space && !piece.starts_with(' ')) {
    prefixed.reserve(piece.size() + 1);
    prefixed.push_back(' ');
    prefixed.append(piece);
    piece = prefixed;
  }
  if (!use_regex) {
    EncodeWord(piece, ids);
    return;
  }
  byte_level::SplitWords(piece, [&](std::string_view word) { EncodeWord(word, ids); });
}

namespace {

std::string Utf8Of(char32_t c) {
  std::string out;
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
  return out;
}

std::string TypeOf(const nlohmann::json& section) {
  return section.is_object() && section.contains("type") && section["type"].is_string()
             ? section["type"].get<std::string>()
             : "";
}

// Each tokenizer.json section we accept; anything else is refused by name so
// a model never runs with a tokenizer that silently differs from its own.
void ReadPipeline(const nlohmann::json& root, Tokenizer::Data& data,
                  const std::function<std::runtime_error(std::string)>& fail) {
  const nlohmann::json null;
  const nlohmann::json& normalizer = root.contains("normalizer") ? root["normalizer"] : null;
  if (!normalizer.is_null()) {
    if (TypeOf(normalizer) != "NFC")
      throw fail("normalizer '" + TypeOf(normalizer) + "' is not supported (only NFC or none)");
    data.nfc = true;
  }
  const nlohmann::json& pre = root.contains("pre_tokenizer") ? root["pre_tokenizer"] : null;
  if (TypeOf(pre) != "ByteLevel") throw fail("pre_tokenizer '" + TypeOf(pre) + "' is not supported (only ByteLevel)");
  data.add_prefix_space = pre.value("add_prefix_space", true);
  data.use_regex = pre.value("use_regex", true);
  for (const char* section : {"decoder", "post_processor"}) {
    const nlohmann::json& value = root.contains(section) ? root[section] : null;
    if (!value.is_null() && TypeOf(value) != "ByteLevel") {
      throw fail(std::string(section) + " '" + TypeOf(value) + "' is not supported (only ByteLevel or none)");
    }
  }
}

void ReadModel(const nlohmann::json& model, Tokenizer::Data& data,
               const std::function<std::runtime_error(std::string)>& fail) {
  if (!model.is_object() || (model.contains("type") && TypeOf(model) != "BPE"))
    throw fail("model '" + TypeOf(model) + "' is not supported (only BPE)");
  if (!model.value("dropout", nlohmann::json()).is_null()) throw fail("BPE dropout is not supported");
  for (const char* affix : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    nlohmann::json value = model.value(affix, nlohmann::json());
    if (!value.is_null() && value != "") throw fail(std::string("BPE ") + affix + " is not supported");
  }
  if (model.value("byte_fallback", false)) throw fail("BPE byte_fallback is not supported");
  if (model.value("ignore_merges", false)) throw fail("BPE ignore_merges is not supported");
  if (!model.contains("vocab") || !model["vocab"].is_object()) throw fail("model has no 'vocab' object");
  for (const auto& [token, id] : model["vocab"].items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX)
      throw fail("vocab['" + token + "'] is not a valid id");
    data.token_ids[token] = id.get<int32_t>();
  }
  if (!model.contains("merges") || !model["merges"].is_array()) throw fail("model has no 'merges' array");
  auto id_of = [&](const std::string& token, size_t rank) {
    auto found = data.token_ids.find(token);
    if (found == data.token_ids.end())
      throw fail("merge " + std::to_string(rank) + ": '" + token + "' is not in the vocabulary");
    return found->second;
  };
  const auto& merges = model["merges"];
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    std::string left, right;
    if (merges[rank].is_string()) {
      std::string line = merges[rank].get<std::string>();
      size_t space = line.find(' ');
      if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos)
        throw fail("merge " + std::to_string(rank) + " is not 'a b'");
      left = line.substr(0, space);
      right = line.substr(space + 1);
    } else if (merges[rank].is_array() && merges[rank].size() == 2 && merges[rank][0].is_string() &&
               merges[rank][1].is_string()) {
      left = merges[rank][0].get<std::string>();
      right = merges[rank][1].get<std::string>();
    } else {
      throw fail("merge " + std::to_string(rank) + " is neither 'a b' nor [a, b]");
    }
    data.merges[PairKey(id_of(left, rank), id_of(right, rank))] = {static_cast<int32_t>(rank),
                                                                   id_of(left + right, rank)};
  }
}

void ReadAddedTokens(const nlohmann::json& root, Tokenizer::Data& data, std::vector<AddedToken>& added,
                     const std::function<std::runtime_error(std::string)>& fail) {
  if (!root.contains("added_tokens") || root["added_tokens"].is_null()) return;
  if (!root["added_tokens"].is_array()) throw fail("'added_tokens' is not an array");
  for (const auto& entry : root["added_tokens"]) {
    if (!entry.is_object() || !entry.contains("id") || !entry["id"].is_number_integer() ||
        entry["id"].get<int64_t>() < 0 || !entry.contains("content") || !entry["content"].is_string()) {
      throw fail("an added token lacks a valid 'id' or 'content'");
    }
    AddedToken token;
    token.content = entry["content"].get<std::string>();
    token.id = entry["id"].get<int32_t>();
    token.special = entry.value("special", false);
    token.normalized = entry.value("normalized", !token.special);
    token.lstrip = entry.value("lstrip", false);
    token.rstrip = entry.value("rstrip", false);
    token.single_word = entry.value("single_word", false);
    if (text::FirstInvalidUtf8(token.content) != std::string_view::npos)
      throw fail("added token " + std::to_string(token.id) + " is not UTF-8");
    data.token_ids[token.content] = token.id;
    added.push_back(std::move(token));
  }
}

}  // namespace

Tokenizer Tokenizer::FromFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("tokenizer: " + path + ": cannot open");
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) throw std::runtime_error("tokenizer: " + path + ": cannot read");
  return FromJson(contents.str(), path);
}

Tokenizer Tokenizer::FromJson(std::string_view json, const std::string& source) {
  auto fail = [&](const std::string& message) { return std::runtime_error("tokenizer: " + source + ": " + message); };
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(json);
  } catch (const nlohmann::json::exception& e) {
    throw fail(std::string("bad JSON: ") + e.what());
  }
  if (!root.is_object()) throw fail("not a JSON object");
  auto data = std::make_shared<Data>();
  data->source = source;
  std::vector<AddedToken> added;
  try {
    ReadPipeline(root, *data, fail);
    ReadModel(root.contains("model") ? root["model"] : nlohmann::json(), *data, fail);
    ReadAddedTokens(root, *data, added, fail);
  } catch (const nlohmann::json::exception& e) {
    throw fail(std::string("unexpected JSON: ") + e.what());
  }

  int32_t size = 0;
  for (const auto& [token, id] : data->token_ids) size = std::max(size, id + 1);
  data->id_bytes.assign(size, "");
  data->known.assign(size, 0);
  data->special.assign(size, 0);
  for (const auto& [token, id] : data->token_ids) {
    data->id_bytes[id] = byte_level::TokenToBytes(token);
    data->known[id] = 1;
  }
  for (int byte = 0; byte < 256; ++byte) {
    // 0xC0, 0xC1 and 0xF5..0xFF never occur in UTF-8 text, and GPT-NeoX lacks them.
    bool in_utf8 = byte < 0xC0 || (byte >= 0xC2 && byte <= 0xF4);
    auto found = data->token_ids.find(Utf8Of(byte_level::ByteToChar()[byte]));
    if (found != data->token_ids.end()) {
      data->byte_ids[byte] = found->second;
    } else if (in_utf8) {
      throw fail("the vocabulary lacks the symbol of byte " + std::to_string(byte));
    }
  }
  for (AddedToken& token : added) {
    // `tokenizers` keeps (and so decodes) a normalized token in its normalized form.
    if (token.normalized && data->nfc) token.content = text::Nfc(token.content);
    data->token_ids[token.content] = token.id;
    data->id_bytes[token.id] = byte_level::TokenToBytes(token.content);
    data->special[token.id] = token.special;
    (token.normalized ? data->normalized_added : data->raw_added).Add(token);
  }
  data->raw_added.Finish();
  data->normalized_added.Finish();
  return Tokenizer(std::move(data));
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text) const {
  size_t bad = text::FirstInvalidUtf8(text);
  if (bad != std::string_view::npos)
    throw std::invalid_argument("text is not valid UTF-8 (at byte " + std::to_string(bad) + ")");
  std::vector<int32_t> ids;
  const Data& data = *data_;
  data.raw_added.Split(text, [&](std::string_view raw, int32_t id) {
    if (id >= 0) {
      ids.push_back(id);
      return;
    }
    std::string normalized = data.nfc ? text::Nfc(raw) : std::string(raw);
    data.normalized_added.Split(normalized, [&](std::string_view piece, int32_t added_id) {
      if (added_id >= 0) {
        ids.push_back(added_id);
      } else {
        data.EncodeNormalized(piece, ids);
      }
    });
  });
  return ids;
}

std::string Tokenizer::Decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::string bytes;
  for (int32_t id : ids) {
    if (id < 0 || id >= VocabSize() || !data_->known[id]) continue;
    if (skip_special_tokens && data_->special[id]) continue;
    bytes += data_->id_bytes[id];
  }
  return text::Utf8Lossy(bytes);
}

const std::string& Tokenizer::TokenBytes(int32_t id) const {
  static const std::string kEmpty;
  return id >= 0 && id < VocabSize() ? data_->id_bytes[id] : kEmpty;
}

std::optional<int32_t> Tokenizer::TokenId(std::string_view token) const {
  auto found = data_->token_ids.find(std::string(token));
  if (found == data_->token_ids.end()) return std::nullopt;
  return found->second;
}

bool Tokenizer::IsSpecial(int32_t id) const { return id >= 0 && id < VocabSize() && data_->special[id]; }

int32_t Tokenizer::VocabSize() const { return static_cast<int32_t>(data_->id_bytes.size()); }

std::string StreamDecoder::Push(int32_t id) {
  if (skip_special_tokens_ && tokenizer_.IsSpecial(id)) return "";
  pending_ += tokenizer_.TokenBytes(id);
  size_t stable = text::StableUtf8Prefix(pending_);
  std::string out = text::Utf8Lossy(std::string_view(pending_).substr(0, stable));
  pending_.erase(0, stable);
  return out;
}

std::string StreamDecoder::Finish() {
  std::string out = text::Utf8Lossy(pending_);
  pending_.clear();
  return out;
}

}  // namespace thalamus::models
