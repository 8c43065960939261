// models/checkpoint_files: what every checkpoint loader checks and reads
// before its own tensors. Private to models/.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace thalamus::models {

// The JSON object in `path`. Throws std::runtime_error "WHO: PATH: ..." when
// the file cannot be opened, is not JSON, or is not an object.
nlohmann::json ReadJsonObject(const std::string& path, const std::string& who);

// Throws std::runtime_error "WHO: DIR: ..." unless `dir` is a directory that
// may hold safetensors weights (a folder with only pytorch_model.bin gets a
// hint to convert it).
void CheckCheckpointDirectory(const std::string& dir, const std::string& who);

// Typed reads of config.json keys with errors "WHO: PATH: KEY: ...". A key
// that is absent or null takes the fallback (or is "missing" without one).
class ConfigReader {
 public:
  ConfigReader(std::string who, std::string path) : who_(std::move(who)), path_(std::move(path)) {}

  std::runtime_error Error(const std::string& key, const std::string& message) const;
  static bool Present(const nlohmann::json& object, const std::string& key);
  // An integer >= 1.
  int64_t Int(const nlohmann::json& object, const std::string& key,
              std::optional<int64_t> fallback = std::nullopt) const;
  bool Bool(const nlohmann::json& object, const std::string& key, bool fallback) const;
  double Number(const nlohmann::json& object, const std::string& key, double fallback) const;
  // Throws unless the key is absent, null or equal to `allowed`; `why` says what is supported.
  void Expect(const nlohmann::json& object, const std::string& key, const nlohmann::json& allowed,
              const std::string& why) const;

 private:
  std::string who_;
  std::string path_;
};

}  // namespace thalamus::models
