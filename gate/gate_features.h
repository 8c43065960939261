// gate_features: what the gate reads besides the embedding, and the
// model-free token estimate the gate and the ralm plan share. No LibTorch.
// Pure functions: thread-safe, never throw.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace thalamus::gate {

// The cheap features next to the embedding, in this order. Named in the gate
// file so a file written by a different feature set is refused.
//   log_tokens:    log(1 + estimated tokens) / 8
//   has_code:      1 if the text looks like source code (``` fences, braces, ...)
//   question_mark: 1 if the text contains '?'
inline const std::vector<std::string>& GateFeatureNames() {
  static const std::vector<std::string> names = {"log_tokens", "has_code", "question_mark"};
  return names;
}
std::vector<float> GateFeatures(std::string_view text);

// A documented, model-free token estimate: one token per 4 bytes, rounded
// up (GPT-style BPE averages about 4 characters per English token).
size_t EstimateTokens(std::string_view text);

}  // namespace thalamus::gate
