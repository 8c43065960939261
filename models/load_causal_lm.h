// models/load_causal_lm: opens a Hugging Face checkpoint directory as the
// architecture its config.json names, for tools that take any model.
//
//   model_type "gpt_neox"                       -> GptNeoxModel (Pythia, Dolly)
//   model_type "mamba", or none with d_model    -> MambaModel (both namings)
//
// Errors: std::runtime_error naming config.json when it cannot be read or
// names another architecture; the model loaders' errors otherwise.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "models/causal_lm.h"

namespace thalamus::models {

struct LoadedCausalLM {
  std::unique_ptr<CausalLM> model;
  std::string architecture;             // "mamba" or "gpt_neox"
  std::optional<int32_t> eos_token_id;  // from config.json, when it has one
};

// dtype: float32 or bfloat16. device: a Mamba model may run on CUDA; GPT-NeoX
// takes only the CPU (std::invalid_argument otherwise).
LoadedCausalLM LoadCausalLM(const std::string& dir, torch::ScalarType dtype = torch::kFloat32,
                            torch::Device device = torch::kCPU);

}  // namespace thalamus::models
