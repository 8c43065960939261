#include "gate/gate_features.h"

#include <cmath>

namespace thalamus::gate {
namespace {

bool LooksLikeCode(std::string_view text) {
  static constexpr std::string_view kMarkers[] = {"```",  "{",       "};",      "();", "=>", "->",    "#include",
                                                  "def ", "import ", "return ", "==",  "!=", "std::", "()"};
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

}  // namespace thalamus::gate
