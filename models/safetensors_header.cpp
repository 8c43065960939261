#include "models/safetensors_header.h"

#include <cstring>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace thalamus::models {
namespace {

// The reference implementation refuses headers above 100 MB; so do we, which
// also keeps a corrupt length from making us parse the whole file as JSON.
constexpr uint64_t kMaxHeaderBytes = 100u << 20;

std::runtime_error Error(const std::string& path, const std::string& message) {
  return std::runtime_error("safetensors: " + path + ": " + message);
}

nlohmann::json ParseJson(const char* begin, const char* end, const std::string& path, const char* what) {
  try {
    return nlohmann::json::parse(begin, end);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path, std::string("bad ") + what + " JSON: " + e.what());
  }
}

TensorRecord ParseEntry(const std::string& name, const nlohmann::json& value, uint64_t data_start, uint64_t data_bytes,
                        const std::string& path) {
  auto bad = [&](const std::string& why) { return Error(path, "tensor '" + name + "': bad header entry: " + why); };
  if (!value.is_object()) throw bad("not an object");
  if (!value.contains("dtype") || !value["dtype"].is_string()) throw bad("no string 'dtype'");
  if (!value.contains("shape") || !value["shape"].is_array()) throw bad("no array 'shape'");
  if (!value.contains("data_offsets") || !value["data_offsets"].is_array() || value["data_offsets"].size() != 2) {
    throw bad("no [begin, end] 'data_offsets'");
  }
  TensorRecord record;
  record.dtype = value["dtype"].get<std::string>();
  const int64_t element_bytes = SafeTensorsDTypeBytes(record.dtype);
  if (element_bytes == 0) throw bad("unknown dtype '" + record.dtype + "'");
  uint64_t elements = 1;
  for (const auto& dim : value["shape"]) {
    if (!dim.is_number_unsigned()) throw bad("shape has a non-integer or negative dimension");
    const uint64_t size = dim.get<uint64_t>();
    if (size != 0 && elements > (uint64_t{1} << 62) / size) throw bad("shape is too large");
    elements *= size;
    record.shape.push_back(static_cast<int64_t>(size));
  }
  const auto& offsets = value["data_offsets"];
  if (!offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned()) throw bad("data_offsets are not integers");
  const uint64_t begin = offsets[0].get<uint64_t>(), end = offsets[1].get<uint64_t>();
  if (begin > end) throw bad("data_offsets begin after they end");
  if (end > data_bytes) {
    throw Error(path, "truncated: tensor '" + name + "' ends at byte " + std::to_string(end) +
                          " of the data, which has " + std::to_string(data_bytes));
  }
  // By division: elements * element_bytes can pass 2^64 (elements < 2^62, up to 8 bytes each).
  if ((end - begin) % element_bytes != 0 || (end - begin) / element_bytes != elements) {
    const uint64_t bytes = static_cast<uint64_t>(element_bytes);
    const std::string needed = elements <= UINT64_MAX / bytes ? std::to_string(elements * bytes) : "over 2^64";
    throw bad("shape " + ShapeString(record.shape) + " of " + record.dtype + " needs " + needed +
              " bytes, data_offsets give " + std::to_string(end - begin));
  }
  record.offset = data_start + begin;
  record.bytes = end - begin;
  return record;
}

}  // namespace

int64_t SafeTensorsDTypeBytes(const std::string& dtype) {
  static const std::map<std::string, int64_t, std::less<>> kBytes = {
      {"F64", 8}, {"F32", 4},  {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4},     {"I16", 2},     {"I8", 1},
      {"U8", 1},  {"BOOL", 1}, {"U64", 8}, {"U32", 4},  {"U16", 2}, {"F8_E4M3", 1}, {"F8_E5M2", 1},
  };
  auto found = kBytes.find(dtype);
  return found == kBytes.end() ? 0 : found->second;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

std::map<std::string, TensorRecord> ParseSafeTensorsHeader(const uint8_t* data, uint64_t size,
                                                           const std::string& path) {
  if (size < 8) throw Error(path, "truncated: " + std::to_string(size) + " bytes, no header length");
  uint64_t header_bytes = 0;
  std::memcpy(&header_bytes, data, 8);  // little-endian: safetensors.cpp asserts the host is
  if (header_bytes > kMaxHeaderBytes) {
    throw Error(path, "bad header: length " + std::to_string(header_bytes) + " is too large");
  }
  if (header_bytes > size - 8) {
    throw Error(path, "truncated: header says " + std::to_string(header_bytes) + " bytes, file has " +
                          std::to_string(size - 8) + " after the length");
  }
  const char* begin = reinterpret_cast<const char*>(data + 8);
  const nlohmann::json header = ParseJson(begin, begin + header_bytes, path, "header");
  if (!header.is_object()) throw Error(path, "bad header: not a JSON object");
  const uint64_t data_start = 8 + header_bytes;
  std::map<std::string, TensorRecord> records;
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") continue;
    records.emplace(name, ParseEntry(name, value, data_start, size - data_start, path));
  }
  return records;
}

std::map<std::string, std::string> ParseSafeTensorsIndex(std::string_view json, const std::string& path) {
  const nlohmann::json index = ParseJson(json.data(), json.data() + json.size(), path, "index");
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
    throw Error(path, "no 'weight_map' object");
  }
  std::map<std::string, std::string> shards;
  for (const auto& [name, shard] : index["weight_map"].items()) {
    if (!shard.is_string()) throw Error(path, "weight_map['" + name + "'] is not a file name");
    const std::string file = shard.get<std::string>();
    if (file.empty() || file == "." || file == ".." || file.find('/') != std::string::npos ||
        file.find('\0') != std::string::npos) {
      throw Error(path, "weight_map['" + name + "'] = '" + file + "' is not a file name in this folder");
    }
    shards.emplace(name, file);
  }
  return shards;
}

}  // namespace thalamus::models
