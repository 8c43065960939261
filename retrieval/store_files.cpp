#include "retrieval/store_files.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "retrieval/durable_file.h"

namespace thalamus::retrieval::store_files {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kFormat = "thalamus-retrieval-index";
constexpr int kVersion = 1;
constexpr char kVectorMagic[8] = {'T', 'H', 'V', 'E', 'C', 'F', '3', '2'};
constexpr size_t kVectorHeaderBytes = 24;

std::string PathOf(const std::string& dir, const std::string& name) { return (fs::path(dir) / name).string(); }

std::runtime_error Corrupt(const std::string& dir, const std::string& what) {
  return std::runtime_error("index " + dir + " is damaged: " + what + " (rebuild it with `thalamus ingest`)");
}

std::string ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw std::runtime_error("cannot read " + path);
  return std::move(buffer).str();
}

std::string Dump(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

json IndexOptionsJson(const IndexOptions& options) {
  return {{"type", IndexTypeName(options.type)},
          {"nlist", options.nlist},
          {"hnsw_m", options.hnsw_m},
          {"ef_construction", options.ef_construction}};
}

IndexOptions IndexOptionsFrom(const json& value) {
  IndexOptions options;
  options.type = ParseIndexType(value.at("type").get<std::string>());
  options.nlist = value.at("nlist").get<size_t>();
  options.hnsw_m = value.at("hnsw_m").get<size_t>();
  options.ef_construction = value.at("ef_construction").get<size_t>();
  return options;
}

json FileRefJson(const FileRef& ref) { return {{"file", ref.name}, {"bytes", ref.bytes}}; }
FileRef FileRefFrom(const json& value) {
  return {value.at("file").get<std::string>(), value.at("bytes").get<uint64_t>()};
}

}  // namespace

void CheckSize(const std::string& dir, const FileRef& ref) {
  std::error_code error;
  const uintmax_t bytes = fs::file_size(PathOf(dir, ref.name), error);
  if (error) throw Corrupt(dir, ref.name + ": " + error.message());
  if (bytes != ref.bytes) {
    throw Corrupt(
        dir, ref.name + " has " + std::to_string(bytes) + " bytes, the manifest says " + std::to_string(ref.bytes));
  }
}

std::optional<Manifest> ReadManifest(const std::string& dir) {
  const std::string path = PathOf(dir, kManifestName);
  if (!fs::exists(path)) return std::nullopt;
  Manifest manifest;
  try {
    const json root = json::parse(ReadWhole(path));
    if (root.at("format").get<std::string>() != kFormat) throw Corrupt(dir, "manifest.json is not a Thalamus index");
    if (root.at("version").get<int>() != kVersion) {
      throw std::runtime_error("index " + dir + " has format version " + std::to_string(root.at("version").get<int>()) +
                               "; this build reads version " + std::to_string(kVersion));
    }
    DomainInfo& info = manifest.info;
    info.domain = root.at("domain").get<std::string>();
    info.embedder = root.at("embedder").get<std::string>();
    info.dim = root.at("dim").get<size_t>();
    info.index = IndexOptionsFrom(root.at("index"));
    info.generation = root.at("generation").get<uint64_t>();
    info.next_chunk_id = root.at("next_chunk_id").get<uint64_t>();
    manifest.count = root.at("count").get<uint64_t>();
    manifest.chunks = FileRefFrom(root.at("chunks"));
    manifest.vectors = FileRefFrom(root.at("vectors"));
    manifest.index = FileRefFrom(root.at("faiss"));
    for (const auto& [file, source] : root.at("sources").items()) {
      manifest.sources[file] = {source.at("hash").get<std::string>(), source.at("bytes").get<uint64_t>(),
                                source.at("chunks").get<uint64_t>()};
    }
  } catch (const json::exception& e) {
    throw Corrupt(dir, std::string("manifest.json: ") + e.what());
  } catch (const std::invalid_argument& e) {
    throw Corrupt(dir, std::string("manifest.json: ") + e.what());
  }
  return manifest;
}

void WriteManifest(const std::string& dir, const Manifest& manifest) {
  json sources = json::object();
  for (const auto& [file, source] : manifest.sources) {
    sources[file] = {{"hash", source.hash}, {"bytes", source.bytes}, {"chunks", source.chunks}};
  }
  const DomainInfo& info = manifest.info;
  const json root = {{"format", kFormat},
                     {"version", kVersion},
                     {"domain", info.domain},
                     {"embedder", info.embedder},
                     {"dim", info.dim},
                     {"index", IndexOptionsJson(info.index)},
                     {"generation", info.generation},
                     {"next_chunk_id", info.next_chunk_id},
                     {"count", manifest.count},
                     {"chunks", FileRefJson(manifest.chunks)},
                     {"vectors", FileRefJson(manifest.vectors)},
                     {"faiss", FileRefJson(manifest.index)},
                     {"sources", sources}};
  AtomicFile file(PathOf(dir, kManifestName));
  file.Write(root.dump(1, ' ', false, json::error_handler_t::replace));
  file.Write("\n");
  file.Commit();
}

FileRef WriteChunks(const std::string& dir, const std::string& name, const std::vector<ChunkRecord>& chunks) {
  AtomicFile file(PathOf(dir, name));
  for (const ChunkRecord& chunk : chunks) {
    json line = {{"id", chunk.id},       {"file", chunk.file}, {"source", chunk.source},
                 {"start", chunk.start}, {"end", chunk.end},   {"text", chunk.text}};
    if (!chunk.metadata.empty()) line["metadata"] = json::parse(chunk.metadata);
    file.Write(Dump(line));
    file.Write("\n");
  }
  const uint64_t bytes = file.size();
  file.Commit();
  return {name, bytes};
}

std::vector<ChunkRecord> ReadChunks(const std::string& dir, const FileRef& ref, uint64_t count) {
  CheckSize(dir, ref);
  const std::string text = ReadWhole(PathOf(dir, ref.name));
  std::vector<ChunkRecord> chunks;
  chunks.reserve(count);
  size_t line_number = 0;
  for (size_t begin = 0; begin < text.size();) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    ++line_number;
    try {
      const json line = json::parse(std::string_view(text).substr(begin, end - begin));
      ChunkRecord chunk;
      chunk.id = line.at("id").get<uint64_t>();
      chunk.file = line.at("file").get<std::string>();
      chunk.source = line.at("source").get<std::string>();
      chunk.start = line.at("start").get<uint64_t>();
      chunk.end = line.at("end").get<uint64_t>();
      chunk.text = line.at("text").get<std::string>();
      if (line.contains("metadata")) chunk.metadata = Dump(line.at("metadata"));
      chunks.push_back(std::move(chunk));
    } catch (const json::exception& e) {
      throw Corrupt(dir, ref.name + ":" + std::to_string(line_number) + ": " + e.what());
    }
    begin = end + 1;
  }
  if (chunks.size() != count) {
    throw Corrupt(dir, ref.name + " has " + std::to_string(chunks.size()) + " chunks, the manifest says " +
                           std::to_string(count));
  }
  return chunks;
}

FileRef WriteVectors(const std::string& dir, const std::string& name, const std::vector<float>& vectors, size_t dim) {
  AtomicFile file(PathOf(dir, name));
  const uint64_t header[2] = {vectors.size() / dim, dim};
  file.Write(kVectorMagic, sizeof kVectorMagic);
  file.Write(header, sizeof header);
  // Written in halves so the crash test can stop a writer in the middle.
  const size_t half = vectors.size() / 2;
  file.Write(vectors.data(), half * sizeof(float));
  CrashPoint("store:vectors-half-written");
  file.Write(vectors.data() + half, (vectors.size() - half) * sizeof(float));
  const uint64_t bytes = file.size();
  file.Commit();
  return {name, bytes};
}

std::vector<float> ReadVectors(const std::string& dir, const FileRef& ref, uint64_t count, size_t dim) {
  CheckSize(dir, ref);
  if (ref.bytes != kVectorHeaderBytes + count * dim * sizeof(float)) {
    throw Corrupt(
        dir, ref.name + " does not hold " + std::to_string(count) + " vectors of dimension " + std::to_string(dim));
  }
  std::ifstream in(PathOf(dir, ref.name), std::ios::binary);
  char magic[8];
  uint64_t header[2];
  in.read(magic, sizeof magic);
  in.read(reinterpret_cast<char*>(header), sizeof header);
  if (!in || std::memcmp(magic, kVectorMagic, sizeof magic) != 0 || header[0] != count || header[1] != dim) {
    throw Corrupt(dir, ref.name + ": bad header");
  }
  std::vector<float> vectors(count * dim);
  in.read(reinterpret_cast<char*>(vectors.data()), static_cast<std::streamsize>(vectors.size() * sizeof(float)));
  if (!in) throw Corrupt(dir, ref.name + ": short read");
  return vectors;
}

FileRef WriteIndex(const std::string& dir, const std::string& name, const VectorIndex& index) {
  AtomicFile file(PathOf(dir, name));
  index.Save(file.stream());
  const uint64_t bytes = file.size();
  file.Commit();
  return {name, bytes};
}

std::unique_ptr<VectorIndex> ReadIndex(const std::string& dir, const FileRef& ref, uint64_t count, size_t dim,
                                       const IndexOptions& options) {
  CheckSize(dir, ref);
  std::unique_ptr<VectorIndex> index = VectorIndex::Load(PathOf(dir, ref.name), dim, options);
  if (index->size() != count) {
    throw Corrupt(dir, ref.name + " has " + std::to_string(index->size()) + " vectors, the manifest says " +
                           std::to_string(count));
  }
  return index;
}

}  // namespace thalamus::retrieval::store_files
