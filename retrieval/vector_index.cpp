#include "retrieval/vector_index.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <omp.h>

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/index_io.h>

namespace thalamus::retrieval {
namespace {

// FAISS warns below 39 training points per centroid; so we never go there.
constexpr size_t kMinPointsPerList = 39;
constexpr int kKmeansIterations = 10;

std::runtime_error FaissError(const std::string& what, const faiss::FaissException& e) {
  return std::runtime_error(what + ": " + e.msg);
}

faiss::IndexIVFFlat* AsIvf(faiss::Index* index) { return dynamic_cast<faiss::IndexIVFFlat*>(index); }
faiss::IndexHNSWFlat* AsHnsw(faiss::Index* index) { return dynamic_cast<faiss::IndexHNSWFlat*>(index); }

// One query gains nothing from FAISS's OpenMP regions, and on a busy machine
// each region's barrier can wait a whole scheduler slice for a descheduled
// worker. The OpenMP thread count is per calling thread, so this is safe
// with concurrent searches.
class SingleThreadedRegion {
 public:
  SingleThreadedRegion() : saved_(omp_get_max_threads()) { omp_set_num_threads(1); }
  ~SingleThreadedRegion() { omp_set_num_threads(saved_); }

 private:
  int saved_;
};

// Sequential labels so a hit names its row, also after IVF removals.
void AddRows(faiss::Index& index, const float* vectors, size_t begin, size_t end) {
  if (end <= begin) return;
  if (AsIvf(&index) == nullptr) {
    index.add(static_cast<faiss::Index::idx_t>(end - begin), vectors + begin * index.d);
    return;
  }
  std::vector<faiss::Index::idx_t> ids(end - begin);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<faiss::Index::idx_t>(begin + i);
  index.add_with_ids(static_cast<faiss::Index::idx_t>(ids.size()), vectors + begin * index.d, ids.data());
}

}  // namespace

IndexType ParseIndexType(std::string_view name) {
  if (name == "flat") return IndexType::kFlat;
  if (name == "ivf") return IndexType::kIvf;
  if (name == "hnsw") return IndexType::kHnsw;
  throw std::invalid_argument("unknown index type '" + std::string(name) + "' (expected flat, ivf or hnsw)");
}

const char* IndexTypeName(IndexType type) {
  switch (type) {
    case IndexType::kFlat: return "flat";
    case IndexType::kIvf: return "ivf";
    case IndexType::kHnsw: return "hnsw";
  }
  return "?";
}

VectorIndex::VectorIndex(size_t dim, IndexOptions options) : dim_(dim), options_(options) {
  if (dim == 0) throw std::invalid_argument("vector index: dimension must be positive");
  if (options_.type == IndexType::kHnsw && options_.hnsw_m < 2)
    throw std::invalid_argument("hnsw: M must be at least 2");
  Rebuild(nullptr, 0);
}

VectorIndex::~VectorIndex() = default;

size_t VectorIndex::ChooseNlist(size_t n, const IndexOptions& options) {
  const size_t most = std::max<size_t>(1, n / kMinPointsPerList);
  const size_t wanted = options.nlist > 0 ? options.nlist : static_cast<size_t>(std::lround(4 * std::sqrt(double(n))));
  return std::clamp<size_t>(wanted, 1, most);
}

void VectorIndex::Rebuild(const float* vectors, size_t n) {
  try {
    switch (options_.type) {
      case IndexType::kFlat: index_ = std::make_unique<faiss::IndexFlatIP>(dim_); break;
      case IndexType::kHnsw: {
        auto hnsw = std::make_unique<faiss::IndexHNSWFlat>(dim_, static_cast<int>(options_.hnsw_m),
                                                           faiss::METRIC_INNER_PRODUCT);
        hnsw->hnsw.efConstruction = static_cast<int>(options_.ef_construction);
        index_ = std::move(hnsw);
        break;
      }
      case IndexType::kIvf: {
        const size_t nlist = ChooseNlist(n, options_);
        auto ivf = std::make_unique<faiss::IndexIVFFlat>(new faiss::IndexFlatIP(dim_), dim_, nlist,
                                                         faiss::METRIC_INNER_PRODUCT);
        ivf->own_fields = true;
        ivf->cp.niter = kKmeansIterations;
        ivf->cp.seed = 1234;                  // reproducible lists
        ivf->cp.spherical = true;             // unit vectors: centroids on the sphere suit inner product
        ivf->cp.min_points_per_centroid = 1;  // ChooseNlist already keeps 39 per list; tiny sets need no warning
        if (n > 0) ivf->train(static_cast<faiss::Index::idx_t>(n), vectors);
        index_ = std::move(ivf);
        break;
      }
    }
    AddRows(*index_, vectors, 0, n);
    ApplyEfSearch();
  } catch (const faiss::FaissException& e) {
    throw FaissError(std::string("building the ") + IndexTypeName(options_.type) + " index", e);
  }
}

void VectorIndex::Update(const float* vectors, size_t n, size_t unchanged) {
  const size_t current = size();
  unchanged = std::min({unchanged, current, n});
  bool rebuild = false;
  if (const faiss::IndexIVFFlat* ivf = AsIvf(index_.get())) {
    const size_t wanted = ChooseNlist(n, options_);
    rebuild = !ivf->is_trained || wanted >= 2 * ivf->nlist || 2 * wanted <= ivf->nlist;
  } else if (options_.type == IndexType::kHnsw) {
    rebuild = unchanged < current;  // HNSW graphs cannot drop nodes
  }
  if (rebuild) return Rebuild(vectors, n);
  try {
    if (unchanged < current) {
      faiss::IDSelectorRange tail(static_cast<faiss::Index::idx_t>(unchanged),
                                  static_cast<faiss::Index::idx_t>(current));
      index_->remove_ids(tail);
    }
    AddRows(*index_, vectors, unchanged, n);
  } catch (const faiss::FaissException& e) {
    throw FaissError(std::string("updating the ") + IndexTypeName(options_.type) + " index", e);
  }
}

size_t VectorIndex::size() const { return static_cast<size_t>(index_->ntotal); }

size_t VectorIndex::nlist() const {
  const faiss::IndexIVFFlat* ivf = AsIvf(index_.get());
  return ivf && ivf->is_trained ? ivf->nlist : 0;
}

size_t VectorIndex::effective_nprobe() const {
  const size_t lists = nlist();
  if (lists == 0) return 0;
  // nlist/32 scans ~3% of the vectors: recall@10 1.0 at 0.8 ms on 100k clustered vectors (bench/RESULTS.md).
  const size_t wanted = options_.nprobe > 0 ? options_.nprobe : std::max<size_t>(8, lists / 32);
  return std::min(wanted, lists);
}

void VectorIndex::ApplyEfSearch() {
  // FAISS searches with max(efSearch, k) candidates.
  if (faiss::IndexHNSWFlat* hnsw = AsHnsw(index_.get())) hnsw->hnsw.efSearch = static_cast<int>(effective_ef_search(0));
}

void VectorIndex::SetSearchOptions(size_t nprobe, size_t ef_search) {
  options_.nprobe = nprobe;
  options_.ef_search = ef_search;
  ApplyEfSearch();
}

size_t VectorIndex::effective_ef_search(size_t k) const {
  const size_t wanted = options_.ef_search > 0 ? options_.ef_search : 64;
  return std::max(wanted, k);
}

std::vector<SearchHit> VectorIndex::Search(const float* query, size_t k) const {
  const size_t available = size();
  k = std::min(k, available);
  if (k == 0) return {};
  std::vector<float> scores(k);
  std::vector<faiss::Index::idx_t> labels(k);
  // FAISS 1.7.3 ignores SearchParametersHNSW (efSearch is the index's own,
  // set by ApplyEfSearch) but honours SearchParametersIVF.
  faiss::SearchParametersIVF ivf_params;
  const faiss::SearchParameters* params = nullptr;
  if (AsIvf(index_.get())) {
    ivf_params.nprobe = effective_nprobe();
    params = &ivf_params;
  }
  SingleThreadedRegion single_threaded;
  try {
    index_->search(1, query, static_cast<faiss::Index::idx_t>(k), scores.data(), labels.data(), params);
  } catch (const faiss::FaissException& e) {
    throw FaissError("searching the index", e);
  }
  std::vector<SearchHit> hits;
  hits.reserve(k);
  for (size_t i = 0; i < k; ++i) {
    if (labels[i] < 0 || static_cast<size_t>(labels[i]) >= available) continue;  // fewer reachable than k
    hits.push_back({static_cast<size_t>(labels[i]), scores[i]});
  }
  return hits;
}

void VectorIndex::Save(std::FILE* file) const {
  try {
    faiss::write_index(index_.get(), file);
  } catch (const faiss::FaissException& e) {
    throw FaissError("writing the index", e);
  }
}

std::unique_ptr<VectorIndex> VectorIndex::Load(const std::string& path, size_t dim, IndexOptions options) {
  std::unique_ptr<faiss::Index> loaded;
  try {
    loaded.reset(faiss::read_index(path.c_str()));
  } catch (const faiss::FaissException& e) {
    throw FaissError("reading " + path, e);
  }
  const bool type_ok = (options.type == IndexType::kFlat && dynamic_cast<faiss::IndexFlatIP*>(loaded.get())) ||
                       (options.type == IndexType::kIvf && AsIvf(loaded.get())) ||
                       (options.type == IndexType::kHnsw && AsHnsw(loaded.get()));
  if (!type_ok || static_cast<size_t>(loaded->d) != dim || loaded->metric_type != faiss::METRIC_INNER_PRODUCT) {
    throw std::runtime_error(path + ": not an inner-product " + IndexTypeName(options.type) + " index of dimension " +
                             std::to_string(dim));
  }
  auto index = std::make_unique<VectorIndex>(dim, options);
  index->index_ = std::move(loaded);
  index->ApplyEfSearch();
  return index;
}

}  // namespace thalamus::retrieval
