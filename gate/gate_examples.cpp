#include "gate/gate_examples.h"

#include <fstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace thalamus::gate {

std::vector<GateExample> ReadGateExamples(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot read the examples file");
  std::vector<GateExample> examples;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(number) + ": ";
    nlohmann::json record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (record.is_discarded() || !record.is_object()) throw std::runtime_error(where + "not a JSON object");
    auto text = record.find("text");
    auto expert = record.find("expert");
    if (text == record.end() || !text->is_string() || text->get<std::string>().empty()) {
      throw std::runtime_error(where + "\"text\" must be a non-empty string");
    }
    if (expert == record.end() || !expert->is_string() || expert->get<std::string>().empty()) {
      throw std::runtime_error(where + "\"expert\" must be a non-empty string");
    }
    examples.push_back({text->get<std::string>(), expert->get<std::string>()});
  }
  return examples;
}

}  // namespace thalamus::gate
