#include "models/checkpoint_files.h"

#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace thalamus::models {

nlohmann::json ReadJsonObject(const std::string& path, const std::string& who) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(who + ": " + path + ": cannot open");
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(who + ": " + path + ": bad JSON: " + e.what());
  }
  if (!root.is_object()) throw std::runtime_error(who + ": " + path + ": not a JSON object");
  return root;
}

void CheckCheckpointDirectory(const std::string& dir, const std::string& who) {
  namespace fs = std::filesystem;
  const fs::path root(dir);
  if (!fs::is_directory(root)) throw std::runtime_error(who + ": " + dir + ": not a directory");
  if (!fs::exists(root / "model.safetensors") && !fs::exists(root / "model.safetensors.index.json") &&
      fs::exists(root / "pytorch_model.bin")) {
    throw std::runtime_error(who + ": " + dir +
                             ": only pytorch_model.bin found; convert it to model.safetensors "
                             "(safetensors.torch.save_file(torch.load(...)))");
  }
}

std::runtime_error ConfigReader::Error(const std::string& key, const std::string& message) const {
  return std::runtime_error(who_ + ": " + path_ + ": " + key + ": " + message);
}

bool ConfigReader::Present(const nlohmann::json& object, const std::string& key) {
  return object.contains(key) && !object[key].is_null();
}

int64_t ConfigReader::Int(const nlohmann::json& object, const std::string& key, std::optional<int64_t> fallback) const {
  if (!Present(object, key)) {
    if (fallback) return *fallback;
    throw Error(key, "missing");
  }
  if (!object[key].is_number_integer()) throw Error(key, "must be an integer, got " + object[key].dump());
  const int64_t value = object[key].get<int64_t>();
  if (value < 1) throw Error(key, "must be >= 1, got " + std::to_string(value));
  return value;
}

bool ConfigReader::Bool(const nlohmann::json& object, const std::string& key, bool fallback) const {
  if (!Present(object, key)) return fallback;
  if (!object[key].is_boolean()) throw Error(key, "must be true or false, got " + object[key].dump());
  return object[key].get<bool>();
}

double ConfigReader::Number(const nlohmann::json& object, const std::string& key, double fallback) const {
  if (!Present(object, key)) return fallback;
  if (!object[key].is_number()) throw Error(key, "must be a number, got " + object[key].dump());
  return object[key].get<double>();
}

void ConfigReader::Expect(const nlohmann::json& object, const std::string& key, const nlohmann::json& allowed,
                          const std::string& why) const {
  if (Present(object, key) && object[key] != allowed) {
    throw Error(key, object[key].dump() + " is not supported (" + why + ")");
  }
}

}  // namespace thalamus::models
