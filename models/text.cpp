#include "models/text.h"

#include <stdexcept>

#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/utf8.h>

namespace thalamus::models::text {
namespace {

bool IsAscii(std::string_view text) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

}  // namespace

CharClass Classify(char32_t c) {
  if (IsWhiteSpace(c)) return CharClass::kSpace;
  uint32_t category = U_MASK(u_charType(static_cast<UChar32>(c)));
  if (category & U_GC_L_MASK) return CharClass::kLetter;
  if (category & U_GC_N_MASK) return CharClass::kNumber;
  return CharClass::kOther;
}

bool IsWhiteSpace(char32_t c) { return u_isUWhiteSpace(static_cast<UChar32>(c)); }

bool IsWordChar(char32_t c) {
  UChar32 code = static_cast<UChar32>(c);
  uint32_t category = U_MASK(u_charType(code));
  return u_hasBinaryProperty(code, UCHAR_ALPHABETIC) || (category & (U_GC_M_MASK | U_GC_ND_MASK | U_GC_PC_MASK)) ||
         u_hasBinaryProperty(code, UCHAR_JOIN_CONTROL);
}

char32_t NextCodePoint(std::string_view text, size_t& pos) {
  int32_t index = static_cast<int32_t>(pos);
  UChar32 c;
  U8_NEXT(text.data(), index, static_cast<int32_t>(text.size()), c);
  pos = static_cast<size_t>(index);
  return c < 0 ? U'\uFFFD' : static_cast<char32_t>(c);
}

size_t FirstInvalidUtf8(std::string_view text) {
  if (text.size() > static_cast<size_t>(INT32_MAX)) throw std::length_error("text longer than 2 GiB");
  int32_t index = 0, length = static_cast<int32_t>(text.size());
  while (index < length) {
    int32_t start = index;
    UChar32 c;
    U8_NEXT(text.data(), index, length, c);
    if (c < 0) return static_cast<size_t>(start);
  }
  return std::string_view::npos;
}

std::string Nfc(std::string_view text) {
  if (IsAscii(text)) return std::string(text);
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* nfc = icu::Normalizer2::getNFCInstance(status);
  if (U_FAILURE(status))
    throw std::runtime_error(std::string("ICU NFC normalizer unavailable: ") + u_errorName(status));
  std::string out;
  icu::StringByteSink<std::string> sink(&out, static_cast<int32_t>(text.size()));
  nfc->normalizeUTF8(0, icu::StringPiece(text.data(), static_cast<int32_t>(text.size())), sink, nullptr, status);
  if (U_FAILURE(status)) throw std::runtime_error(std::string("NFC normalization failed: ") + u_errorName(status));
  return out;
}

std::string Utf8Lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  int32_t index = 0, length = static_cast<int32_t>(bytes.size());
  while (index < length) {
    int32_t start = index;
    UChar32 c;
    // Since ICU 60, U8_NEXT skips exactly one maximal subpart of an ill-formed sequence.
    U8_NEXT(bytes.data(), index, length, c);
    if (c < 0) {
      out += "\xEF\xBF\xBD";
    } else {
      out.append(bytes.data() + start, static_cast<size_t>(index - start));
    }
  }
  return out;
}

size_t StableUtf8Prefix(std::string_view bytes) {
  // Find the last lead byte within the last 3 bytes and see whether what
  // follows it is a proper prefix of a well-formed sequence.
  size_t size = bytes.size();
  for (size_t back = 1; back <= 3 && back <= size; ++back) {
    unsigned char lead = static_cast<unsigned char>(bytes[size - back]);
    if ((lead & 0xC0) == 0x80) continue;  // a continuation byte: keep looking back
    size_t needed = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC2 ? 2 : 1;
    if (lead > 0xF4 || needed <= back) return size;  // complete, ASCII, or never valid
    unsigned char low = 0x80, high = 0xBF;           // allowed range of the second byte
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
    if (back >= 2) {
      unsigned char second = static_cast<unsigned char>(bytes[size - back + 1]);
      if (second < low || second > high) return size;
    }
    return size - back;
  }
  return size;
}

}  // namespace thalamus::models::text
