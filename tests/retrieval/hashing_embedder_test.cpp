#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "retrieval/embedder.h"

namespace thalamus::retrieval {
namespace {

std::vector<float> Embed(const Embedder& embedder, const std::string& text) {
  std::vector<float> out(embedder.dim());
  embedder.EmbedDocuments({text}, out.data());
  return out;
}

float Dot(const std::vector<float>& a, const std::vector<float>& b) {
  return std::inner_product(a.begin(), a.end(), b.begin(), 0.0f);
}

TEST(HashingEmbedder, IsDeterministicAcrossInstancesAndBatches) {
  const HashingEmbedder a(384), b(384);
  const std::string text = "The router relays each query to specialized expert processes.";
  EXPECT_EQ(Embed(a, text), Embed(b, text));
  std::vector<std::string> batch(100, "filler text number one");
  batch[57] = text;  // big enough to be embedded on several threads
  std::vector<float> out(batch.size() * a.dim());
  a.EmbedDocuments(batch, out.data());
  EXPECT_EQ(std::vector<float>(out.begin() + 57 * 384, out.begin() + 58 * 384), Embed(a, text));
}

TEST(HashingEmbedder, PinnedValuesDoNotDriftBetweenBuilds) {
  // An index built on one machine must be searchable on another: the hash is
  // ours, not std::hash. These numbers change only if the feature set does,
  // which must come with a new id() version.
  const HashingEmbedder embedder(64);
  const std::vector<float> v = Embed(embedder, "Hello world");
  double checksum = 0;
  for (size_t i = 0; i < v.size(); ++i) checksum += v[i] * static_cast<double>(i + 1);
  EXPECT_EQ(embedder.id(), "hashing-v1:64");
  EXPECT_NEAR(checksum, -30.233193457126617, 1e-4);
}

TEST(HashingEmbedder, VectorsAreUnitLengthOrZero) {
  const HashingEmbedder embedder;
  EXPECT_EQ(embedder.dim(), 384u);
  for (const std::string text : {"a", "Some longer text, with punctuation!", "数据库 索引", "x_y_z camelCaseName"}) {
    const std::vector<float> v = Embed(embedder, text);
    EXPECT_NEAR(Dot(v, v), 1.0f, 1e-5) << text;
  }
  const std::vector<float> empty = Embed(embedder, "  ...  ");
  EXPECT_EQ(Dot(empty, empty), 0.0f);
}

TEST(HashingEmbedder, SimilarTextsScoreHigherThanUnrelatedOnes) {
  const HashingEmbedder embedder;
  const auto query = Embed(embedder, "how is the gate network trained?");
  const auto related =
      Embed(embedder, "The gate is a small MLP trained offline from labelled examples by thalamus gate train.");
  const auto unrelated = Embed(embedder, "Kubernetes manifests deploy the router and one Deployment per expert kind.");
  EXPECT_GT(Dot(query, related), Dot(query, unrelated) + 0.1f);

  // Case, accents and identifier styles do not matter much.
  const auto a = Embed(embedder, "OpenDirectory reads sharded checkpoints");
  const auto b = Embed(embedder, "open directory reads sharded checkpoints");
  EXPECT_GT(Dot(a, b), 0.6f);
  EXPECT_GT(Dot(Embed(embedder, "café crème"), Embed(embedder, "CAFE CREME")), 0.99f);
  // Character n-grams link inflections.
  EXPECT_GT(Dot(Embed(embedder, "retrieval"), Embed(embedder, "retrieving")), 0.2f);
}

TEST(HashingEmbedder, FactoryParsesSpecs) {
  EXPECT_EQ(MakeEmbedder("hashing")->id(), "hashing-v1:384");
  EXPECT_EQ(MakeEmbedder("hashing:512")->dim(), 512u);
  EXPECT_THROW(MakeEmbedder("hashing:abc"), std::runtime_error);
  EXPECT_THROW(MakeEmbedder("hashing:8"), std::runtime_error);
  EXPECT_THROW(MakeEmbedder("/no/such/model/dir"), std::runtime_error);
}

}  // namespace
}  // namespace thalamus::retrieval
