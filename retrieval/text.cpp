#include "retrieval/text.h"

#include <stdexcept>

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/ustring.h>
#include <unicode/utf8.h>

namespace thalamus::retrieval {
namespace {

constexpr UChar32 kReplacement = 0xFFFD;

// Decodes the code point at `i` and advances `i`; ill-formed bytes decode as
// U+FFFD one byte at a time.
UChar32 Next(std::string_view text, size_t& i) {
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  const size_t length = text.size();
  UChar32 c;
  U8_NEXT(s, i, length, c);
  return c < 0 ? kReplacement : c;
}

// Hugging Face's BertNormalizer::is_control: the "Other" categories, except
// the three control characters that count as whitespace.
bool IsControl(UChar32 c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  switch (u_charType(c)) {
    case U_CONTROL_CHAR:
    case U_FORMAT_CHAR:
    case U_SURROGATE:
    case U_PRIVATE_USE_CHAR:
    case U_UNASSIGNED: return true;
    default: return false;
  }
}

// Characters the BERT normalizer removes outright.
bool IsDropped(UChar32 c) { return c == 0 || c == kReplacement || IsControl(c); }

bool IsWhitespace(UChar32 c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || u_isUWhiteSpace(c); }

// ASCII punctuation (which includes symbols such as $ + < = > ^ ` |) or any
// Unicode punctuation category, as the BERT pre-tokenizer splits on.
bool IsPunctuation(UChar32 c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) return true;
  return c >= 128 && u_ispunct(c);
}

// The CJK Unified Ideographs blocks BERT isolates (not Hangul or kana).
bool IsCjk(UChar32 c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

const icu::Normalizer2& Nfd() {
  static const icu::Normalizer2* nfd = [] {
    UErrorCode status = U_ZERO_ERROR;
    const icu::Normalizer2* instance = icu::Normalizer2::getNFDInstance(status);
    if (U_FAILURE(status))
      throw std::runtime_error(std::string("ICU NFD normalizer unavailable: ") + u_errorName(status));
    return instance;
  }();
  return *nfd;
}

void AppendUtf8(UChar32 c, std::string& out) {
  char buffer[U8_MAX_LENGTH];
  size_t length = 0;
  U8_APPEND_UNSAFE(buffer, length, c);
  out.append(buffer, length);
}

// Full (possibly multi-character) lower-case mapping of one code point,
// without context: the Hugging Face normalizer maps character by character.
void AppendLower(UChar32 c, icu::UnicodeString& out) {
  if (c < 0x80) {
    out.append(static_cast<UChar32>(c >= 'A' && c <= 'Z' ? c + 32 : c));
    return;
  }
  UChar source[2];
  int32_t source_length = 0;
  U16_APPEND_UNSAFE(source, source_length, c);
  UChar lowered[8];
  UErrorCode status = U_ZERO_ERROR;
  const int32_t length = u_strToLower(lowered, 8, source, source_length, "", &status);
  if (U_FAILURE(status)) {
    out.append(c);
  } else {
    out.append(lowered, length);
  }
}

// Strips accents (NFD, then drops non-spacing marks) and lower-cases `text`.
icu::UnicodeString Normalize(const icu::UnicodeString& text, bool lowercase, bool strip_accents) {
  icu::UnicodeString decomposed;
  if (strip_accents) {
    UErrorCode status = U_ZERO_ERROR;
    Nfd().normalize(text, decomposed, status);
    if (U_FAILURE(status)) decomposed = text;
  } else {
    decomposed = text;
  }
  icu::UnicodeString result;
  for (int32_t i = 0; i < decomposed.length();) {
    const UChar32 c = decomposed.char32At(i);
    i += U16_LENGTH(c);
    if (strip_accents && u_charType(c) == U_NON_SPACING_MARK) continue;
    if (lowercase) {
      AppendLower(c, result);
    } else {
      result.append(c);
    }
  }
  return result;
}

bool IsAscii(std::string_view text) {
  for (unsigned char c : text) {
    if (c >= 0x80) return false;
  }
  return true;
}

std::string ToUtf8(const icu::UnicodeString& text) {
  std::string out;
  text.toUTF8String(out);
  return out;
}

}  // namespace

std::vector<Span> SplitWords(std::string_view text) {
  std::vector<Span> words;
  size_t word_begin = std::string_view::npos;
  size_t word_end = 0;
  auto close_word = [&] {
    if (word_begin != std::string_view::npos) words.push_back({word_begin, word_end});
    word_begin = std::string_view::npos;
  };
  for (size_t i = 0; i < text.size();) {
    const size_t begin = i;
    const UChar32 c = Next(text, i);
    if (IsDropped(c)) continue;  // invisible: neither splits nor joins
    if (IsWhitespace(c)) {
      close_word();
    } else if (IsPunctuation(c) || IsCjk(c)) {
      close_word();
      words.push_back({begin, i});
    } else {
      if (word_begin == std::string_view::npos) word_begin = begin;
      word_end = i;
    }
  }
  close_word();
  return words;
}

std::string NormalizeWord(std::string_view word, bool lowercase, bool strip_accents) {
  if (IsAscii(word)) {
    std::string out;
    out.reserve(word.size());
    for (char c : word) {
      if (IsDropped(static_cast<unsigned char>(c))) continue;
      out.push_back(lowercase && c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c);
    }
    return out;
  }
  icu::UnicodeString kept;
  for (size_t i = 0; i < word.size();) {
    const UChar32 c = Next(word, i);
    if (!IsDropped(c)) kept.append(IsWhitespace(c) ? UChar32{' '} : c);
  }
  return ToUtf8(Normalize(kept, lowercase, strip_accents));
}

std::vector<std::string> BasicTokenize(std::string_view text, bool lowercase, bool strip_accents) {
  // Normalize the whole text first, then split, in the order of the Hugging
  // Face pipeline (normalizer, then pre-tokenizer): normalization can turn a
  // character into punctuation (U+1FEF decomposes to '`').
  icu::UnicodeString cleaned;
  for (size_t i = 0; i < text.size();) {
    const UChar32 c = Next(text, i);
    if (IsDropped(c)) continue;
    if (IsWhitespace(c)) {
      cleaned.append(UChar32{' '});
    } else if (IsCjk(c)) {
      cleaned.append(UChar32{' '}).append(c).append(UChar32{' '});
    } else {
      cleaned.append(c);
    }
  }
  const icu::UnicodeString normalized = Normalize(cleaned, lowercase, strip_accents);
  std::vector<std::string> tokens;
  std::string current;
  auto flush = [&] {
    if (!current.empty()) tokens.push_back(std::move(current));
    current.clear();
  };
  for (int32_t i = 0; i < normalized.length();) {
    const UChar32 c = normalized.char32At(i);
    i += U16_LENGTH(c);
    if (IsWhitespace(c)) {
      flush();
    } else if (IsPunctuation(c)) {
      flush();
      AppendUtf8(c, current);
      flush();
    } else {
      AppendUtf8(c, current);
    }
  }
  flush();
  return tokens;
}

std::vector<size_t> CodePointOffsets(std::string_view text) {
  std::vector<size_t> offsets;
  offsets.reserve(text.size() + 1);
  for (size_t i = 0; i < text.size();) {
    offsets.push_back(i);
    Next(text, i);
  }
  offsets.push_back(text.size());
  return offsets;
}

bool LooksBinary(std::string_view bytes) {
  const auto* s = reinterpret_cast<const uint8_t*>(bytes.data());
  for (size_t i = 0; i < bytes.size();) {
    if (s[i] == 0) return true;
    if (s[i] < 0x80) {
      ++i;
      continue;
    }
    const size_t begin = i;
    UChar32 c;
    U8_NEXT(s, i, bytes.size(), c);
    if (c < 0) {
      // A sequence cut by the end of a sample is not evidence of binary data.
      const size_t expected = 1 + U8_COUNT_TRAIL_BYTES(s[begin]);
      return !(expected > 1 && begin + expected > bytes.size());
    }
  }
  return false;
}

}  // namespace thalamus::retrieval
