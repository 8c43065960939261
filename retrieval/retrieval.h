// retrieval: knowledge domains for retrieval-augmented answers.
//
// A domain is a directory holding chunks of documents, their embeddings and a
// FAISS index over them (store.h). `thalamus ingest` (ingest.h) fills it:
// files are split into overlapping chunks (chunker.h), embedded in batches by
// an Embedder (embedder.h: the weightless hashing embedder, or a BERT-family
// sentence encoder, bert_encoder.h) and committed crash-safely. A Retriever
// answers queries against one domain: it embeds the query with the same
// embedder and returns the best passages with their source, offsets and score.
//
// Ownership: a Retriever owns its loaded domain and shares the embedder.
// Thread safety: Search may run on many threads at once, also while Refresh
// swaps in a newer generation. Errors: std::runtime_error with a message that
// names the index directory (missing, damaged, built with another embedder).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "retrieval/chunker.h"
#include "retrieval/embedder.h"
#include "retrieval/ingest.h"
#include "retrieval/store.h"
#include "retrieval/vector_index.h"

namespace thalamus::retrieval {

struct Passage {
  std::string text;
  std::string source;  // file path (relative to where it was ingested from) or document id
  std::string domain;
  float score = 0;     // cosine similarity to the query
  uint64_t start = 0;  // byte offsets of the chunk in its source text
  uint64_t end = 0;
  uint64_t chunk_id = 0;
  std::string metadata;  // JSON object text from a JSONL record, or empty
};

class Retriever {
 public:
  // Loads the domain at index_dir. `search` supplies nprobe / ef_search (the
  // build options come from the index). An empty or missing directory is an
  // empty domain; an index built by another embedder is an error.
  Retriever(std::string index_dir, std::shared_ptr<const Embedder> embedder, IndexOptions search = {});

  // The best min(k, size()) passages, best first.
  std::vector<Passage> Search(std::string_view query, size_t k) const;

  // Loads the current generation if `thalamus ingest` committed a new one since
  // the last load; returns whether it did. Searches keep using the old one
  // until the new one is ready.
  bool Refresh();

  size_t size() const;
  DomainInfo info() const;
  const Embedder& embedder() const { return *embedder_; }

 private:
  struct Stamp {
    uint64_t inode = 0;
    int64_t mtime_ns = 0;
    int64_t bytes = -1;
    bool operator==(const Stamp&) const = default;
  };
  Stamp ManifestStamp() const;
  std::shared_ptr<const DomainStore> Load() const;
  std::shared_ptr<const DomainStore> Current() const;

  std::string dir_;
  std::shared_ptr<const Embedder> embedder_;
  IndexOptions search_;
  mutable std::mutex mutex_;  // guards store_ and stamp_
  std::shared_ptr<const DomainStore> store_;
  Stamp stamp_;
};

}  // namespace thalamus::retrieval
