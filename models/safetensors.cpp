#include "models/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace thalamus::models {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

namespace {

// The reference implementation refuses headers above 100 MB; so do we, which
// also keeps a corrupt length from making us parse the whole file as JSON.
constexpr uint64_t kMaxHeaderBytes = 100u << 20;

struct DTypeInfo {
  const char* name;
  torch::ScalarType type;
  int64_t bytes;
};

// The safetensors dtypes LibTorch 1.13 can hold. FP8 and unsigned 16/32/64
// are valid in the format but have no torch type here: Load reports them.
constexpr DTypeInfo kDTypes[] = {
    {"F64", torch::kFloat64, 8},   {"F32", torch::kFloat32, 4}, {"F16", torch::kFloat16, 2},
    {"BF16", torch::kBFloat16, 2}, {"I64", torch::kInt64, 8},   {"I32", torch::kInt32, 4},
    {"I16", torch::kInt16, 2},     {"I8", torch::kInt8, 1},     {"U8", torch::kUInt8, 1},
    {"BOOL", torch::kBool, 1},
};

// Element sizes of the dtypes the format defines but torch cannot load, so
// their headers still validate and Names()/Shape() work.
int64_t OtherDTypeBytes(const std::string& name) {
  if (name == "U64") return 8;
  if (name == "U32") return 4;
  if (name == "U16") return 2;
  if (name == "F8_E4M3" || name == "F8_E5M2") return 1;
  return 0;
}

const DTypeInfo* FindDType(const std::string& name) {
  for (const DTypeInfo& info : kDTypes) {
    if (name == info.name) return &info;
  }
  return nullptr;
}

std::runtime_error Error(const std::string& file, const std::string& message) {
  return std::runtime_error("safetensors: " + file + ": " + message);
}

}  // namespace

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

// A read-only mapping of a whole file.
struct SafeTensors::MappedFile {
  std::string path;
  const uint8_t* data = nullptr;
  uint64_t size = 0;

  explicit MappedFile(const std::string& file) : path(file) {
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error(file, std::string("cannot open: ") + std::strerror(errno));
    struct stat info {};
    if (::fstat(fd, &info) != 0) {
      int saved = errno;
      ::close(fd);
      throw Error(file, std::string("cannot stat: ") + std::strerror(saved));
    }
    size = static_cast<uint64_t>(info.st_size);
    if (size > 0) {
      void* mapping = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
      if (mapping == MAP_FAILED) {
        int saved = errno;
        ::close(fd);
        throw Error(file, std::string("cannot map: ") + std::strerror(saved));
      }
      data = static_cast<const uint8_t*>(mapping);
    }
    ::close(fd);
  }
  ~MappedFile() {
    if (data != nullptr) ::munmap(const_cast<uint8_t*>(data), size);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
};

void SafeTensors::ParseHeader(const std::shared_ptr<const MappedFile>& file, std::map<std::string, Entry>& entries) {
  const std::string& path = file->path;
  if (file->size < 8) throw Error(path, "truncated: " + std::to_string(file->size) + " bytes, no header length");
  uint64_t header_bytes = 0;
  std::memcpy(&header_bytes, file->data, 8);
  if (header_bytes > kMaxHeaderBytes)
    throw Error(path, "bad header: length " + std::to_string(header_bytes) + " is too large");
  if (header_bytes > file->size - 8) {
    throw Error(path, "truncated: header says " + std::to_string(header_bytes) + " bytes, file has " +
                          std::to_string(file->size - 8) + " after the length");
  }
  nlohmann::json header;
  try {
    const char* begin = reinterpret_cast<const char*>(file->data + 8);
    header = nlohmann::json::parse(begin, begin + header_bytes);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path, std::string("bad header JSON: ") + e.what());
  }
  if (!header.is_object()) throw Error(path, "bad header: not a JSON object");

  const uint64_t data_start = 8 + header_bytes;
  const uint64_t data_bytes = file->size - data_start;
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") continue;
    auto bad = [&](const std::string& why) { return Error(path, "tensor '" + name + "': bad header entry: " + why); };
    if (!value.is_object()) throw bad("not an object");
    if (!value.contains("dtype") || !value["dtype"].is_string()) throw bad("no string 'dtype'");
    if (!value.contains("shape") || !value["shape"].is_array()) throw bad("no array 'shape'");
    if (!value.contains("data_offsets") || !value["data_offsets"].is_array() || value["data_offsets"].size() != 2) {
      throw bad("no [begin, end] 'data_offsets'");
    }
    Entry entry;
    entry.file = file;
    entry.dtype = value["dtype"].get<std::string>();
    const DTypeInfo* info = FindDType(entry.dtype);
    int64_t element_bytes = info ? info->bytes : OtherDTypeBytes(entry.dtype);
    if (element_bytes == 0) throw bad("unknown dtype '" + entry.dtype + "'");
    uint64_t elements = 1;
    for (const auto& dim : value["shape"]) {
      if (!dim.is_number_unsigned()) throw bad("shape has a non-integer or negative dimension");
      uint64_t size = dim.get<uint64_t>();
      if (size != 0 && elements > (uint64_t{1} << 62) / size) throw bad("shape is too large");
      elements *= size;
      entry.shape.push_back(static_cast<int64_t>(size));
    }
    const auto& offsets = value["data_offsets"];
    if (!offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned())
      throw bad("data_offsets are not integers");
    uint64_t begin = offsets[0].get<uint64_t>(), end = offsets[1].get<uint64_t>();
    if (begin > end) throw bad("data_offsets begin after they end");
    if (end > data_bytes) {
      throw Error(path, "truncated: tensor '" + name + "' ends at byte " + std::to_string(end) +
                            " of the data, which has " + std::to_string(data_bytes));
    }
    if (end - begin != elements * static_cast<uint64_t>(element_bytes)) {
      throw bad("shape " + ShapeString(entry.shape) + " of " + entry.dtype + " needs " +
                std::to_string(elements * element_bytes) + " bytes, data_offsets give " + std::to_string(end - begin));
    }
    entry.offset = data_start + begin;
    entry.bytes = end - begin;
    if (!entries.emplace(name, std::move(entry)).second)
      throw Error(path, "tensor '" + name + "' appears in two files");
  }
}

SafeTensors SafeTensors::Open(const std::string& file) {
  SafeTensors tensors;
  tensors.source_ = file;
  ParseHeader(std::make_shared<const MappedFile>(file), tensors.entries_);
  return tensors;
}

SafeTensors SafeTensors::OpenDirectory(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path single = fs::path(dir) / "model.safetensors";
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  if (fs::exists(single)) return Open(single.string());
  if (!fs::exists(index)) {
    throw Error(dir, "no model.safetensors or model.safetensors.index.json in this directory");
  }

  nlohmann::json map;
  try {
    std::ifstream in(index);
    map = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(index.string(), std::string("bad JSON: ") + e.what());
  }
  if (!map.is_object() || !map.contains("weight_map") || !map["weight_map"].is_object()) {
    throw Error(index.string(), "no 'weight_map' object");
  }
  std::set<std::string> shards;
  for (const auto& [name, shard] : map["weight_map"].items()) {
    if (!shard.is_string()) throw Error(index.string(), "weight_map['" + name + "'] is not a file name");
    shards.insert(shard.get<std::string>());
  }

  SafeTensors tensors;
  tensors.source_ = dir;
  for (const std::string& shard : shards) {
    ParseHeader(std::make_shared<const MappedFile>((fs::path(dir) / shard).string()), tensors.entries_);
  }
  for (const auto& [name, shard] : map["weight_map"].items()) {
    auto found = tensors.entries_.find(name);
    if (found == tensors.entries_.end()) {
      throw Error(index.string(),
                  "tensor '" + name + "' is listed in " + shard.get<std::string>() + " but not stored there");
    }
  }
  return tensors;
}

const SafeTensors::Entry& SafeTensors::Find(const std::string& name) const {
  auto found = entries_.find(name);
  if (found == entries_.end()) throw Error(source_, "no tensor named '" + name + "'");
  return found->second;
}

bool SafeTensors::Has(const std::string& name) const { return entries_.count(name) > 0; }

std::vector<std::string> SafeTensors::Names() const {
  std::vector<std::string> names;
  names.reserve(entries_.size());
  for (const auto& [name, entry] : entries_) names.push_back(name);
  return names;
}

std::vector<int64_t> SafeTensors::Shape(const std::string& name) const { return Find(name).shape; }

std::string SafeTensors::DType(const std::string& name) const { return Find(name).dtype; }

torch::Tensor SafeTensors::Load(const std::string& name, torch::ScalarType dtype) const {
  const Entry& entry = Find(name);
  const DTypeInfo* info = FindDType(entry.dtype);
  if (info == nullptr) {
    throw Error(entry.file->path, "tensor '" + name + "': dtype " + entry.dtype + " is not supported by this build");
  }
  // Copy first: the data need not be aligned for its dtype inside the file.
  torch::Tensor raw = torch::empty(entry.shape, torch::TensorOptions().dtype(info->type));
  if (entry.bytes > 0) std::memcpy(raw.data_ptr(), entry.file->data + entry.offset, entry.bytes);
  return info->type == dtype ? raw : raw.to(dtype);
}

torch::Tensor SafeTensors::Load(const std::string& name, const std::vector<int64_t>& expected_shape,
                                torch::ScalarType dtype) const {
  const Entry& entry = Find(name);
  if (entry.shape != expected_shape) {
    throw Error(entry.file->path, "tensor '" + name + "' has shape " + ShapeString(entry.shape) + ", expected " +
                                      ShapeString(expected_shape));
  }
  return Load(name, dtype);
}

}  // namespace thalamus::models
