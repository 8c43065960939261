// models/json_file: reads a checkpoint's JSON file (config.json and the like).
// Private to models/.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace thalamus::models {

// The JSON object in `path`. Throws std::runtime_error "WHO: PATH: ..." when
// the file cannot be opened, is not JSON, or is not an object.
nlohmann::json ReadJsonObject(const std::string& path, const std::string& who);

}  // namespace thalamus::models
