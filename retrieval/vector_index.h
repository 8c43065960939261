// retrieval/vector_index: nearest-neighbour search over unit vectors by inner
// product, on FAISS.
//
//  - flat: IndexFlatIP, exact.
//  - ivf:  IndexIVFFlat over a flat quantizer trained with k-means; nlist is
//          chosen from the size (about 4*sqrt(n), at least 39 training points
//          per list) and the index is retrained when the size has moved so far
//          that the chosen nlist would double or halve.
//  - hnsw: IndexHNSWFlat with the inner-product metric.
// Rows are numbered 0..size()-1 in the order they were given; a hit names its
// row. Search is thread-safe; Update, Load and Save are not (the owner
// serializes them). Errors: std::runtime_error (FAISS exceptions included).
#pragma once

#include <cstddef>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace faiss {
struct Index;
}

namespace thalamus::retrieval {

enum class IndexType { kFlat, kIvf, kHnsw };

// "flat", "ivf", "hnsw"; throws std::invalid_argument otherwise.
IndexType ParseIndexType(std::string_view name);
const char* IndexTypeName(IndexType type);

struct IndexOptions {
  IndexType type = IndexType::kFlat;
  size_t nlist = 0;             // ivf: inverted lists; 0 chooses from the size
  size_t nprobe = 0;            // ivf: lists searched per query; 0: about nlist/32, at least 8
  size_t hnsw_m = 32;           // hnsw: links per node
  size_t ef_construction = 80;  // hnsw: candidate list size while building
  size_t ef_search = 0;         // hnsw: candidate list size while searching; 0: 64 (at least 2k)
};

struct SearchHit {
  size_t row = 0;
  float score = 0;  // inner product; cosine similarity for unit vectors
};

class VectorIndex {
 public:
  VectorIndex(size_t dim, IndexOptions options);
  ~VectorIndex();
  VectorIndex(const VectorIndex&) = delete;
  VectorIndex& operator=(const VectorIndex&) = delete;

  // Makes the index hold exactly the n rows of `vectors` (n x dim), given that
  // its first `unchanged` rows are still the same: adds the rest when it can,
  // and rebuilds (retraining IVF) when it must.
  void Update(const float* vectors, size_t n, size_t unchanged);

  // The best min(k, size()) rows for one query vector, best first.
  std::vector<SearchHit> Search(const float* query, size_t k) const;

  size_t size() const;
  size_t dim() const { return dim_; }
  // Changes nprobe / ef_search (0: auto). Not thread-safe against Search.
  void SetSearchOptions(size_t nprobe, size_t ef_search);
  const IndexOptions& options() const { return options_; }
  // IVF lists in use (0 for other types or while empty).
  size_t nlist() const;
  // The effective search-time knobs after "auto" is resolved.
  size_t effective_nprobe() const;
  size_t effective_ef_search(size_t k) const;

  // Serializes with faiss::write_index / read_index. Load checks the type and
  // dimension against `options` and `dim`.
  void Save(std::FILE* file) const;
  static std::unique_ptr<VectorIndex> Load(const std::string& path, size_t dim, IndexOptions options);

  // The IVF lists chosen for n rows with these options.
  static size_t ChooseNlist(size_t n, const IndexOptions& options);

 private:
  void Rebuild(const float* vectors, size_t n);
  void ApplyEfSearch();

  size_t dim_;
  IndexOptions options_;
  std::unique_ptr<faiss::Index> index_;
};

}  // namespace thalamus::retrieval
