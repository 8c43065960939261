#include "models/tokenizer.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

namespace thalamus::models {
namespace {

const std::string kDataDir = std::string(THALAMUS_TEST_DATA_DIR) + "/models";
const std::string kNeoxTokenizer = std::string(THALAMUS_TEST_DATA_DIR) + "/tokenizers/gpt-neox-20b/tokenizer.json";

// Expected ids and texts written by tools/fixtures/make_model_fixtures.py
// with Hugging Face `tokenizers`.
const nlohmann::json& Cases() {
  static const nlohmann::json cases = [] {
    std::ifstream in(kDataDir + "/tokenizer_cases.json");
    EXPECT_TRUE(in.good()) << "missing " << kDataDir << "/tokenizer_cases.json";
    return nlohmann::json::parse(in);
  }();
  return cases;
}

std::vector<int32_t> Ids(const nlohmann::json& ids) { return ids.get<std::vector<int32_t>>(); }

void ExpectMatchesHuggingFace(const Tokenizer& tokenizer, const std::string& name) {
  const nlohmann::json& texts = Cases()["texts"];
  const nlohmann::json& expected = Cases()[name];
  ASSERT_EQ(texts.size(), expected.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::string text = texts[i].get<std::string>();
    const nlohmann::json& want = expected[i];
    std::vector<int32_t> ids = tokenizer.Encode(text);
    EXPECT_EQ(ids, Ids(want["ids"])) << name << " case " << i << ": " << text;
    EXPECT_EQ(tokenizer.Decode(Ids(want["ids"])), want["decoded"].get<std::string>()) << name << " case " << i;
    EXPECT_EQ(tokenizer.Decode(Ids(want["ids"]), true), want["decoded_skip_special"].get<std::string>())
        << name << " case " << i;
    for (size_t j = 0; j < want["ids"].size(); ++j) {
      int32_t id = want["ids"][j].get<int32_t>();
      EXPECT_EQ(tokenizer.Decode(std::vector<int32_t>{id}), want["decoded_each"][j].get<std::string>())
          << name << " case " << i << " id " << id;
    }
  }
}

TEST(TokenizerTest, GptNeoxIdsMatchHuggingFace) {
  ExpectMatchesHuggingFace(Tokenizer::FromFile(kNeoxTokenizer), "gpt-neox-20b");
}

// The tiny tokenizer has added tokens with lstrip/rstrip/single_word and a
// normalized one written decomposed, and merges in the newer [a, b] form.
TEST(TokenizerTest, TinyIdsMatchHuggingFace) {
  ExpectMatchesHuggingFace(Tokenizer::FromFile(kDataDir + "/mamba-tiny-hf/tokenizer.json"), "tiny");
}

TEST(TokenizerTest, StreamingDecodeEmitsOnlyWholeCharacters) {
  Tokenizer tokenizer = Tokenizer::FromFile(kNeoxTokenizer);
  const nlohmann::json& texts = Cases()["texts"];
  for (size_t i = 0; i < texts.size(); ++i) {
    std::vector<int32_t> ids = tokenizer.Encode(texts[i].get<std::string>());
    std::string whole = tokenizer.Decode(ids, true);
    StreamDecoder stream(tokenizer);
    std::string streamed;
    for (int32_t id : ids) {
      std::string piece = stream.Push(id);
      // A piece never ends inside a character: appending it never adds U+FFFD.
      EXPECT_EQ(piece.find("\xEF\xBF\xBD"), std::string::npos) << "case " << i;
      streamed += piece;
    }
    streamed += stream.Finish();
    EXPECT_EQ(streamed, whole) << "case " << i;
  }
}

TEST(TokenizerTest, StreamingDecodeFlushesBrokenBytes) {
  Tokenizer tokenizer = Tokenizer::FromFile(kNeoxTokenizer);
  std::vector<int32_t> emoji = tokenizer.Encode("🙂");
  ASSERT_GT(emoji.size(), 1u);
  StreamDecoder stream(tokenizer);
  EXPECT_EQ(stream.Push(emoji[0]), "");
  EXPECT_EQ(stream.Finish(), "\xEF\xBF\xBD");  // an unfinished character at the end is replaced
}

TEST(TokenizerTest, LooksUpTokens) {
  Tokenizer tokenizer = Tokenizer::FromFile(kNeoxTokenizer);
  EXPECT_EQ(tokenizer.TokenId("<|endoftext|>"), 0);
  EXPECT_TRUE(tokenizer.IsSpecial(0));
  EXPECT_FALSE(tokenizer.IsSpecial(*tokenizer.TokenId("Ġthe")));
  EXPECT_EQ(tokenizer.TokenBytes(*tokenizer.TokenId("Ġthe")), " the");
  EXPECT_FALSE(tokenizer.TokenId("no such token").has_value());
  EXPECT_EQ(tokenizer.VocabSize(), 50281);
  EXPECT_EQ(tokenizer.Decode(std::vector<int32_t>{-1, 1 << 30}), "");  // unknown ids are skipped
}

TEST(TokenizerTest, RejectsInvalidUtf8) {
  Tokenizer tokenizer = Tokenizer::FromFile(kDataDir + "/mamba-tiny-hf/tokenizer.json");
  try {
    tokenizer.Encode("ok \xC3\x28 bad");
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("byte 3"), std::string::npos) << e.what();
  }
}

std::string LoadError(const std::string& json) {
  try {
    Tokenizer::FromJson(json, "test.json");
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST(TokenizerTest, RefusesWhatItDoesNotImplement) {
  const std::string byte_level = R"({"type": "ByteLevel", "add_prefix_space": false})";
  EXPECT_NE(LoadError("{").find("test.json: bad JSON"), std::string::npos);
  EXPECT_NE(
      LoadError(R"({"normalizer": {"type": "NFKC"}, "pre_tokenizer": )" + byte_level + "}").find("normalizer 'NFKC'"),
      std::string::npos);
  EXPECT_NE(LoadError(R"({"pre_tokenizer": {"type": "Whitespace"}})").find("pre_tokenizer 'Whitespace'"),
            std::string::npos);
  EXPECT_NE(LoadError(R"({"pre_tokenizer": )" + byte_level + R"(, "model": {"type": "WordPiece", "vocab": {}}})")
                .find("model 'WordPiece'"),
            std::string::npos);
  EXPECT_NE(LoadError(R"({"pre_tokenizer": )" + byte_level +
                      R"(, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})")
                .find("lacks the symbol of byte"),
            std::string::npos);
}

TEST(TokenizerTest, MissingFileIsAnError) {
  try {
    Tokenizer::FromFile(kDataDir + "/no-such-tokenizer.json");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no-such-tokenizer.json: cannot open"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace thalamus::models
