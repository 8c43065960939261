// The byte-level parts of GPT-2 style tokenizers; private to models/.
#pragma once

#include <array>
#include <functional>
#include <string>
#include <string_view>

namespace thalamus::models::byte_level {

// Splits text into words exactly as the GPT-2 pattern does under Oniguruma
// (what `tokenizers`' ByteLevel pre-tokenizer runs):
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// Hand-written over ICU character classes rather than run through a regex
// engine: no Debian regex library here has both Unicode classes on UTF-8 and
// lookahead except ICU's UTF-16 one, and this is a single linear pass.
// The text must be valid UTF-8; `word` receives consecutive, non-empty slices.
void SplitWords(std::string_view text, const std::function<void(std::string_view word)>& word);

// GPT-2's reversible byte <-> printable character map (bytes_to_unicode).
const std::array<char32_t, 256>& ByteToChar();

// The bytes a vocabulary string stands for: each character mapped back to its
// byte; a string with any character outside the map stands for its own UTF-8
// bytes (as the ByteLevel decoder does for added tokens such as "<|endoftext|>").
std::string TokenToBytes(std::string_view token);

}  // namespace thalamus::models::byte_level
