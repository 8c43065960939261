// Test helper: writes .safetensors files byte by byte.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <torch/types.h>
#include <nlohmann/json.hpp>

namespace thalamus::models::testing_support {

// Writes the safetensors layout by hand (the format is an 8-byte length, a
// JSON header and the data) so the reader is checked against the format, not
// against itself.
struct RawTensor {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};

inline std::string Bytes(const torch::Tensor& tensor) {
  torch::Tensor contiguous = tensor.contiguous();
  return std::string(static_cast<const char*>(contiguous.data_ptr()), contiguous.numel() * contiguous.element_size());
}

inline std::string Serialize(const std::vector<RawTensor>& tensors, size_t header_padding = 0) {
  nlohmann::json header = nlohmann::json::object();
  header["__metadata__"] = {{"format", "pt"}};
  std::string data;
  for (const RawTensor& tensor : tensors) {
    header[tensor.name] = {{"dtype", tensor.dtype},
                           {"shape", tensor.shape},
                           {"data_offsets", {data.size(), data.size() + tensor.bytes.size()}}};
    data += tensor.bytes;
  }
  std::string json = header.dump() + std::string(header_padding, ' ');
  uint64_t length = json.size();
  std::string file(8, '\0');
  std::memcpy(file.data(), &length, 8);
  return file + json + data;
}

}  // namespace thalamus::models::testing_support
