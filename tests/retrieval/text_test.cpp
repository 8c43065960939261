#include "retrieval/text.h"

#include <gtest/gtest.h>

namespace thalamus::retrieval {
namespace {

std::vector<std::string> Words(std::string_view text) {
  std::vector<std::string> words;
  for (const Span& span : SplitWords(text)) words.emplace_back(text.substr(span.begin, span.end - span.begin));
  return words;
}

TEST(SplitWords, SplitsAtWhitespaceAndPunctuation) {
  EXPECT_EQ(Words("Hello, world!  foo_bar\tbaz"),
            (std::vector<std::string>{"Hello", ",", "world", "!", "foo", "_", "bar", "baz"}));
}

TEST(SplitWords, IsolatesCjkAndKeepsAccentedWordsWhole) {
  EXPECT_EQ(Words("Café 你好world"), (std::vector<std::string>{"Café", "你", "好", "world"}));
}

TEST(SplitWords, OffsetsPointIntoTheOriginalBytes) {
  const std::string text = "  naïve\nword ";
  const std::vector<Span> spans = SplitWords(text);
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(spans[0].begin, 2u);
  EXPECT_EQ(text.substr(spans[0].begin, spans[0].end - spans[0].begin), "naïve");
  EXPECT_EQ(text.substr(spans[1].begin, spans[1].end - spans[1].begin), "word");
}

TEST(NormalizeWord, StripsAccentsAndLowercases) {
  EXPECT_EQ(NormalizeWord("Crème"), "creme");
  EXPECT_EQ(NormalizeWord("ÅNGSTRÖM"), "angstrom");
  EXPECT_EQ(NormalizeWord("MiXeD"), "mixed");
  EXPECT_EQ(NormalizeWord("Crème", /*lowercase=*/false, /*strip_accents=*/false), "Crème");
}

TEST(BasicTokenize, MatchesBertBasicTokenizer) {
  // "°" is a symbol (So), not punctuation: it stays in the word, as in BERT.
  EXPECT_EQ(BasicTokenize("Héllo, WORLD! It's 3.5°C."),
            (std::vector<std::string>{"hello", ",", "world", "!", "it", "'", "s", "3", ".", "5°c", "."}));
  // Control characters vanish; the zero-width joiner (Cf) too.
  EXPECT_EQ(BasicTokenize("a\x01"
                          "b c\xE2\x80\x8D"
                          "d"),
            (std::vector<std::string>{"ab", "cd"}));
  EXPECT_EQ(BasicTokenize("東京タワー"), (std::vector<std::string>{"東", "京", "タワー"}));
}

TEST(BasicTokenize, InvalidUtf8IsDropped) {
  EXPECT_EQ(BasicTokenize("ab\xFF"
                          "cd"),
            (std::vector<std::string>{"abcd"}));
}

TEST(CodePointOffsets, CountsCharactersNotBytes) {
  EXPECT_EQ(CodePointOffsets("aé€𝄞"), (std::vector<size_t>{0, 1, 3, 6, 10}));
  EXPECT_EQ(CodePointOffsets(""), (std::vector<size_t>{0}));
}

TEST(LooksBinary, DetectsNulAndInvalidUtf8) {
  EXPECT_FALSE(LooksBinary("plain text\nwith ünïcode"));
  EXPECT_TRUE(LooksBinary(std::string("abc\0def", 7)));
  EXPECT_TRUE(LooksBinary("abc\xFF\xFE"));
  EXPECT_TRUE(LooksBinary("\x89PNG\r\n\x1a\n\x80\x80"));
  // A multi-byte sequence cut by the end of a sample is not binary.
  EXPECT_FALSE(LooksBinary("price: 5 \xE2\x82"));
}

}  // namespace
}  // namespace thalamus::retrieval
