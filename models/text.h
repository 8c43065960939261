// Unicode helpers for the tokenizer; private to models/.
//
// Character classes and NFC come from ICU (libicu), so they follow the same
// Unicode data as the regex engines Hugging Face `tokenizers` uses:
//   \s    -> the White_Space property
//   \p{L} -> general category L*, \p{N} -> general category N*
//   \w    -> Alphabetic, M*, Nd, Pc, Join_Control (as in Rust's regex)
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace thalamus::models::text {

enum class CharClass : uint8_t { kSpace, kLetter, kNumber, kOther };

CharClass Classify(char32_t c);
bool IsWhiteSpace(char32_t c);
bool IsWordChar(char32_t c);

// Decodes the code point starting at text[pos] and advances pos. The text
// must be valid UTF-8 (checked by FirstInvalidUtf8 beforehand).
char32_t NextCodePoint(std::string_view text, size_t& pos);

// The byte offset of the first ill-formed sequence, or npos when the text is valid UTF-8.
size_t FirstInvalidUtf8(std::string_view text);

// NFC (canonical composition). The text must be valid UTF-8.
std::string Nfc(std::string_view text);

// Bytes to text, each maximal ill-formed subsequence replaced by U+FFFD
// (what Rust's String::from_utf8_lossy and `tokenizers` do).
std::string Utf8Lossy(std::string_view bytes);

// How many leading bytes can be shown now: everything except a trailing
// sequence that is incomplete yet could still become valid with more bytes.
size_t StableUtf8Prefix(std::string_view bytes);

}  // namespace thalamus::models::text
