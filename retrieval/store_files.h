// The file formats of an index directory (see store.h); private to retrieval/.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "retrieval/store.h"

namespace thalamus::retrieval::store_files {

constexpr const char* kManifestName = "manifest.json";

struct FileRef {
  std::string name;    // relative to the index directory
  uint64_t bytes = 0;  // checked on load: a torn or swapped file is refused
};

struct Manifest {
  DomainInfo info;
  uint64_t count = 0;  // chunks = vector rows = index size
  FileRef chunks;
  FileRef vectors;
  FileRef index;
  std::map<std::string, SourceRecord> sources;
};

// nullopt when the directory has no manifest (an empty domain).
std::optional<Manifest> ReadManifest(const std::string& dir);
void WriteManifest(const std::string& dir, const Manifest& manifest);

FileRef WriteChunks(const std::string& dir, const std::string& name, const std::vector<ChunkRecord>& chunks);
std::vector<ChunkRecord> ReadChunks(const std::string& dir, const FileRef& ref, uint64_t count);

FileRef WriteVectors(const std::string& dir, const std::string& name, const std::vector<float>& vectors, size_t dim);
std::vector<float> ReadVectors(const std::string& dir, const FileRef& ref, uint64_t count, size_t dim);

FileRef WriteIndex(const std::string& dir, const std::string& name, const VectorIndex& index);
std::unique_ptr<VectorIndex> ReadIndex(const std::string& dir, const FileRef& ref, uint64_t count, size_t dim,
                                       const IndexOptions& options);

// Throws std::runtime_error unless dir/name exists with exactly ref.bytes bytes.
void CheckSize(const std::string& dir, const FileRef& ref);

}  // namespace thalamus::retrieval::store_files
