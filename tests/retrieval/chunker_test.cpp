#include "retrieval/chunker.h"

#include <gtest/gtest.h>

#include <random>

#include "retrieval/text.h"

namespace thalamus::retrieval {
namespace {

size_t Chars(std::string_view text) { return CodePointOffsets(text).size() - 1; }

bool IsSpace(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

// The invariants every chunking must keep, whatever the text.
void CheckInvariants(const std::string& text, const ChunkOptions& options, const std::vector<TextChunk>& chunks) {
  std::vector<bool> covered(text.size(), false);
  const std::vector<Span> words = SplitWords(text);
  for (size_t i = 0; i < chunks.size(); ++i) {
    const TextChunk& chunk = chunks[i];
    ASSERT_LT(chunk.start, chunk.end);
    ASSERT_LE(chunk.end, text.size());
    const std::string_view piece = std::string_view(text).substr(chunk.start, chunk.end - chunk.start);
    EXPECT_FALSE(IsSpace(piece.front())) << "chunk " << i << " starts with whitespace";
    EXPECT_FALSE(IsSpace(piece.back())) << "chunk " << i << " ends with whitespace";
    EXPECT_NE(static_cast<unsigned char>(text[chunk.start]) & 0xC0, 0x80u) << "chunk " << i << " starts mid-character";
    if (options.unit == ChunkUnit::kCharacters) {
      EXPECT_LE(Chars(piece), options.size) << "chunk " << i;
    } else {
      size_t tokens = 0;
      for (const Span& w : words) tokens += w.begin >= chunk.start && w.end <= chunk.end;
      EXPECT_LE(tokens, options.size) << "chunk " << i;
    }
    if (i > 0) {
      EXPECT_GT(chunk.start, chunks[i - 1].start);
      if (chunk.start < chunks[i - 1].end) {
        const std::string_view shared = std::string_view(text).substr(chunk.start, chunks[i - 1].end - chunk.start);
        if (options.unit == ChunkUnit::kCharacters) {
          EXPECT_LE(Chars(shared), options.overlap) << "chunk " << i;
        }
      }
    }
    for (size_t b = chunk.start; b < chunk.end; ++b) covered[b] = true;
  }
  for (size_t b = 0; b < text.size(); ++b) {
    if (!IsSpace(text[b])) {
      ASSERT_TRUE(covered[b]) << "byte " << b << " is in no chunk";
    }
  }
}

TEST(Chunker, ShortTextIsOneTrimmedChunk) {
  const std::string text = "  \n Hello world. \n";
  const std::vector<TextChunk> chunks = ChunkText(text, {100, 10});
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(text.substr(chunks[0].start, chunks[0].end - chunks[0].start), "Hello world.");
}

TEST(Chunker, EmptyAndBlankTextHaveNoChunks) {
  EXPECT_TRUE(ChunkText("", {10, 2}).empty());
  EXPECT_TRUE(ChunkText(" \n\t \n", {10, 2}).empty());
}

TEST(Chunker, HardCutsTextWithoutBreaksWithExactOverlap) {
  const std::string text(100, 'x');
  const std::vector<TextChunk> chunks = ChunkText(text, {30, 10});
  ASSERT_EQ(chunks.size(), 5u);  // 0-30, 20-50, 40-70, 60-90, 80-100
  for (size_t i = 0; i < chunks.size(); ++i) {
    EXPECT_EQ(chunks[i].start, 20 * i);
    EXPECT_EQ(chunks[i].end, std::min<size_t>(20 * i + 30, 100));
  }
  CheckInvariants(text, {30, 10}, chunks);
}

TEST(Chunker, PrefersParagraphThenLineThenSentenceBreaks) {
  const std::string paragraph =
      "First paragraph has words. More words here\n\nSecond paragraph starts here and goes on";
  std::vector<TextChunk> chunks = ChunkText(paragraph, {60, 0});
  ASSERT_GE(chunks.size(), 2u);
  EXPECT_EQ(paragraph.substr(chunks[0].start, chunks[0].end - chunks[0].start),
            "First paragraph has words. More words here");

  const std::string sentences = "A first sentence that is long enough. Another one follows it, and then more text";
  chunks = ChunkText(sentences, {50, 0});
  EXPECT_EQ(sentences.substr(chunks[0].start, chunks[0].end - chunks[0].start),
            "A first sentence that is long enough.");
}

TEST(Chunker, OverlapStartsAtAWordBoundary) {
  const std::string text = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho";
  const ChunkOptions options{30, 12};
  const std::vector<TextChunk> chunks = ChunkText(text, options);
  ASSERT_GT(chunks.size(), 2u);
  for (size_t i = 1; i < chunks.size(); ++i) {
    EXPECT_LT(chunks[i].start, chunks[i - 1].end) << "chunks " << i - 1 << " and " << i << " should overlap";
    EXPECT_EQ(text[chunks[i].start - 1], ' ') << "chunk " << i << " starts mid-word";
  }
  CheckInvariants(text, options, chunks);
}

TEST(Chunker, CountsCharactersNotBytes) {
  std::string text;
  for (int i = 0; i < 50; ++i) text += "é";  // 2 bytes each
  const std::vector<TextChunk> chunks = ChunkText(text, {20, 5});
  ASSERT_EQ(chunks.size(), 3u);  // 0-20, 15-35, 30-50 characters
  EXPECT_EQ(chunks[0].end, 40u);
  EXPECT_EQ(chunks[1].start, 30u);
  CheckInvariants(text, {20, 5}, chunks);
}

TEST(Chunker, TokenUnitCountsWordsAndPunctuation) {
  const std::string text = "one two three, four five. six seven eight nine ten eleven twelve";
  const ChunkOptions options{5, 2, ChunkUnit::kTokens};
  const std::vector<TextChunk> chunks = ChunkText(text, options);
  ASSERT_FALSE(chunks.empty());
  EXPECT_EQ(text.substr(chunks[0].start, chunks[0].end - chunks[0].start), "one two three, four");
  CheckInvariants(text, options, chunks);
  // Two tokens of each chunk reappear at the start of the next.
  EXPECT_EQ(text.substr(chunks[1].start, 6), ", four");
}

TEST(Chunker, RandomTextsKeepInvariants) {
  std::mt19937 rng(7);
  const std::vector<std::string> pieces = {"word", "longerword", " ", " ", "\n", "\n\n", ". ", "ü", "你", ",", "x"};
  for (int trial = 0; trial < 200; ++trial) {
    std::string text;
    const int length = std::uniform_int_distribution<int>(0, 300)(rng);
    for (int i = 0; i < length; ++i) text += pieces[rng() % pieces.size()];
    const size_t size = std::uniform_int_distribution<size_t>(1, 80)(rng);
    const size_t overlap = std::uniform_int_distribution<size_t>(0, size - 1)(rng);
    for (ChunkUnit unit : {ChunkUnit::kCharacters, ChunkUnit::kTokens}) {
      const ChunkOptions options{size, overlap, unit};
      SCOPED_TRACE("trial " + std::to_string(trial) + " " + options.Signature());
      CheckInvariants(text, options, ChunkText(text, options));
      if (HasFatalFailure()) return;
    }
  }
}

TEST(Chunker, RejectsBadOptions) {
  EXPECT_THROW(ChunkText("abc", {0, 0}), std::invalid_argument);
  EXPECT_THROW(ChunkText("abc", {10, 10}), std::invalid_argument);
  EXPECT_THROW(ParseChunkUnit("bytes"), std::invalid_argument);
  EXPECT_EQ(ParseChunkUnit("tokens"), ChunkUnit::kTokens);
  EXPECT_EQ((ChunkOptions{500, 50, ChunkUnit::kTokens}).Signature(), "tokens:500:50");
}

}  // namespace
}  // namespace thalamus::retrieval
