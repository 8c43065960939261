#include "retrieval/vector_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>

namespace thalamus::retrieval {
namespace {

constexpr size_t kDim = 32;

std::vector<float> RandomUnitVectors(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(n * kDim);
  for (size_t i = 0; i < n; ++i) {
    float norm = 0;
    for (size_t j = 0; j < kDim; ++j) norm += (v[i * kDim + j] = normal(rng)) * v[i * kDim + j];
    for (size_t j = 0; j < kDim; ++j) v[i * kDim + j] /= std::sqrt(norm);
  }
  return v;
}

IndexOptions Options(IndexType type) {
  IndexOptions options;
  options.type = type;
  options.nprobe = 1000;  // all lists: exact on small data
  options.ef_search = 512;
  return options;
}

class VectorIndexTest : public ::testing::TestWithParam<IndexType> {
 protected:
  std::filesystem::path dir_ =
      std::filesystem::path(::testing::TempDir()) /
      ("vector_index_" + std::string(IndexTypeName(GetParam())) + "_" + std::to_string(::getpid()));
  void SetUp() override { std::filesystem::create_directories(dir_); }
  void TearDown() override { std::filesystem::remove_all(dir_); }
};

TEST_P(VectorIndexTest, FindsEachVectorAsItsOwnNearestNeighbour) {
  const size_t n = 500;
  const std::vector<float> vectors = RandomUnitVectors(n, 1);
  VectorIndex index(kDim, Options(GetParam()));
  EXPECT_EQ(index.size(), 0u);
  EXPECT_TRUE(index.Search(vectors.data(), 5).empty());
  index.Update(vectors.data(), n, 0);
  ASSERT_EQ(index.size(), n);
  for (size_t row : {size_t{0}, size_t{123}, n - 1}) {
    const std::vector<SearchHit> hits = index.Search(&vectors[row * kDim], 5);
    ASSERT_EQ(hits.size(), 5u);
    EXPECT_EQ(hits[0].row, row);
    EXPECT_NEAR(hits[0].score, 1.0f, 1e-5);
    for (size_t i = 1; i < hits.size(); ++i) EXPECT_LE(hits[i].score, hits[i - 1].score);
  }
  EXPECT_EQ(index.Search(vectors.data(), 10 * n).size(), n);  // k beyond size: everything
}

TEST_P(VectorIndexTest, AppendsAndReplacesTails) {
  std::vector<float> vectors = RandomUnitVectors(300, 2);
  VectorIndex index(kDim, Options(GetParam()));
  index.Update(vectors.data(), 200, 0);
  index.Update(vectors.data(), 300, 200);  // append 100
  EXPECT_EQ(index.size(), 300u);
  EXPECT_EQ(index.Search(&vectors[250 * kDim], 1)[0].row, 250u);
  // Rows from 100 on change (as after a re-ingest removed some chunks).
  const std::vector<float> replacement = RandomUnitVectors(150, 3);
  std::copy(replacement.begin(), replacement.end(), vectors.begin() + 100 * kDim);
  index.Update(vectors.data(), 250, 100);
  EXPECT_EQ(index.size(), 250u);
  EXPECT_EQ(index.Search(&replacement[42 * kDim], 1)[0].row, 142u);
  EXPECT_EQ(index.Search(&vectors[7 * kDim], 1)[0].row, 7u);
}

TEST_P(VectorIndexTest, SavesAndLoads) {
  const std::vector<float> vectors = RandomUnitVectors(400, 4);
  VectorIndex index(kDim, Options(GetParam()));
  index.Update(vectors.data(), 400, 0);
  const std::string path = (dir_ / "index.faiss").string();
  std::FILE* file = std::fopen(path.c_str(), "wb");
  ASSERT_NE(file, nullptr);
  index.Save(file);
  std::fclose(file);
  const std::unique_ptr<VectorIndex> loaded = VectorIndex::Load(path, kDim, Options(GetParam()));
  ASSERT_EQ(loaded->size(), 400u);
  const std::vector<SearchHit> before = index.Search(&vectors[99 * kDim], 10);
  const std::vector<SearchHit> after = loaded->Search(&vectors[99 * kDim], 10);
  ASSERT_EQ(before.size(), after.size());
  for (size_t i = 0; i < before.size(); ++i) EXPECT_EQ(before[i].row, after[i].row);
  // Wrong dimension or type is refused.
  EXPECT_THROW(VectorIndex::Load(path, kDim + 1, Options(GetParam())), std::runtime_error);
  const IndexType other = GetParam() == IndexType::kFlat ? IndexType::kHnsw : IndexType::kFlat;
  EXPECT_THROW(VectorIndex::Load(path, kDim, Options(other)), std::runtime_error);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, VectorIndexTest,
                         ::testing::Values(IndexType::kFlat, IndexType::kIvf, IndexType::kHnsw),
                         [](const auto& info) { return std::string(IndexTypeName(info.param)); });

TEST(VectorIndex, IvfChoosesAndRetrainsItsLists) {
  IndexOptions options;
  options.type = IndexType::kIvf;
  EXPECT_EQ(VectorIndex::ChooseNlist(10, options), 1u);
  EXPECT_EQ(VectorIndex::ChooseNlist(3900, options), 100u);     // capped at 39 points per list
  EXPECT_EQ(VectorIndex::ChooseNlist(100000, options), 1265u);  // ~4 sqrt(n)
  const std::vector<float> vectors = RandomUnitVectors(8000, 5);
  VectorIndex index(kDim, options);
  index.Update(vectors.data(), 400, 0);
  EXPECT_EQ(index.nlist(), 10u);
  index.Update(vectors.data(), 8000, 400);  // 20x the data: retrained
  EXPECT_EQ(index.nlist(), 205u);
  EXPECT_EQ(index.effective_nprobe(), 8u);  // nlist/32, at least 8
}

double RecallAt10(const VectorIndex& index, const VectorIndex& exact, const std::vector<float>& queries, size_t count) {
  size_t found = 0;
  for (size_t q = 0; q < count; ++q) {
    std::vector<size_t> truth;
    for (const SearchHit& hit : exact.Search(&queries[q * kDim], 10)) truth.push_back(hit.row);
    for (const SearchHit& hit : index.Search(&queries[q * kDim], 10))
      found += std::count(truth.begin(), truth.end(), hit.row);
  }
  return double(found) / double(count * 10);
}

// The search-time knobs must reach FAISS (1.7.3 silently ignores per-call
// HNSW parameters): more effort, better recall.
TEST(VectorIndex, SearchKnobsTradeSpeedForRecall) {
  const std::vector<float> data = RandomUnitVectors(20000, 6);
  const std::vector<float> queries = RandomUnitVectors(100, 7);
  VectorIndex exact(kDim, IndexOptions{});
  exact.Update(data.data(), 20000, 0);
  for (IndexType type : {IndexType::kIvf, IndexType::kHnsw}) {
    IndexOptions options;
    options.type = type;
    options.ef_construction = 40;
    VectorIndex index(kDim, options);
    index.Update(data.data(), 20000, 0);
    index.SetSearchOptions(1, 10);
    const double low = RecallAt10(index, exact, queries, 100);
    index.SetSearchOptions(index.nlist(), 400);
    const double high = RecallAt10(index, exact, queries, 100);
    EXPECT_GT(high, low + 0.05) << IndexTypeName(type);
    EXPECT_GT(high, 0.95) << IndexTypeName(type);
  }
}

TEST(VectorIndex, ParsesTypeNames) {
  EXPECT_EQ(ParseIndexType("hnsw"), IndexType::kHnsw);
  EXPECT_THROW(ParseIndexType("lsh"), std::invalid_argument);
}

}  // namespace
}  // namespace thalamus::retrieval
