// Fuzz target: the safetensors header and shard-index parsers
// (models/safetensors_header.h), what SafeTensors::Open and OpenDirectory
// run on a checkpoint's bytes before any tensor is touched. The first byte
// picks: even, the bytes are a whole .safetensors file; odd, an index JSON.
// Whatever the bytes, the parsers return or throw std::runtime_error, and
// every tensor they accept lies inside the file with as many bytes as its
// shape and dtype need.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string_view>

#include "models/safetensors_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool index = (data[0] & 1) != 0;
  ++data, --size;
  try {
    if (index) {
      for (const auto& [name, shard] : thalamus::models::ParseSafeTensorsIndex(
               std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.json")) {
        if (shard.empty() || shard.find('/') != std::string::npos) std::abort();
      }
      return 0;
    }
    for (const auto& [name, record] : thalamus::models::ParseSafeTensorsHeader(data, size, "fuzz.safetensors")) {
      if (record.offset > size || record.bytes > size - record.offset) std::abort();
      unsigned __int128 needed = static_cast<unsigned __int128>(thalamus::models::SafeTensorsDTypeBytes(record.dtype));
      for (int64_t dim : record.shape) {
        if (dim < 0) std::abort();
        needed *= static_cast<uint64_t>(dim);
      }
      if (needed != record.bytes) std::abort();
    }
  } catch (const std::runtime_error&) {
  }
  return 0;
}
