#include "models/byte_level.h"

#include <unordered_map>
#include <vector>

#include "models/text.h"

namespace thalamus::models::byte_level {
namespace {

using text::CharClass;

struct Chars {
  std::vector<CharClass> classes;
  std::vector<size_t> offsets;  // byte offset of each character, plus the end
};

Chars Decode(std::string_view text) {
  Chars chars;
  chars.classes.reserve(text.size());
  chars.offsets.reserve(text.size() + 1);
  size_t pos = 0;
  while (pos < text.size()) {
    chars.offsets.push_back(pos);
    unsigned char byte = static_cast<unsigned char>(text[pos]);
    char32_t c = byte < 0x80 ? (++pos, byte) : text::NextCodePoint(text, pos);
    chars.classes.push_back(text::Classify(c));
  }
  chars.offsets.push_back(text.size());
  return chars;
}

// Length in characters of the contraction ('s 't 're 've 'm 'll 'd) at i, or 0.
size_t Contraction(std::string_view text, const Chars& chars, size_t i) {
  size_t n = chars.classes.size();
  if (text[chars.offsets[i]] != '\'' || i + 1 >= n) return 0;
  char a = text[chars.offsets[i + 1]];
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (i + 2 >= n) return 0;
  char b = text[chars.offsets[i + 2]];
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

size_t RunOf(const Chars& chars, size_t i, CharClass kind) {
  size_t j = i;
  while (j < chars.classes.size() && chars.classes[j] == kind) ++j;
  return j;
}

// The end (in characters) of the word starting at character i.
size_t WordEnd(std::string_view text, const Chars& chars, size_t i) {
  const size_t n = chars.classes.size();
  if (size_t length = Contraction(text, chars, i)) return i + length;
  // " ?X+" for X = letters, numbers, others: an optional literal space, then a run.
  size_t start = i;
  if (text[chars.offsets[i]] == ' ' && i + 1 < n && chars.classes[i + 1] != CharClass::kSpace) start = i + 1;
  if (chars.classes[start] != CharClass::kSpace) return RunOf(chars, start, chars.classes[start]);
  // Whitespace: "\s+(?!\S)" keeps the last space for the next word when a
  // non-space follows; a single space before a non-space falls to "\s+".
  size_t end = RunOf(chars, i, CharClass::kSpace);
  if (end == n || end - i == 1) return end;
  return end - 1;
}

}  // namespace

void SplitWords(std::string_view text, const std::function<void(std::string_view)>& word) {
  Chars chars = Decode(text);
  size_t i = 0;
  while (i < chars.classes.size()) {
    size_t end = WordEnd(text, chars, i);
    word(text.substr(chars.offsets[i], chars.offsets[end] - chars.offsets[i]));
    i = end;
  }
}

const std::array<char32_t, 256>& ByteToChar() {
  static const std::array<char32_t, 256> map = [] {
    std::array<char32_t, 256> table{};
    char32_t next = 256;
    for (int byte = 0; byte < 256; ++byte) {
      bool printable = (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) || (byte >= 0xAE && byte <= 0xFF);
      table[byte] = printable ? static_cast<char32_t>(byte) : next++;
    }
    return table;
  }();
  return map;
}

std::string TokenToBytes(std::string_view token) {
  static const std::unordered_map<char32_t, char> char_to_byte = [] {
    std::unordered_map<char32_t, char> map;
    for (int byte = 0; byte < 256; ++byte) map[ByteToChar()[byte]] = static_cast<char>(byte);
    return map;
  }();
  if (text::FirstInvalidUtf8(token) != std::string_view::npos) return std::string(token);
  std::string bytes;
  size_t pos = 0;
  while (pos < token.size()) {
    auto found = char_to_byte.find(text::NextCodePoint(token, pos));
    if (found == char_to_byte.end()) return std::string(token);
    bytes.push_back(found->second);
  }
  return bytes;
}

}  // namespace thalamus::models::byte_level
