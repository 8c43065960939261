// The Mamba forward passes: prefill (selective scan) and the recurrent step.
#include "models/mamba.h"

#include <cmath>
#include <map>
#include <stdexcept>
#include <string>

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <torch/version.h>

#include "kernels/kernels.h"
#include "models/cuda_graph.h"
#include "models/linear.h"

namespace thalamus::models {
namespace {

// Per layer, per slot: the conv window (last d_conv inputs of the conv, in the
// activation dtype) and the SSM state (fp32), as the kernels take them.
class MambaState final : public CausalLM::State {
 public:
  MambaState(const MambaConfig& c, int64_t slots, torch::ScalarType dtype, torch::Device device)
      : conv(torch::zeros({c.n_layer, slots, c.d_inner, c.d_conv}, torch::TensorOptions().dtype(dtype).device(device))),
        ssm(torch::zeros({c.n_layer, slots, c.d_inner, c.d_state},
                         torch::TensorOptions().dtype(torch::kFloat32).device(device))) {}
  int64_t slots() const override { return conv.size(1); }

  torch::Tensor conv;  // (n_layer, slots, d_inner, d_conv)
  torch::Tensor ssm;   // (n_layer, slots, d_inner, d_state)

  // CUDA decode: one captured step per batch size, over this state's tensors.
  struct StepGraph {
    explicit StepGraph(torch::Device device, int64_t batch)
        : graph(device), tokens(torch::zeros({batch}, torch::TensorOptions().dtype(torch::kInt64).device(device))) {}
    CudaGraph graph;
    torch::Tensor tokens;  // the step's input ids, refilled before each replay
    bool warmed_up = false;
  };
  std::map<int64_t, std::unique_ptr<StepGraph>> step_graphs;
};

MambaState& Cast(CausalLM::State& state) {
  auto* mamba = dynamic_cast<MambaState*>(&state);
  if (mamba == nullptr) throw std::invalid_argument("mamba: the state was not made by a Mamba model");
  return *mamba;
}

std::optional<torch::Tensor> Maybe(const torch::Tensor& t) {
  return t.defined() ? std::optional<torch::Tensor>(t) : std::nullopt;
}

// Computed in fp32 whatever the activation dtype, as state-spaces does. A
// decode step normalizes a few rows 49 times per token: one plain loop there
// instead of six tensor ops keeps the step's fixed cost down.
torch::Tensor RmsNorm(const torch::Tensor& x, const torch::Tensor& weight, double eps, torch::ScalarType dtype) {
  if (x.dim() == 2 && x.size(0) <= 8 && x.is_contiguous() && x.scalar_type() == torch::kFloat32 &&
      dtype == torch::kFloat32 && x.device().is_cpu()) {
    const int64_t rows = x.size(0), width = x.size(1);
    torch::Tensor out = torch::empty_like(x);
    const float* in = x.data_ptr<float>();
    const float* scale = weight.data_ptr<float>();
    float* result = out.data_ptr<float>();
    for (int64_t r = 0; r < rows; ++r) {
      double squares = 0;
      for (int64_t i = 0; i < width; ++i) squares += static_cast<double>(in[r * width + i]) * in[r * width + i];
      const float inverse = static_cast<float>(1.0 / std::sqrt(squares / width + eps));
      for (int64_t i = 0; i < width; ++i) result[r * width + i] = in[r * width + i] * inverse * scale[i];
    }
    return out;
  }
  torch::Tensor x32 = x.to(torch::kFloat32);
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 8)
  // One fused kernel on CUDA instead of six: the decode step runs this 49 times per token.
  if (x32.is_cuda()) return at::rms_norm(x32, {x32.size(-1)}, weight, eps).to(dtype);
#endif
  return (x32 * at::rsqrt(x32.square().mean(-1, true) + eps) * weight).to(dtype);
}

}  // namespace

MambaModel::MambaModel(MambaConfig config, Weights weights)
    : config_(std::move(config)),
      weights_(std::move(weights)),
      dtype_(weights_.embedding.scalar_type()),
      device_(weights_.embedding.device()) {}

int64_t MambaModel::WeightBytes() const {
  int64_t bytes = 0;
  auto add = [&](const torch::Tensor& t) {
    if (t.defined()) bytes += t.numel() * t.element_size();
  };
  add(weights_.embedding);
  if (!weights_.lm_head.is_same(weights_.embedding)) add(weights_.lm_head);
  add(weights_.norm_f);
  for (const Layer& l : weights_.layers) {
    for (const torch::Tensor* t : {&l.norm, &l.in_proj, &l.in_proj_bias, &l.conv_weight, &l.conv_bias, &l.x_proj,
                                   &l.dt_proj, &l.dt_bias, &l.A, &l.D, &l.out_proj, &l.out_proj_bias}) {
      add(*t);
    }
  }
  return bytes;
}

std::unique_ptr<CausalLM::State> MambaModel::NewState(int64_t slots) const {
  if (slots < 1) throw std::invalid_argument("mamba: a state needs at least one slot");
  return std::make_unique<MambaState>(config_, slots, dtype_, device_);
}

torch::Tensor MambaModel::Embed(const torch::Tensor& ids) const {
  return weights_.embedding.index_select(0, ids).to(torch::kFloat32);
}

torch::Tensor MambaModel::Logits(const torch::Tensor& hidden) const {
  torch::Tensor normed = RmsNorm(hidden, weights_.norm_f, config_.norm_eps, dtype_);
  return Linear(normed, weights_.lm_head).to(torch::kFloat32);
}

torch::Tensor MambaModel::Prefill(State& state, int64_t slot, std::span<const int32_t> ids, bool all_positions) const {
  MambaState& s = Cast(state);
  if (slot < 0 || slot >= s.slots())
    throw std::invalid_argument("mamba: slot " + std::to_string(slot) + " out of range");
  if (ids.empty()) throw std::invalid_argument("mamba: prefill needs at least one token");
  c10::InferenceMode inference;
  const MambaConfig& c = config_;
  const int64_t length = static_cast<int64_t>(ids.size());
  torch::Tensor hidden = Embed(TokenIndex(ids, config_.vocab_size, "mamba").to(device_))
                             .unsqueeze(0);  // (1, L, d_model), the fp32 residual stream
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const Layer& w = weights_.layers[l];
    torch::Tensor xz = Linear(RmsNorm(hidden, w.norm, c.norm_eps, dtype_), w.in_proj, w.in_proj_bias).transpose(1, 2);
    torch::Tensor x = xz.narrow(1, 0, c.d_inner), z = xz.narrow(1, c.d_inner, c.d_inner);  // (1, d_inner, L)

    // Keep the last d_conv conv inputs (zeros before the start) for Step.
    torch::Tensor window = s.conv[l][slot];
    const int64_t kept = std::min(length, c.d_conv);
    window.zero_();
    window.narrow(1, c.d_conv - kept, kept).copy_(x[0].narrow(1, length - kept, kept));

    torch::Tensor xc = kernels::CausalConv1d(x, w.conv_weight, Maybe(w.conv_bias), /*silu=*/true);
    torch::Tensor x_dbl = Linear(xc.transpose(1, 2), w.x_proj);  // (1, L, dt_rank + 2 d_state)
    torch::Tensor dt = Linear(x_dbl.narrow(2, 0, c.dt_rank), w.dt_proj).transpose(1, 2);
    torch::Tensor B = x_dbl.narrow(2, c.dt_rank, c.d_state).transpose(1, 2);
    torch::Tensor C = x_dbl.narrow(2, c.dt_rank + c.d_state, c.d_state).transpose(1, 2);
    kernels::ScanResult scan = kernels::SelectiveScan(xc, dt, w.A, B, C, w.D, z, w.dt_bias, /*delta_softplus=*/true);
    s.ssm[l][slot].copy_(scan.last_state[0]);
    hidden.add_(Linear(scan.y.transpose(1, 2), w.out_proj, w.out_proj_bias));
  }
  torch::Tensor out = hidden[0];
  return Logits(all_positions ? out : out.narrow(0, length - 1, 1));
}

torch::Tensor MambaModel::Step(State& state, std::span<const int32_t> tokens) const {
  MambaState& s = Cast(state);
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n < 1 || n > s.slots())
    throw std::invalid_argument("mamba: step of " + std::to_string(n) + " tokens on " + std::to_string(s.slots()) +
                                " slots");
  c10::InferenceMode inference;
  torch::Tensor ids = TokenIndex(tokens, config_.vocab_size, "mamba");
  if (!device_.is_cuda() || !cuda_graphs_) return StepOnDevice(s, ids.to(device_));

  // CUDA: the first step of each batch size runs eagerly (the warm-up), the
  // second captures the step as a graph, every step then replays it.
  std::unique_ptr<MambaState::StepGraph>& graph = s.step_graphs[n];
  if (!graph) graph = std::make_unique<MambaState::StepGraph>(device_, n);
  graph->tokens.copy_(ids);
  auto step = [&] { return StepOnDevice(s, graph->tokens); };
  if (!graph->warmed_up) {
    graph->warmed_up = true;
    return graph->graph.WarmUp(step);
  }
  if (!graph->graph.captured()) graph->graph.Capture(step);
  return graph->graph.Replay().clone();
}

// One token per slot 0..n-1 from `ids` (n, on the model's device); updates the
// state in place. Graph-capturable: no host synchronization, no host inputs.
torch::Tensor MambaModel::StepOnDevice(CausalLM::State& state, const torch::Tensor& ids) const {
  MambaState& s = Cast(state);
  const int64_t n = ids.size(0);
  const MambaConfig& c = config_;
  torch::Tensor hidden = Embed(ids);  // (n, d_model)
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const Layer& w = weights_.layers[l];
    torch::Tensor xz = Linear(RmsNorm(hidden, w.norm, c.norm_eps, dtype_), w.in_proj, w.in_proj_bias);
    torch::Tensor x = xz.narrow(1, 0, c.d_inner), z = xz.narrow(1, c.d_inner, c.d_inner);
    torch::Tensor window = s.conv[l].narrow(0, 0, n);
    torch::Tensor xc = kernels::CausalConv1dUpdate(x, window, w.conv_weight, Maybe(w.conv_bias), /*silu=*/true);
    torch::Tensor x_dbl = Linear(xc, w.x_proj);
    torch::Tensor dt = Linear(x_dbl.narrow(1, 0, c.dt_rank), w.dt_proj);
    torch::Tensor B = x_dbl.narrow(1, c.dt_rank, c.d_state), C = x_dbl.narrow(1, c.dt_rank + c.d_state, c.d_state);
    torch::Tensor ssm = s.ssm[l].narrow(0, 0, n);
    torch::Tensor y = kernels::SelectiveStateUpdate(ssm, xc, dt, w.A, B, C, w.D, z, w.dt_bias, /*dt_softplus=*/true);
    hidden.add_(Linear(y, w.out_proj, w.out_proj_bias));
  }
  return Logits(hidden);
}

void MambaModel::CopySlot(State& state, int64_t from, int64_t to) const {
  MambaState& s = Cast(state);
  if (from < 0 || to < 0 || from >= s.slots() || to >= s.slots())
    throw std::invalid_argument("mamba: slot out of range");
  if (from == to) return;
  c10::InferenceMode inference;
  s.conv.select(1, to).copy_(s.conv.select(1, from));
  s.ssm.select(1, to).copy_(s.ssm.select(1, from));
}

}  // namespace thalamus::models
