// The gate's cheap features, the token estimate and the example reader: the
// parts of the gate that need no LibTorch.
#include <cmath>
#include <fstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "router/gate_model.h"

namespace thalamus::router {
namespace {

bool LooksLikeCode(std::string_view text) {
  static constexpr std::string_view kMarkers[] = {"```", "{", "};", "();", "=>", "->", "#include", "def ",
                                                  "import ", "return ", "==", "!=", "std::", "()"};
  for (std::string_view marker : kMarkers) {
    if (text.find(marker) != std::string_view::npos) return true;
  }
  return false;
}

}  // namespace

size_t EstimateTokens(std::string_view text) { return (text.size() + 3) / 4; }

std::vector<float> GateFeatures(std::string_view text) {
  return {static_cast<float>(std::log1p(static_cast<double>(EstimateTokens(text))) / 8.0),
          LooksLikeCode(text) ? 1.0f : 0.0f, text.find('?') != std::string_view::npos ? 1.0f : 0.0f};
}

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

}  // namespace thalamus::router
