// retrieval/store: one knowledge domain on disk: its chunks (text, source,
// offsets, metadata), their vectors, the FAISS index over them and the table
// of ingested files (content hash, chunk count).
//
// Layout of an index directory (one domain):
//   manifest.json       what is current: generation G, embedder, dimension,
//                       index options, file sizes, the sources table
//   chunks-G.jsonl      one JSON object per chunk, in row order
//   vectors-G.f32       "THVECF32", rows and dim (u64 each), then rows*dim floats
//   index-G.faiss       the FAISS index (faiss::write_index)
//   LOCK                writers hold an exclusive flock on it
// Commit() writes generation G+1 beside G (temporary file, fsync, rename),
// then replaces manifest.json the same way (the commit point), then deletes
// G. A writer killed at any moment leaves G readable; the next writer removes
// the leftovers. Readers need no lock.
// Errors: std::runtime_error naming the directory and what is wrong.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "retrieval/durable_file.h"
#include "retrieval/vector_index.h"

namespace thalamus::retrieval {

struct ChunkRecord {
  uint64_t id = 0;     // unique in the domain, never reused
  std::string file;    // key of the ingested file it came from (see SourceRecord)
  std::string source;  // what citations show: a path, or a JSONL record's id
  uint64_t start = 0;  // byte offsets of the chunk in its source text, [start, end)
  uint64_t end = 0;
  std::string text;
  std::string metadata;  // a JSON object's text, or empty
};

// One ingested file, keyed by its canonical absolute path.
struct SourceRecord {
  std::string hash;  // of the contents and the chunking options
  uint64_t bytes = 0;
  uint64_t chunks = 0;
};

struct DomainInfo {
  std::string domain;
  std::string embedder;  // Embedder::id() of the vectors
  size_t dim = 0;
  IndexOptions index;       // build options as stored; search options come from the opener
  uint64_t generation = 0;  // 0: nothing committed yet
  uint64_t next_chunk_id = 1;
};

class DomainStore {
 public:
  enum class Mode { kRead, kWrite };

  // Loads the current generation of `dir`. A missing or empty directory is an
  // empty domain. kRead skips the vectors (the index holds what search needs)
  // and retries when a writer replaces the generation while it reads. kWrite
  // expects the caller to hold a DirectoryLock and removes leftovers of
  // interrupted writers. `search` sets the index's search-time options.
  static std::unique_ptr<DomainStore> Open(const std::string& dir, Mode mode, const IndexOptions& search = {});

  const std::string& dir() const { return dir_; }
  const DomainInfo& info() const { return info_; }
  bool empty() const { return info_.generation == 0; }
  const std::vector<ChunkRecord>& chunks() const { return chunks_; }
  const std::map<std::string, SourceRecord>& sources() const { return sources_; }
  const VectorIndex* index() const { return index_.get(); }

  // --- writing (Mode::kWrite) ---
  // Sets what the next generation is built with. A new domain takes these; an
  // existing one must have the same embedder and dimension (else throws), and
  // a different index type or build option rebuilds its index.
  void Configure(const std::string& domain, const std::string& embedder, size_t dim, const IndexOptions& index);
  // Drops the chunks of one ingested file; returns how many.
  size_t RemoveSource(const std::string& file);
  // Appends chunks (ids are assigned here) with their vectors (n x dim).
  void AddChunks(std::vector<ChunkRecord> chunks, const float* vectors);
  void SetSource(const std::string& file, SourceRecord record);
  // True when Commit would write something new.
  bool dirty() const { return dirty_; }
  // Writes the next generation crash-safely and makes it current.
  void Commit();

 private:
  explicit DomainStore(std::string dir) : dir_(std::move(dir)) {}
  void LoadGeneration(Mode mode, const IndexOptions& search);
  void RemoveLeftovers() const;
  void Compact();

  std::string dir_;
  DomainInfo info_;
  std::vector<ChunkRecord> chunks_;
  std::vector<float> vectors_;  // kWrite only
  std::map<std::string, SourceRecord> sources_;
  std::unique_ptr<VectorIndex> index_;
  // Pending edits: rows to drop at Commit, and the first row that changed.
  std::vector<bool> removed_;
  size_t unchanged_rows_ = 0;
  bool rebuild_index_ = false;
  bool dirty_ = false;
  std::unordered_map<std::string, std::vector<size_t>> rows_by_file_;
};

}  // namespace thalamus::retrieval
