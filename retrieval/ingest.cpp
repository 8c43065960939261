#include "retrieval/ingest.h"

#include <chrono>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

#include "retrieval/durable_file.h"
#include "retrieval/source_files.h"
#include "retrieval/store.h"
#include "retrieval/text.h"

namespace thalamus::retrieval {
namespace {

using Clock = std::chrono::steady_clock;

// Chunks wait here until a batch is full, so that small files still reach
// the embedder in efficient batches.
class EmbeddingQueue {
 public:
  EmbeddingQueue(DomainStore& store, const Embedder& embedder, size_t batch, IngestProgress& progress,
                 const IngestOptions& options, Clock::time_point start)
      : store_(store), embedder_(embedder), batch_(batch), progress_(progress), options_(options), start_(start) {}

  void Push(ChunkRecord chunk) {
    pending_.push_back(std::move(chunk));
    if (pending_.size() >= batch_) Flush();
  }

  void Flush() {
    if (pending_.empty()) return;
    std::vector<std::string> texts;
    texts.reserve(pending_.size());
    for (const ChunkRecord& chunk : pending_) texts.push_back(chunk.text);
    std::vector<float> vectors(texts.size() * embedder_.dim());
    embedder_.EmbedDocuments(texts, vectors.data());
    progress_.chunks_embedded += pending_.size();
    store_.AddChunks(std::move(pending_), vectors.data());
    pending_.clear();
    Report();
  }

  void Report() {
    progress_.seconds = std::chrono::duration<double>(Clock::now() - start_).count();
    if (options_.progress) options_.progress(progress_);
  }

 private:
  DomainStore& store_;
  const Embedder& embedder_;
  size_t batch_;
  IngestProgress& progress_;
  const IngestOptions& options_;
  Clock::time_point start_;
  std::vector<ChunkRecord> pending_;
};

// Reads a whole file, or returns why it is not ingested.
std::string ReadFile(const std::string& path, uint64_t max_bytes, std::string& problem) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    problem = "cannot open";
    return {};
  }
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < 0) {
    problem = "cannot read";
    return {};
  }
  if (static_cast<uint64_t>(size) > max_bytes) {
    problem = "skipped: " + std::to_string(size) + " bytes is over the limit of " + std::to_string(max_bytes);
    return {};
  }
  in.seekg(0);
  std::string content(static_cast<size_t>(size), '\0');
  in.read(content.data(), size);
  if (!in) problem = "cannot read";
  return content;
}

std::vector<ChunkRecord> ChunkDocuments(const source_files::FoundFile& file,
                                        std::vector<source_files::Document> documents, const ChunkOptions& chunking) {
  std::vector<ChunkRecord> chunks;
  for (source_files::Document& document : documents) {
    for (const TextChunk& piece : ChunkText(document.text, chunking)) {
      ChunkRecord chunk;
      chunk.file = file.key;
      chunk.source = document.source;
      chunk.start = piece.start;
      chunk.end = piece.end;
      chunk.text = document.text.substr(piece.start, piece.end - piece.start);
      chunk.metadata = document.metadata;
      chunks.push_back(std::move(chunk));
    }
  }
  return chunks;
}

bool IsUnder(const std::string& path, const std::string& dir) {
  return path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 && path[dir.size()] == '/';
}

size_t Prune(DomainStore& store, const source_files::FoundFiles& found, IngestReport& report) {
  std::set<std::string> present;
  for (const source_files::FoundFile& file : found.files) present.insert(file.key);
  std::vector<std::string> gone;
  for (const auto& [key, record] : store.sources()) {
    if (present.count(key)) continue;
    for (const std::string& dir : found.directories) {
      if (IsUnder(key, dir)) {
        gone.push_back(key);
        break;
      }
    }
  }
  for (const std::string& key : gone) report.chunks_removed += store.RemoveSource(key);
  return gone.size();
}

}  // namespace

IngestReport Ingest(const std::string& index_dir, const Embedder& embedder, const std::vector<std::string>& paths,
                    const IngestOptions& options) {
  const Clock::time_point start = Clock::now();
  options.chunking.Validate();
  if (options.domain.empty()) throw std::runtime_error("ingest: a domain name is required");
  const source_files::FoundFiles found = source_files::Find(paths, options.include, options.exclude, options.base_dir);

  DirectoryLock lock(index_dir);
  std::unique_ptr<DomainStore> store = DomainStore::Open(index_dir, DomainStore::Mode::kWrite);
  store->Configure(options.domain, embedder.id(), embedder.dim(), options.index);

  IngestReport report;
  IngestProgress progress;
  progress.files_total = found.files.size();
  const size_t batch = options.batch_size > 0 ? options.batch_size : embedder.preferred_batch();
  EmbeddingQueue queue(*store, embedder, batch, progress, options, start);
  const std::string signature = options.chunking.Signature();
  for (const source_files::FoundFile& file : found.files) {
    std::string problem;
    std::string content = ReadFile(file.key, options.max_file_bytes, problem);
    if (problem.empty() && LooksBinary(content)) problem = "skipped: binary (NUL bytes or invalid UTF-8)";
    const std::string hash = problem.empty() ? source_files::ContentHash(content, signature) : "";
    ++progress.files_done;
    if (!problem.empty()) {
      ++(problem.rfind("skipped", 0) == 0 ? report.files_skipped : report.files_failed);
      report.problems.push_back(file.display + ": " + problem);
      continue;
    }
    const auto existing = store->sources().find(file.key);
    const bool known = existing != store->sources().end();
    if (known && existing->second.hash == hash) {
      ++report.files_unchanged;
      continue;
    }
    const uint64_t bytes = content.size();
    std::vector<ChunkRecord> chunks;
    try {
      chunks = ChunkDocuments(file, source_files::ParseDocuments(file, std::move(content)), options.chunking);
    } catch (const std::runtime_error& e) {
      ++report.files_failed;
      report.problems.push_back(e.what());
      continue;
    }
    report.chunks_removed += store->RemoveSource(file.key);
    ++(known ? report.files_updated : report.files_added);
    report.chunks_added += chunks.size();
    store->SetSource(file.key, {hash, bytes, chunks.size()});
    for (ChunkRecord& chunk : chunks) queue.Push(std::move(chunk));
  }
  queue.Flush();
  if (options.prune) report.files_removed = Prune(*store, found, report);

  if (store->dirty()) store->Commit();
  report.total_chunks = store->chunks().size();
  progress.finished = true;
  queue.Report();
  report.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return report;
}

}  // namespace thalamus::retrieval
