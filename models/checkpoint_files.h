// models/checkpoint_files: what every checkpoint loader checks and reads
// before its own tensors. Private to models/.
#pragma once

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

}  // namespace thalamus::models
