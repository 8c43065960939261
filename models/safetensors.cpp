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

namespace thalamus::models {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

namespace {

struct DTypeInfo {
  const char* name;
  torch::ScalarType type;
};

// The safetensors dtypes LibTorch 1.13 can hold. FP8 and unsigned 16/32/64
// are valid in the format but have no torch type here: Load reports them.
constexpr DTypeInfo kDTypes[] = {
    {"F64", torch::kFloat64}, {"F32", torch::kFloat32}, {"F16", torch::kFloat16}, {"BF16", torch::kBFloat16},
    {"I64", torch::kInt64},   {"I32", torch::kInt32},   {"I16", torch::kInt16},   {"I8", torch::kInt8},
    {"U8", torch::kUInt8},    {"BOOL", torch::kBool},
};

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

void SafeTensors::AddFile(const std::shared_ptr<const MappedFile>& file) {
  for (auto& [name, record] : ParseSafeTensorsHeader(file->data, file->size, file->path)) {
    if (!entries_.emplace(name, Entry{file, std::move(record)}).second) {
      throw Error(file->path, "tensor '" + name + "' appears in two files");
    }
  }
}

SafeTensors SafeTensors::Open(const std::string& file) {
  SafeTensors tensors;
  tensors.source_ = file;
  tensors.AddFile(std::make_shared<const MappedFile>(file));
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

  std::ifstream in(index, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) throw Error(index.string(), "cannot read");
  const std::map<std::string, std::string> weight_map = ParseSafeTensorsIndex(text, index.string());
  std::set<std::string> shards;
  for (const auto& [name, shard] : weight_map) shards.insert(shard);

  SafeTensors tensors;
  tensors.source_ = dir;
  for (const std::string& shard : shards) {
    tensors.AddFile(std::make_shared<const MappedFile>((fs::path(dir) / shard).string()));
  }
  for (const auto& [name, shard] : weight_map) {
    if (!tensors.entries_.count(name)) {
      throw Error(index.string(), "tensor '" + name + "' is listed in " + shard + " but not stored there");
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

std::vector<int64_t> SafeTensors::Shape(const std::string& name) const { return Find(name).record.shape; }

std::string SafeTensors::DType(const std::string& name) const { return Find(name).record.dtype; }

torch::Tensor SafeTensors::Load(const std::string& name, torch::ScalarType dtype) const {
  const Entry& entry = Find(name);
  const TensorRecord& record = entry.record;
  const DTypeInfo* info = FindDType(record.dtype);
  if (info == nullptr) {
    throw Error(entry.file->path, "tensor '" + name + "': dtype " + record.dtype + " is not supported by this build");
  }
  // Copy first: the data need not be aligned for its dtype inside the file.
  torch::Tensor raw = torch::empty(record.shape, torch::TensorOptions().dtype(info->type));
  if (record.bytes > 0) std::memcpy(raw.data_ptr(), entry.file->data + record.offset, record.bytes);
  return info->type == dtype ? raw : raw.to(dtype);
}

torch::Tensor SafeTensors::Load(const std::string& name, const std::vector<int64_t>& expected_shape,
                                torch::ScalarType dtype) const {
  const Entry& entry = Find(name);
  if (entry.record.shape != expected_shape) {
    throw Error(entry.file->path, "tensor '" + name + "' has shape " + ShapeString(entry.record.shape) + ", expected " +
                                      ShapeString(expected_shape));
  }
  return Load(name, dtype);
}

}  // namespace thalamus::models
