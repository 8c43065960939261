// models/safetensors_header: the parts of a .safetensors checkpoint that are
// read as text, without LibTorch: the JSON header at the front of each file
// and the shard index (model.safetensors.index.json). SafeTensors
// (safetensors.h) maps files and loads tensors with what these return; the
// fuzz target tests/fuzz/fuzz_safetensors feeds them any bytes.
//
// Pure functions, thread-safe. Errors: std::runtime_error "safetensors:
// <path>: ..." naming the tensor and what is wrong with it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace thalamus::models {

// Where one tensor lies in its file.
struct TensorRecord {
  std::string dtype;  // as written: "F32", "BF16", ...
  std::vector<int64_t> shape;
  uint64_t offset = 0;  // from the start of the file
  uint64_t bytes = 0;   // exactly elements * element size
};

// Parses the header of a whole file held in `data` (`size` bytes): the 8-byte
// little-endian header length, then a JSON object of tensors. Every entry is
// checked: known dtype, non-negative shape, offsets inside the data and
// matching the shape. `path` only names the file in errors.
std::map<std::string, TensorRecord> ParseSafeTensorsHeader(const uint8_t* data, uint64_t size, const std::string& path);

// Parses a shard index: tensor name -> shard file name. A shard must be a
// plain file name in the checkpoint's folder (no '/', not "." or "..").
std::map<std::string, std::string> ParseSafeTensorsIndex(std::string_view json, const std::string& path);

// Bytes per element of a safetensors dtype name; 0 when the format has no such dtype.
int64_t SafeTensorsDTypeBytes(const std::string& dtype);

// "[2, 3]": shapes in messages.
std::string ShapeString(const std::vector<int64_t>& shape);

}  // namespace thalamus::models
