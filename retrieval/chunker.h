// retrieval/chunker: splits a document into overlapping passages.
//
// Sizes count characters (Unicode code points) or tokens (words and
// punctuation marks as retrieval/text.h splits them). A chunk ends at the
// best natural boundary in the second half of its window: a blank line, then
// a line break, then the end of a sentence, then a space; text without any is
// cut at the window's end. The next chunk starts `overlap` units before the
// previous end, moved forward to the start of a word when one begins inside
// the overlap. Chunks never split a UTF-8 sequence, never start or end with
// whitespace, and together cover every non-whitespace character.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace thalamus::retrieval {

enum class ChunkUnit { kCharacters, kTokens };

struct ChunkOptions {
  size_t size = 1000;    // units per chunk
  size_t overlap = 200;  // units shared with the previous chunk; < size
  ChunkUnit unit = ChunkUnit::kCharacters;

  // Throws std::invalid_argument when size is 0 or overlap >= size.
  void Validate() const;
  // "chars:1000:200": recorded with each source so that changing the options
  // re-chunks files on the next ingest.
  std::string Signature() const;
};

// "chars" / "characters" or "tokens"; throws std::invalid_argument otherwise.
ChunkUnit ParseChunkUnit(std::string_view name);

struct TextChunk {
  size_t start = 0;  // byte offsets into the document, [start, end)
  size_t end = 0;
};

// Throws std::invalid_argument for invalid options.
std::vector<TextChunk> ChunkText(std::string_view text, const ChunkOptions& options);

}  // namespace thalamus::retrieval
