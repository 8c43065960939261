// models/mamba: the Mamba-1 language model (state-spaces/mamba). Runs where its
// tensors are: CPU, or CUDA when LibTorch has CUDA (kernels/ dispatches by
// device). On CUDA, Step replays one captured CUDA graph per batch size
// (models/cuda_graph.h) unless SetCudaGraphs(false).
//
// Load() reads a Hugging Face checkpoint directory: config.json plus
// model.safetensors (or shards), in either naming:
//   state-spaces/mamba-*   d_model, n_layer, ssm_cfg, vocab_size padded to
//                          pad_vocab_size_multiple; backbone.embedding.weight
//   transformers (*-hf)    hidden_size, state_size, num_hidden_layers, ...;
//                          backbone.embeddings.weight
// Each block: RMSNorm -> in_proj -> (x, z); x -> causal depthwise conv1d ->
// SiLU -> x_proj -> (dt, B, C); dt -> dt_proj -> softplus; selective scan with
// A = -exp(A_log), the D skip and the SiLU(z) gate -> out_proj, added to the
// residual (kept in fp32). Then norm_f and the LM head (tied to the embedding
// unless lm_head.weight is present).
// Prefill runs the selective scan; Step is the O(1) recurrent update carrying
// each layer's conv window and SSM state (kernels/kernels.h does both).
//
// Errors: std::runtime_error naming the file and tensor (with both shapes)
// for missing or mismatched weights and unsupported configurations.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "models/causal_lm.h"

namespace thalamus::models {

struct MambaConfig {
  int64_t d_model = 0;
  int64_t n_layer = 0;
  int64_t vocab_size = 0;  // rows of the embedding, already padded
  int64_t d_state = 16;
  int64_t d_conv = 4;
  int64_t expand = 2;
  int64_t d_inner = 0;  // expand * d_model unless the config says otherwise
  int64_t dt_rank = 0;  // ceil(d_model / 16) for "auto"
  bool bias = false;    // in_proj / out_proj biases
  bool conv_bias = true;
  double norm_eps = 1e-5;
  bool tie_embeddings = true;
  std::optional<int32_t> eos_token_id;

  // Reads either naming of config.json; throws naming the file and key.
  static MambaConfig FromFile(const std::string& path);
};

class MambaModel : public CausalLM {
 public:
  struct Layer {
    torch::Tensor norm;                     // (d_model)
    torch::Tensor in_proj, in_proj_bias;    // (2*d_inner, d_model), (2*d_inner) or undefined
    torch::Tensor conv_weight, conv_bias;   // (d_inner, d_conv), (d_inner) or undefined
    torch::Tensor x_proj;                   // (dt_rank + 2*d_state, d_inner)
    torch::Tensor dt_proj, dt_bias;         // (d_inner, dt_rank), (d_inner)
    torch::Tensor A;                        // -exp(A_log): (d_inner, d_state), fp32
    torch::Tensor D;                        // (d_inner), fp32
    torch::Tensor out_proj, out_proj_bias;  // (d_model, d_inner), (d_model) or undefined
  };
  struct Weights {
    torch::Tensor embedding;  // (vocab_size, d_model)
    std::vector<Layer> layers;
    torch::Tensor norm_f;   // (d_model)
    torch::Tensor lm_head;  // (vocab_size, d_model); the embedding when tied
  };

  // dtype: float32 or bfloat16 weights and activations (state stays fp32).
  static std::unique_ptr<MambaModel> Load(const std::string& dir, torch::ScalarType dtype = torch::kFloat32,
                                          torch::Device device = torch::kCPU);
  // Random weights of the right shapes and scales, for benchmarks.
  // Drawn on the CPU whatever `device`, so a seed gives the same model everywhere.
  static std::unique_ptr<MambaModel> Random(const MambaConfig& config, uint64_t seed,
                                            torch::ScalarType dtype = torch::kFloat32,
                                            torch::Device device = torch::kCPU);

  MambaModel(MambaConfig config, Weights weights);

  const MambaConfig& config() const { return config_; }
  torch::Device device() const { return device_; }
  // CUDA only: replay the decode step as a CUDA graph (default) or launch its
  // kernels one by one. Set before decoding; states keep graphs captured earlier.
  void SetCudaGraphs(bool enabled) { cuda_graphs_ = enabled; }
  // Bytes of weights read per decoded token (all of them, once).
  int64_t WeightBytes() const;

  std::unique_ptr<State> NewState(int64_t slots) const override;
  torch::Tensor Prefill(State& state, int64_t slot, std::span<const int32_t> ids, bool all_positions) const override;
  torch::Tensor Step(State& state, std::span<const int32_t> tokens) const override;
  void CopySlot(State& state, int64_t from, int64_t to) const override;
  int64_t VocabSize() const override { return config_.vocab_size; }
  int64_t MaxContext() const override { return 0; }

 private:
  torch::Tensor Embed(const torch::Tensor& ids) const;
  torch::Tensor StepOnDevice(State& state, const torch::Tensor& ids) const;
  torch::Tensor Logits(const torch::Tensor& hidden) const;

  MambaConfig config_;
  Weights weights_;
  torch::ScalarType dtype_;
  torch::Device device_;
  bool cuda_graphs_ = true;
};

}  // namespace thalamus::models
