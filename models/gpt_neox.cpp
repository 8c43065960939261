// The GPT-NeoX forward passes: blocked causal prefill and the cached step.
#include "models/gpt_neox.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include "models/linear.h"

namespace thalamus::models {
namespace {

using at::indexing::Slice;

// Queries per attention block in Prefill: bounds the score matrix to
// heads x kQueryBlock x length floats (12 x 256 x 8192 x 4 B = 100 MB at worst).
constexpr int64_t kQueryBlock = 256;
constexpr int64_t kInitialCapacity = 64;

// Per layer, per slot, per head: the rotated keys and the values of every
// position so far, in the activation dtype.
class GptNeoxState final : public CausalLM::State {
 public:
  GptNeoxState(const GptNeoxConfig& c, int64_t slots, torch::ScalarType dtype, int64_t max_context)
      : lengths(slots, 0),
        layers_(c.num_layers),
        heads_(c.num_heads),
        head_size_(c.head_size()),
        dtype_(dtype),
        max_context_(max_context) {
    Allocate(std::min(kInitialCapacity, max_context));
  }
  int64_t slots() const override { return static_cast<int64_t>(lengths.size()); }

  // Makes room for `needed` positions per slot, doubling to amortize copies.
  void Reserve(int64_t needed) {
    if (needed <= capacity_) return;
    torch::Tensor old_keys = keys, old_values = values;
    const int64_t old_capacity = capacity_;
    Allocate(std::min(max_context_, std::max(needed, 2 * capacity_)));
    keys.narrow(3, 0, old_capacity).copy_(old_keys);
    values.narrow(3, 0, old_capacity).copy_(old_values);
  }

  std::vector<int64_t> lengths;
  torch::Tensor keys, values;  // (layers, slots, heads, capacity, head_size)

 private:
  void Allocate(int64_t capacity) {
    capacity_ = capacity;
    auto options = torch::TensorOptions().dtype(dtype_);
    const std::vector<int64_t> shape = {layers_, slots(), heads_, capacity, head_size_};
    keys = torch::zeros(shape, options);
    values = torch::zeros(shape, options);
  }

  int64_t layers_, heads_, head_size_;
  torch::ScalarType dtype_;
  int64_t max_context_;
  int64_t capacity_ = 0;
};

GptNeoxState& Cast(CausalLM::State& state) {
  auto* neox = dynamic_cast<GptNeoxState*>(&state);
  if (neox == nullptr) throw std::invalid_argument("gpt_neox: the state was not made by a GPT-NeoX model");
  return *neox;
}

// softmax(scores * scale + mask) @ values, the softmax in fp32 as transformers does.
torch::Tensor Attend(const torch::Tensor& query, const torch::Tensor& keys, const torch::Tensor& values,
                     const torch::Tensor& masked, double scale) {
  torch::Tensor scores = at::matmul(query, keys.transpose(-1, -2)).mul_(scale);
  scores.masked_fill_(masked, -std::numeric_limits<float>::infinity());
  torch::Tensor weights = at::softmax(scores, -1, torch::kFloat32).to(values.scalar_type());
  return at::matmul(weights, values);
}

}  // namespace

GptNeoxModel::GptNeoxModel(GptNeoxConfig config, Weights weights, int64_t max_context)
    : config_(std::move(config)), weights_(std::move(weights)), dtype_(weights_.embed_in.scalar_type()) {
  config_.Validate("gpt_neox");
  if (max_context < 0) throw std::invalid_argument("gpt_neox: max_context must be >= 0");
  max_context_ =
      max_context == 0 ? config_.max_position_embeddings : std::min(max_context, config_.max_position_embeddings);
  const int64_t dims = config_.rotary_dims();
  inv_freq_ =
      1.0 / torch::pow(config_.rotary_emb_base, torch::arange(0, dims, 2, torch::kFloat32) / static_cast<double>(dims));
}

int64_t GptNeoxModel::WeightBytes() const {
  int64_t bytes = 0;
  auto add = [&](const torch::Tensor& t) {
    if (t.defined()) bytes += t.numel() * t.element_size();
  };
  // embed_in is read a row per token, not whole.
  add(weights_.embed_out);
  add(weights_.final_ln_weight);
  add(weights_.final_ln_bias);
  for (const Layer& l : weights_.layers) {
    for (const torch::Tensor* t : {&l.ln1_weight, &l.ln1_bias, &l.ln2_weight, &l.ln2_bias, &l.qkv, &l.qkv_bias,
                                   &l.dense, &l.dense_bias, &l.fc_in, &l.fc_in_bias, &l.fc_out, &l.fc_out_bias}) {
      add(*t);
    }
  }
  return bytes;
}

std::unique_ptr<CausalLM::State> GptNeoxModel::NewState(int64_t slots) const {
  if (slots < 1) throw std::invalid_argument("gpt_neox: a state needs at least one slot");
  return std::make_unique<GptNeoxState>(config_, slots, dtype_, max_context_);
}

// The residual stream after a layer: attention and MLP side by side (Pythia)
// or one after the other.
torch::Tensor GptNeoxModel::AddAttentionAndMlp(const Layer& w, const torch::Tensor& hidden,
                                               const torch::Tensor& attention) const {
  if (config_.use_parallel_residual) {
    return hidden + attention + Mlp(w, LayerNorm(hidden, w.ln2_weight, w.ln2_bias));
  }
  torch::Tensor after_attention = hidden + attention;
  return after_attention + Mlp(w, LayerNorm(after_attention, w.ln2_weight, w.ln2_bias));
}

torch::Tensor GptNeoxModel::Embed(std::span<const int32_t> ids) const {
  return weights_.embed_in.index_select(0, TokenIndex(ids, config_.vocab_size, "gpt_neox")).to(torch::kFloat32);
}

std::pair<torch::Tensor, torch::Tensor> GptNeoxModel::RotaryAngles(const torch::Tensor& positions) const {
  torch::Tensor freqs = positions.to(torch::kFloat32).unsqueeze(-1) * inv_freq_;
  torch::Tensor angles = torch::cat({freqs, freqs}, -1);
  return {angles.cos().to(dtype_), angles.sin().to(dtype_)};
}

torch::Tensor GptNeoxModel::Rotate(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) const {
  const int64_t dims = config_.rotary_dims(), half = dims / 2;
  if (dims == 0) return x;
  torch::Tensor rot = x.narrow(-1, 0, dims);
  torch::Tensor rotated_half = torch::cat({-rot.narrow(-1, half, half), rot.narrow(-1, 0, half)}, -1);
  torch::Tensor out = rot * cos + rotated_half * sin;
  if (dims == x.size(-1)) return out;
  return torch::cat({out, x.narrow(-1, dims, x.size(-1) - dims)}, -1);
}

torch::Tensor GptNeoxModel::LayerNorm(const torch::Tensor& x, const torch::Tensor& weight,
                                      const torch::Tensor& bias) const {
  return at::layer_norm(x.to(torch::kFloat32), {config_.hidden_size}, weight, bias, config_.layer_norm_eps).to(dtype_);
}

torch::Tensor GptNeoxModel::Mlp(const Layer& w, const torch::Tensor& x) const {
  torch::Tensor h = at::gelu(Linear(x, w.fc_in, w.fc_in_bias));  // exact (erf) GELU, hidden_act "gelu"
  return Linear(h, w.fc_out, w.fc_out_bias).to(torch::kFloat32);
}

torch::Tensor GptNeoxModel::Logits(const torch::Tensor& hidden) const {
  torch::Tensor normed = LayerNorm(hidden, weights_.final_ln_weight, weights_.final_ln_bias);
  return Linear(normed, weights_.embed_out).to(torch::kFloat32);
}

torch::Tensor GptNeoxModel::Prefill(State& state, int64_t slot, std::span<const int32_t> ids,
                                    bool all_positions) const {
  GptNeoxState& s = Cast(state);
  if (slot < 0 || slot >= s.slots())
    throw std::invalid_argument("gpt_neox: slot " + std::to_string(slot) + " out of range");
  if (ids.empty()) throw std::invalid_argument("gpt_neox: prefill needs at least one token");
  const int64_t length = static_cast<int64_t>(ids.size());
  if (length > max_context_) {
    throw std::invalid_argument("gpt_neox: " + std::to_string(length) + " tokens exceed the context limit of " +
                                std::to_string(max_context_));
  }
  c10::InferenceMode inference;
  const GptNeoxConfig& c = config_;
  const int64_t heads = c.num_heads, head = c.head_size();
  const double scale = 1.0 / std::sqrt(static_cast<double>(head));
  s.lengths[slot] = 0;  // forgotten even if this prefill fails
  s.Reserve(length);
  auto [cos, sin] = RotaryAngles(torch::arange(length, torch::kInt64));  // (L, rotary_dims)

  torch::Tensor hidden = Embed(ids);  // (L, hidden), the fp32 residual stream
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const Layer& w = weights_.layers[l];
    torch::Tensor qkv = Linear(LayerNorm(hidden, w.ln1_weight, w.ln1_bias), w.qkv, w.qkv_bias)
                            .view({length, heads, 3 * head})
                            .transpose(0, 1);  // (heads, L, 3 head)
    torch::Tensor query = Rotate(qkv.narrow(2, 0, head), cos, sin);
    torch::Tensor keys = s.keys[l][slot].narrow(1, 0, length);
    torch::Tensor values = s.values[l][slot].narrow(1, 0, length);
    keys.copy_(Rotate(qkv.narrow(2, head, head), cos, sin));
    values.copy_(qkv.narrow(2, 2 * head, head));

    std::vector<torch::Tensor> blocks;
    for (int64_t start = 0; start < length; start += kQueryBlock) {
      const int64_t rows = std::min(kQueryBlock, length - start), seen = start + rows;
      torch::Tensor masked = torch::ones({rows, seen}, torch::kBool).triu_(start + 1);  // key j > query start+i
      blocks.push_back(
          Attend(query.narrow(1, start, rows), keys.narrow(1, 0, seen), values.narrow(1, 0, seen), masked, scale));
    }
    torch::Tensor context = torch::cat(blocks, 1).transpose(0, 1).reshape({length, c.hidden_size});
    torch::Tensor attention = Linear(context, w.dense, w.dense_bias).to(torch::kFloat32);
    hidden = AddAttentionAndMlp(w, hidden, attention);
  }
  s.lengths[slot] = length;
  return Logits(all_positions ? hidden : hidden.narrow(0, length - 1, 1));
}

torch::Tensor GptNeoxModel::Step(State& state, std::span<const int32_t> tokens) const {
  GptNeoxState& s = Cast(state);
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n < 1 || n > s.slots())
    throw std::invalid_argument("gpt_neox: step of " + std::to_string(n) + " tokens on " + std::to_string(s.slots()) +
                                " slots");
  int64_t longest = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (s.lengths[i] + 1 > max_context_) {
      throw std::invalid_argument("gpt_neox: slot " + std::to_string(i) + " is at the context limit of " +
                                  std::to_string(max_context_));
    }
    longest = std::max(longest, s.lengths[i] + 1);
  }
  c10::InferenceMode inference;
  const GptNeoxConfig& c = config_;
  const int64_t heads = c.num_heads, head = c.head_size();
  const double scale = 1.0 / std::sqrt(static_cast<double>(head));
  s.Reserve(longest);
  torch::Tensor positions =
      torch::tensor(std::vector<int64_t>(s.lengths.begin(), s.lengths.begin() + n), torch::kInt64);
  auto [cos, sin] = RotaryAngles(positions.unsqueeze(1));  // (n, 1, rotary_dims): broadcast over heads
  torch::Tensor slots = torch::arange(n, torch::kInt64);
  // Slot i sees its own positions 0..lengths[i] (the new token included).
  torch::Tensor masked =
      (torch::arange(longest, torch::kInt64).unsqueeze(0) > positions.unsqueeze(1)).view({n, 1, 1, longest});

  torch::Tensor hidden = Embed(tokens);  // (n, hidden)
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const Layer& w = weights_.layers[l];
    torch::Tensor qkv =
        Linear(LayerNorm(hidden, w.ln1_weight, w.ln1_bias), w.qkv, w.qkv_bias).view({n, heads, 3 * head});
    torch::Tensor query = Rotate(qkv.narrow(2, 0, head), cos, sin);  // (n, heads, head)
    s.keys[l].index_put_({slots, Slice(), positions, Slice()}, Rotate(qkv.narrow(2, head, head), cos, sin));
    s.values[l].index_put_({slots, Slice(), positions, Slice()}, qkv.narrow(2, 2 * head, head));
    torch::Tensor keys = s.keys[l].narrow(0, 0, n).narrow(2, 0, longest);  // (n, heads, T, head)
    torch::Tensor values = s.values[l].narrow(0, 0, n).narrow(2, 0, longest);
    torch::Tensor context = Attend(query.unsqueeze(2), keys, values, masked, scale).reshape({n, c.hidden_size});
    torch::Tensor attention = Linear(context, w.dense, w.dense_bias).to(torch::kFloat32);
    hidden = AddAttentionAndMlp(w, hidden, attention);
  }
  for (int64_t i = 0; i < n; ++i) ++s.lengths[i];
  return Logits(hidden);
}

void GptNeoxModel::CopySlot(State& state, int64_t from, int64_t to) const {
  GptNeoxState& s = Cast(state);
  if (from < 0 || to < 0 || from >= s.slots() || to >= s.slots())
    throw std::invalid_argument("gpt_neox: slot out of range");
  if (from == to) return;
  c10::InferenceMode inference;
  const int64_t length = s.lengths[from];
  s.keys.select(1, to).narrow(2, 0, length).copy_(s.keys.select(1, from).narrow(2, 0, length));
  s.values.select(1, to).narrow(2, 0, length).copy_(s.values.select(1, from).narrow(2, 0, length));
  s.lengths[to] = length;
}

ContextPolicy ContextPolicyFromName(const std::string& name) {
  if (name == "error") return ContextPolicy::kError;
  if (name == "truncate_left") return ContextPolicy::kTruncateLeft;
  throw std::invalid_argument("context_policy '" + name + "' is not supported (error or truncate_left)");
}

std::vector<int32_t> FitPromptToContext(std::vector<int32_t> prompt, int64_t max_context, int64_t max_tokens,
                                        ContextPolicy policy) {
  if (policy == ContextPolicy::kError || max_context <= 0) return prompt;
  const int64_t keep = std::max(max_context - std::max<int64_t>(max_tokens, 1), std::max<int64_t>(max_context / 2, 1));
  if (static_cast<int64_t>(prompt.size()) <= keep) return prompt;
  prompt.erase(prompt.begin(), prompt.end() - keep);
  return prompt;
}

}  // namespace thalamus::models
