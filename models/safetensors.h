// models/safetensors: reads Hugging Face .safetensors checkpoints.
//
// A file is an 8-byte little-endian header length, a JSON header naming each
// tensor's dtype, shape and byte range, then the raw data. Open() maps the file
// read-only and validates the whole header up front; Load() copies one tensor
// out of the mapping (converting F32/F16/BF16/... to the asked dtype), so the
// returned tensors own their memory and outlive the SafeTensors object.
// OpenDirectory() also reads sharded checkpoints (model.safetensors.index.json).
//
// A SafeTensors is cheap to copy (the mappings are shared) and thread-safe for
// reading. Errors: std::runtime_error naming the file and the tensor (both
// shapes on a shape mismatch) for unreadable or truncated files, bad headers,
// unknown or unsupported dtypes and missing tensors.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "models/safetensors_header.h"

namespace thalamus::models {

class SafeTensors {
 public:
  static SafeTensors Open(const std::string& file);
  // <dir>/model.safetensors, or the shards listed in <dir>/model.safetensors.index.json.
  static SafeTensors OpenDirectory(const std::string& dir);

  bool Has(const std::string& name) const;
  std::vector<std::string> Names() const;  // sorted
  std::vector<int64_t> Shape(const std::string& name) const;
  // The dtype as written in the file ("F32", "BF16", ...).
  std::string DType(const std::string& name) const;

  torch::Tensor Load(const std::string& name, torch::ScalarType dtype = torch::kFloat32) const;
  // As Load, but first checks the shape; on mismatch the error shows both.
  torch::Tensor Load(const std::string& name, const std::vector<int64_t>& expected_shape,
                     torch::ScalarType dtype = torch::kFloat32) const;

  // Where the tensors come from (the file or directory given to Open*), for messages.
  const std::string& source() const { return source_; }

 private:
  struct MappedFile;
  struct Entry {
    std::shared_ptr<const MappedFile> file;
    TensorRecord record;
  };

  const Entry& Find(const std::string& name) const;
  // Adds the tensors of `file` (one shard) to entries_.
  void AddFile(const std::shared_ptr<const MappedFile>& file);

  std::string source_;
  std::map<std::string, Entry> entries_;
};

}  // namespace thalamus::models
