#include "models/json_file.h"

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

}  // namespace thalamus::models
