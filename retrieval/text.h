// retrieval/text: Unicode-aware splitting and normalization of UTF-8 text, as
// BERT's basic tokenizer does it (Hugging Face BertNormalizer + BertPreTokenizer):
// control characters dropped, whitespace and punctuation split, every CJK
// ideograph its own word, accents stripped (NFD, drop non-spacing marks) and
// lower-cased. Character classes and case mapping come from ICU.
//
// All offsets are byte offsets into the UTF-8 input. Invalid UTF-8 bytes are
// treated like U+FFFD, which BERT drops. Functions are pure and thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace thalamus::retrieval {

struct Span {
  size_t begin = 0;  // byte offsets, [begin, end)
  size_t end = 0;
};

// Words as the BERT pre-tokenizer sees them, in the original text: runs of
// characters that are neither whitespace, punctuation, control nor CJK; each
// punctuation character and each CJK ideograph is a word of its own.
std::vector<Span> SplitWords(std::string_view text);

// One word, normalized: accents stripped (when strip_accents) and lower-cased
// (when lowercase), control characters dropped.
std::string NormalizeWord(std::string_view word, bool lowercase = true, bool strip_accents = true);

// BERT's basic tokenizer: the normalized words of `text`, in order.
std::vector<std::string> BasicTokenize(std::string_view text, bool lowercase = true, bool strip_accents = true);

// Byte offsets of each code point start, plus text.size() at the end.
std::vector<size_t> CodePointOffsets(std::string_view text);

// True when `bytes` looks like a binary file: a NUL byte, or invalid UTF-8
// (a sequence cut off by the end of `bytes` does not count, so a prefix of a
// file can be tested).
bool LooksBinary(std::string_view bytes);

}  // namespace thalamus::retrieval
