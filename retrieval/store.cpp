#include "retrieval/store.h"

#include <algorithm>
#include <filesystem>
#include <regex>
#include <stdexcept>

#include "retrieval/store_files.h"

namespace thalamus::retrieval {
namespace {

namespace fs = std::filesystem;

std::string GenerationName(const char* stem, uint64_t generation, const char* extension) {
  return std::string(stem) + "-" + std::to_string(generation) + extension;
}

bool SameBuildOptions(const IndexOptions& a, const IndexOptions& b) {
  return a.type == b.type && a.nlist == b.nlist && a.hnsw_m == b.hnsw_m && a.ef_construction == b.ef_construction;
}

IndexOptions WithSearchOptions(IndexOptions build, const IndexOptions& search) {
  build.nprobe = search.nprobe;
  build.ef_search = search.ef_search;
  return build;
}

}  // namespace

std::unique_ptr<DomainStore> DomainStore::Open(const std::string& dir, Mode mode, const IndexOptions& search) {
  std::unique_ptr<DomainStore> store(new DomainStore(dir));
  if (mode == Mode::kWrite) {
    store->LoadGeneration(mode, search);
    store->RemoveLeftovers();
    return store;
  }
  // A writer may commit and delete the generation we are reading; then the
  // manifest names a newer one and reading again succeeds.
  for (int attempt = 0;; ++attempt) {
    try {
      store->LoadGeneration(mode, search);
      return store;
    } catch (const std::runtime_error&) {
      std::optional<store_files::Manifest> now;
      try {
        now = store_files::ReadManifest(dir);
      } catch (const std::runtime_error&) {
      }
      const bool moved_on = now && now->info.generation != store->info_.generation;
      if (attempt >= 2 || !moved_on) throw;
    }
  }
}

void DomainStore::LoadGeneration(Mode mode, const IndexOptions& search) {
  info_ = DomainInfo{};
  chunks_.clear();
  vectors_.clear();
  sources_.clear();
  index_.reset();
  std::optional<store_files::Manifest> manifest = store_files::ReadManifest(dir_);
  if (manifest) {
    info_ = manifest->info;
    if (info_.dim == 0) throw std::runtime_error("index " + dir_ + " is damaged: dimension 0");
    chunks_ = store_files::ReadChunks(dir_, manifest->chunks, manifest->count);
    index_ = store_files::ReadIndex(dir_, manifest->index, manifest->count, info_.dim,
                                    WithSearchOptions(info_.index, search));
    if (mode == Mode::kWrite) {
      vectors_ = store_files::ReadVectors(dir_, manifest->vectors, manifest->count, info_.dim);
    } else {
      store_files::CheckSize(dir_, manifest->vectors);
    }
    sources_ = std::move(manifest->sources);
  }
  removed_.assign(chunks_.size(), false);
  unchanged_rows_ = chunks_.size();
  rebuild_index_ = false;
  dirty_ = false;
  rows_by_file_.clear();
}

void DomainStore::RemoveLeftovers() const {
  if (!fs::is_directory(dir_)) return;
  static const std::regex generation_file(R"((chunks|vectors|index)-(\d+)\.(jsonl|f32|faiss))");
  bool removed_any = false;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir_)) {
    const std::string name = entry.path().filename().string();
    std::smatch match;
    const bool stale_generation =
        std::regex_match(name, match, generation_file) && std::stoull(match[2].str()) != info_.generation;
    const bool temporary = name.find(".tmp-") != std::string::npos;
    if (stale_generation || temporary) {
      std::error_code ignored;
      removed_any |= fs::remove(entry.path(), ignored);
    }
  }
  if (removed_any) SyncDirectory(dir_);
}

void DomainStore::Configure(const std::string& domain, const std::string& embedder, size_t dim,
                            const IndexOptions& index) {
  if (empty()) {
    info_.domain = domain;
    info_.embedder = embedder;
    info_.dim = dim;
    info_.index = index;
    index_ = std::make_unique<VectorIndex>(dim, index);
    dirty_ = true;
    return;
  }
  if (info_.domain != domain) {
    throw std::runtime_error("index " + dir_ + " holds domain '" + info_.domain + "', not '" + domain + "'");
  }
  if (info_.embedder != embedder || info_.dim != dim) {
    throw std::runtime_error("index " + dir_ + " was built with embedder '" + info_.embedder + "' (dimension " +
                             std::to_string(info_.dim) + "), not '" + embedder + "' (dimension " + std::to_string(dim) +
                             "); vectors of different embedders cannot be mixed: use a new index directory");
  }
  if (!SameBuildOptions(info_.index, index)) {
    info_.index = index;
    rebuild_index_ = true;
    dirty_ = true;
  }
}

size_t DomainStore::RemoveSource(const std::string& file) {
  if (rows_by_file_.empty()) {
    for (size_t row = 0; row < removed_.size(); ++row) rows_by_file_[chunks_[row].file].push_back(row);
  }
  dirty_ |= sources_.erase(file) > 0;
  const auto found = rows_by_file_.find(file);
  if (found == rows_by_file_.end()) return 0;
  size_t count = 0;
  for (size_t row : found->second) {
    if (removed_[row]) continue;
    removed_[row] = true;
    unchanged_rows_ = std::min(unchanged_rows_, row);
    ++count;
  }
  rows_by_file_.erase(found);
  return count;
}

void DomainStore::AddChunks(std::vector<ChunkRecord> chunks, const float* vectors) {
  if (info_.dim == 0) throw std::logic_error("DomainStore::AddChunks before Configure");
  for (size_t i = 0; i < chunks.size(); ++i) {
    chunks[i].id = info_.next_chunk_id++;
    chunks_.push_back(std::move(chunks[i]));
  }
  vectors_.insert(vectors_.end(), vectors, vectors + chunks.size() * info_.dim);
  removed_.resize(chunks_.size(), false);
  dirty_ |= !chunks.empty();
}

void DomainStore::SetSource(const std::string& file, SourceRecord record) {
  sources_[file] = std::move(record);
  dirty_ = true;
}

void DomainStore::Compact() {
  size_t kept = 0;
  const size_t dim = info_.dim;
  for (size_t row = 0; row < chunks_.size(); ++row) {
    if (removed_[row]) continue;
    if (kept != row) {
      chunks_[kept] = std::move(chunks_[row]);
      std::copy_n(vectors_.begin() + row * dim, dim, vectors_.begin() + kept * dim);
    }
    ++kept;
  }
  chunks_.resize(kept);
  vectors_.resize(kept * dim);
  removed_.assign(kept, false);
}

void DomainStore::Commit() {
  if (info_.dim == 0) throw std::logic_error("DomainStore::Commit before Configure");
  Compact();
  const size_t rows = chunks_.size();
  if (rebuild_index_ || !index_) {
    IndexOptions options = info_.index;
    if (index_) options = WithSearchOptions(options, index_->options());
    index_ = std::make_unique<VectorIndex>(info_.dim, options);
    unchanged_rows_ = 0;
  }
  index_->Update(vectors_.data(), rows, unchanged_rows_);

  store_files::Manifest manifest;
  manifest.info = info_;
  manifest.info.generation = info_.generation + 1;
  manifest.count = rows;
  manifest.sources = sources_;
  const uint64_t generation = manifest.info.generation;
  manifest.chunks = store_files::WriteChunks(dir_, GenerationName("chunks", generation, ".jsonl"), chunks_);
  manifest.vectors =
      store_files::WriteVectors(dir_, GenerationName("vectors", generation, ".f32"), vectors_, info_.dim);
  manifest.index = store_files::WriteIndex(dir_, GenerationName("index", generation, ".faiss"), *index_);
  CrashPoint("store:before-manifest");
  store_files::WriteManifest(dir_, manifest);
  info_.generation = generation;
  CrashPoint("store:after-manifest");
  RemoveLeftovers();
  unchanged_rows_ = rows;
  rebuild_index_ = false;
  dirty_ = false;
  rows_by_file_.clear();
}

}  // namespace thalamus::retrieval
