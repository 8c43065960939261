// models/gpt_neox: the GPT-NeoX language model (Pythia, Dolly) with a KV cache.
//
// Load() reads a Hugging Face checkpoint directory (config.json plus
// model.safetensors or shards), computing exactly what transformers'
// GPTNeoXForCausalLM does: embed_in; per layer, LayerNorm -> fused
// query_key_value (per head [q, k, v]) -> rotary embedding on the first
// rotary_pct of each head (rotate-half, base rotary_emb_base) -> causal
// attention scaled by 1/sqrt(head_size) -> dense, and LayerNorm -> GELU MLP,
// joined as x + attn(ln1(x)) + mlp(ln2(x)) (use_parallel_residual) or
// sequentially; final_layer_norm; embed_out (untied unless the config ties it).
// Weights may be stored as F32/F16/BF16; they run in float32 or bfloat16 with
// LayerNorm, softmax and the residual stream in float32.
//
// The State keeps each slot's keys and values (the KV cache), growing by
// doubling up to MaxContext(), so short sequences cost little memory. Prefill
// attends in blocks of queries to bound the score matrix; Step attends each
// slot's new token over its own cached length.
//
// Errors: std::runtime_error naming the file, the tensor and both shapes for
// missing or mismatched weights, and the key for unsupported configurations;
// std::invalid_argument for ids outside the vocabulary or a sequence past
// MaxContext().
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "models/causal_lm.h"

namespace thalamus::models {

struct GptNeoxConfig {
  int64_t hidden_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t intermediate_size = 0;
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 2048;
  double rotary_pct = 0.25;
  double rotary_emb_base = 10000.0;
  double layer_norm_eps = 1e-5;
  bool use_parallel_residual = true;
  bool attention_bias = true;
  bool tie_word_embeddings = false;
  std::optional<int32_t> eos_token_id;

  int64_t head_size() const { return hidden_size / num_heads; }
  // Leading dims of each head that rotate, as transformers rounds them.
  int64_t rotary_dims() const { return static_cast<int64_t>(static_cast<double>(head_size()) * rotary_pct); }

  // Reads config.json in the Pythia naming (rotary_pct, rotary_emb_base) or
  // the newer transformers one (rope_parameters / rope_scaling); throws
  // std::runtime_error naming the file and key.
  static GptNeoxConfig FromFile(const std::string& path);
  // Throws std::runtime_error when the sizes do not fit together.
  void Validate(const std::string& where) const;
};

class GptNeoxModel : public CausalLM {
 public:
  struct Layer {
    torch::Tensor ln1_weight, ln1_bias;  // input_layernorm (hidden), fp32
    torch::Tensor ln2_weight, ln2_bias;  // post_attention_layernorm (hidden), fp32
    torch::Tensor qkv, qkv_bias;         // (3*hidden, hidden), (3*hidden) or undefined
    torch::Tensor dense, dense_bias;     // (hidden, hidden), (hidden) or undefined
    torch::Tensor fc_in, fc_in_bias;     // dense_h_to_4h: (intermediate, hidden), (intermediate)
    torch::Tensor fc_out, fc_out_bias;   // dense_4h_to_h: (hidden, intermediate), (hidden)
  };
  struct Weights {
    torch::Tensor embed_in;  // (vocab, hidden)
    std::vector<Layer> layers;
    torch::Tensor final_ln_weight, final_ln_bias;  // (hidden), fp32
    torch::Tensor embed_out;                       // (vocab, hidden); embed_in when tied
  };

  // dtype: float32 or bfloat16 weights and activations. max_context: 0 for
  // max_position_embeddings, else the smaller of the two.
  static std::unique_ptr<GptNeoxModel> Load(const std::string& dir, torch::ScalarType dtype = torch::kFloat32,
                                            int64_t max_context = 0);
  // Random weights of the right shapes and scales, for benchmarks.
  static std::unique_ptr<GptNeoxModel> Random(const GptNeoxConfig& config, uint64_t seed,
                                              torch::ScalarType dtype = torch::kFloat32);

  GptNeoxModel(GptNeoxConfig config, Weights weights, int64_t max_context = 0);

  const GptNeoxConfig& config() const { return config_; }
  // Bytes of weights read per decoded token.
  int64_t WeightBytes() const;

  std::unique_ptr<State> NewState(int64_t slots) const override;
  torch::Tensor Prefill(State& state, int64_t slot, std::span<const int32_t> ids, bool all_positions) const override;
  torch::Tensor Step(State& state, std::span<const int32_t> tokens) const override;
  void CopySlot(State& state, int64_t from, int64_t to) const override;
  int64_t VocabSize() const override { return config_.vocab_size; }
  int64_t MaxContext() const override { return max_context_; }

 private:
  torch::Tensor Embed(std::span<const int32_t> ids) const;
  // cos and sin (..., rotary_dims) of the angles at `positions` (any shape).
  std::pair<torch::Tensor, torch::Tensor> RotaryAngles(const torch::Tensor& positions) const;
  // x (..., head_size) with its leading rotary_dims rotated; cos/sin broadcast.
  torch::Tensor Rotate(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) const;
  torch::Tensor LayerNorm(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) const;
  torch::Tensor Mlp(const Layer& w, const torch::Tensor& x) const;
  torch::Tensor AddAttentionAndMlp(const Layer& w, const torch::Tensor& hidden, const torch::Tensor& attention) const;
  torch::Tensor Logits(const torch::Tensor& hidden) const;

  GptNeoxConfig config_;
  Weights weights_;
  torch::ScalarType dtype_;
  int64_t max_context_;
  torch::Tensor inv_freq_;  // (rotary_dims / 2), fp32
};

// How a prompt longer than the context is handled (ExpertConfig::context_policy).
enum class ContextPolicy { kError, kTruncateLeft };
// "error" or "truncate_left"; throws std::invalid_argument otherwise.
ContextPolicy ContextPolicyFromName(const std::string& name);
// Model-agnostic: with kTruncateLeft, keeps the end of a prompt that would
// leave fewer than max_tokens positions of max_context (but at least half the
// context, so a huge max_tokens still leaves a prompt); with kError, or when
// max_context is 0, returns the prompt unchanged (generation rejects it).
std::vector<int32_t> FitPromptToContext(std::vector<int32_t> prompt, int64_t max_context, int64_t max_tokens,
                                        ContextPolicy policy);

}  // namespace thalamus::models
