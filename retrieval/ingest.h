// retrieval/ingest: fills a domain's index from files (`thalamus ingest`).
//
// Reads plain text, Markdown and source files, and JSONL files whose lines are
// {"text": "...", "id": "...", "metadata": {...}} (id and metadata optional).
// Directories are walked recursively, skipping hidden folders (.git, .venv),
// build folders (build, build-*, cmake-build-*) and node_modules/__pycache__;
// binary files (a NUL byte or invalid UTF-8) and files over max_file_bytes are
// skipped. Each file is chunked, embedded in batches and appended to the
// index. A file already ingested with the same contents and chunking is left
// alone; a changed file has its old chunks replaced. Everything lands in one
// crash-safe commit at the end (store.h); writers to one index take turns.
// Errors: std::runtime_error before anything is written when a named path is
// missing, the options are invalid or the index is unusable; a file that
// cannot be read or parsed is reported in IngestReport::problems and the rest
// still ingested.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "retrieval/chunker.h"
#include "retrieval/embedder.h"
#include "retrieval/vector_index.h"

namespace thalamus::retrieval {

struct IngestProgress {
  size_t files_done = 0;
  size_t files_total = 0;
  size_t chunks_embedded = 0;
  double seconds = 0;
  bool finished = false;
};

struct IngestOptions {
  std::string domain;
  ChunkOptions chunking;
  IndexOptions index;
  // Glob patterns (fnmatch) for files found in directories: a pattern with a
  // '/' matches the path relative to the directory given, others the file
  // name. Empty include: every text file. Files named directly are always read.
  std::vector<std::string> include;
  std::vector<std::string> exclude;
  // Sources are cited relative to this directory (default: the current one);
  // files outside it relative to the folder of the path given ("../docs": "docs/a.md").
  std::string base_dir;
  uint64_t max_file_bytes = 16u << 20;
  size_t batch_size = 0;  // chunks per embedding call; 0: the embedder's preference
  // Also drop ingested files that lie under a given directory but are gone.
  bool prune = false;
  std::function<void(const IngestProgress&)> progress;  // called after each batch and at the end
};

struct IngestReport {
  size_t files_added = 0;
  size_t files_updated = 0;
  size_t files_unchanged = 0;
  size_t files_removed = 0;  // by prune
  size_t files_skipped = 0;  // binary or too large
  size_t files_failed = 0;   // unreadable, bad JSONL
  size_t chunks_added = 0;
  size_t chunks_removed = 0;
  size_t total_chunks = 0;  // in the index afterwards
  double seconds = 0;
  std::vector<std::string> problems;  // one line per skipped or failed file
};

IngestReport Ingest(const std::string& index_dir, const Embedder& embedder, const std::vector<std::string>& paths,
                    const IngestOptions& options);

}  // namespace thalamus::retrieval
