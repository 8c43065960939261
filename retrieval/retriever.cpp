#include <sys/stat.h>

#include <filesystem>
#include <stdexcept>

#include "retrieval/retrieval.h"

namespace thalamus::retrieval {

Retriever::Retriever(std::string index_dir, std::shared_ptr<const Embedder> embedder, IndexOptions search)
    : dir_(std::move(index_dir)), embedder_(std::move(embedder)), search_(search) {
  if (!embedder_) throw std::invalid_argument("Retriever needs an embedder");
  stamp_ = ManifestStamp();
  store_ = Load();
}

Retriever::Stamp Retriever::ManifestStamp() const {
  struct stat info {};
  const std::string path = (std::filesystem::path(dir_) / "manifest.json").string();
  if (::stat(path.c_str(), &info) != 0) return {};
  return {static_cast<uint64_t>(info.st_ino),
          static_cast<int64_t>(info.st_mtim.tv_sec) * 1000000000 + info.st_mtim.tv_nsec,
          static_cast<int64_t>(info.st_size)};
}

std::shared_ptr<const DomainStore> Retriever::Load() const {
  std::shared_ptr<const DomainStore> store = DomainStore::Open(dir_, DomainStore::Mode::kRead, search_);
  const DomainInfo& info = store->info();
  if (!store->empty() && (info.embedder != embedder_->id() || info.dim != embedder_->dim())) {
    throw std::runtime_error("index " + dir_ + " was built with embedder '" + info.embedder +
                             "', but this retriever uses '" + embedder_->id() +
                             "'; configure the same embedder or re-ingest into a new directory");
  }
  return store;
}

std::shared_ptr<const DomainStore> Retriever::Current() const {
  std::lock_guard lock(mutex_);
  return store_;
}

bool Retriever::Refresh() {
  const Stamp now = ManifestStamp();
  {
    std::lock_guard lock(mutex_);
    if (now == stamp_) return false;
  }
  std::shared_ptr<const DomainStore> fresh = Load();  // slow part, outside the lock
  std::lock_guard lock(mutex_);
  store_ = std::move(fresh);
  stamp_ = now;
  return true;
}

size_t Retriever::size() const { return Current()->chunks().size(); }

DomainInfo Retriever::info() const { return Current()->info(); }

std::vector<Passage> Retriever::Search(std::string_view query, size_t k) const {
  const std::shared_ptr<const DomainStore> store = Current();
  if (store->empty() || store->chunks().empty() || k == 0) return {};
  std::vector<float> vector(embedder_->dim());
  embedder_->EmbedQuery(query, vector.data());
  std::vector<Passage> passages;
  for (const SearchHit& hit : store->index()->Search(vector.data(), k)) {
    const ChunkRecord& chunk = store->chunks()[hit.row];
    passages.push_back(
        {chunk.text, chunk.source, store->info().domain, hit.score, chunk.start, chunk.end, chunk.id, chunk.metadata});
  }
  return passages;
}

}  // namespace thalamus::retrieval
