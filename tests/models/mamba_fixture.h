// Test helper: the tiny Mamba checkpoints in tests/data/models and what
// transformers' MambaForCausalLM computed on them (ids_*, logits_*,
// greedy_prompt, greedy_tokens; tools/fixtures/make_model_fixtures.py).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

#include "models/safetensors.h"

namespace thalamus::models::testing_support {

inline const std::string kModelsDataDir = std::string(THALAMUS_TEST_DATA_DIR) + "/models";
inline const std::string kMambaHfDir = kModelsDataDir + "/mamba-tiny-hf";
inline const std::string kMambaStateSpacesDir = kModelsDataDir + "/mamba-tiny-ss";

inline const SafeTensors& MambaExpected() {
  static const SafeTensors expected = SafeTensors::Open(kModelsDataDir + "/mamba-tiny-expected.safetensors");
  return expected;
}

inline std::vector<int32_t> MambaExpectedIds(const std::string& name) {
  torch::Tensor ids = MambaExpected().Load(name, torch::kInt32);
  return std::vector<int32_t>(ids.data_ptr<int32_t>(), ids.data_ptr<int32_t>() + ids.numel());
}

}  // namespace thalamus::models::testing_support
