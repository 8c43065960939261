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
    throw std::runtime_error(who + ": " + dir + ": only pytorch_model.bin found; convert it to model.safetensors "
                             "(safetensors.torch.save_file(torch.load(...)))");
  }
}

}  // namespace thalamus::models
