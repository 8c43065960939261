// kernels: the compute kernels of the Mamba block, on CPU and CUDA.
//
//   selective scan   (prefill)  y, last_state = scan(u, delta, A, B, C, D, z)
//   selective state update (decode: one token, state updated in place)
//   causal depthwise conv1d (prefill) and its one-token update
//
// Shapes and semantics follow state-spaces/mamba (selective_scan_fn,
// selective_state_update, causal_conv1d_fn/_update) with ngroups = 1 and
// real-valued A:
//   u, delta, z : (batch, dim, seqlen)     B, C : (batch, dstate, seqlen)
//   A : (dim, dstate)   D, delta_bias : (dim)
//   dA = exp(delta * A); x = dA * x + delta * B * u; y = C . x + D * u;
//   y *= silu(z) when z is given; delta = softplus(delta + delta_bias) when asked.
// Each kernel has a plain reference (Reference*), and a dispatching entry
// point that runs the optimized CPU version or the CUDA version by the
// tensors' device. The state is fp32; inputs may be fp32, fp16 or bf16 and
// y comes back in u's dtype. Errors (shape or device mismatches) throw
// c10::Error via TORCH_CHECK, naming the argument.
#pragma once

#include <optional>

#include <torch/types.h>

namespace thalamus::kernels {

struct ScanResult {
  torch::Tensor y;           // (batch, dim, seqlen), dtype of u
  torch::Tensor last_state;  // (batch, dim, dstate), fp32
};

ScanResult SelectiveScan(const torch::Tensor& u, const torch::Tensor& delta, const torch::Tensor& A,
                         const torch::Tensor& B, const torch::Tensor& C, const std::optional<torch::Tensor>& D,
                         const std::optional<torch::Tensor>& z, const std::optional<torch::Tensor>& delta_bias,
                         bool delta_softplus);

// state: (batch, dim, dstate) fp32, updated in place. x, dt, z: (batch, dim);
// B, C: (batch, dstate). Returns y: (batch, dim).
torch::Tensor SelectiveStateUpdate(torch::Tensor& state, const torch::Tensor& x, const torch::Tensor& dt,
                                   const torch::Tensor& A, const torch::Tensor& B, const torch::Tensor& C,
                                   const std::optional<torch::Tensor>& D, const std::optional<torch::Tensor>& z,
                                   const std::optional<torch::Tensor>& dt_bias, bool dt_softplus);

// x: (batch, dim, seqlen); weight: (dim, width); bias: (dim). Causal: output t
// sees inputs t-width+1..t (zeros before the start). silu applied when asked.
torch::Tensor CausalConv1d(const torch::Tensor& x, const torch::Tensor& weight,
                           const std::optional<torch::Tensor>& bias, bool silu);

// One token: x (batch, dim); conv_state (batch, dim, width) holds the last
// `width` inputs and is shifted in place to include x. Returns (batch, dim).
torch::Tensor CausalConv1dUpdate(const torch::Tensor& x, torch::Tensor& conv_state, const torch::Tensor& weight,
                                 const std::optional<torch::Tensor>& bias, bool silu);

// Plain, obviously-correct versions used as the baseline in tests and benchmarks.
ScanResult ReferenceSelectiveScan(const torch::Tensor& u, const torch::Tensor& delta, const torch::Tensor& A,
                                  const torch::Tensor& B, const torch::Tensor& C, const std::optional<torch::Tensor>& D,
                                  const std::optional<torch::Tensor>& z, const std::optional<torch::Tensor>& delta_bias,
                                  bool delta_softplus);
torch::Tensor ReferenceSelectiveStateUpdate(torch::Tensor& state, const torch::Tensor& x, const torch::Tensor& dt,
                                            const torch::Tensor& A, const torch::Tensor& B, const torch::Tensor& C,
                                            const std::optional<torch::Tensor>& D,
                                            const std::optional<torch::Tensor>& z,
                                            const std::optional<torch::Tensor>& dt_bias, bool dt_softplus);
torch::Tensor ReferenceCausalConv1d(const torch::Tensor& x, const torch::Tensor& weight,
                                    const std::optional<torch::Tensor>& bias, bool silu);

// The same scan as a per-time-step loop of torch ops (the formulation of
// mamba_ssm's selective_scan_ref, without materializing (batch, dim, seqlen,
// dstate)). Runs on any device torch supports; a baseline for benchmarks and
// a device-side reference for the CUDA checks.
ScanResult TorchOpsSelectiveScan(const torch::Tensor& u, const torch::Tensor& delta, const torch::Tensor& A,
                                 const torch::Tensor& B, const torch::Tensor& C, const std::optional<torch::Tensor>& D,
                                 const std::optional<torch::Tensor>& z, const std::optional<torch::Tensor>& delta_bias,
                                 bool delta_softplus);

// True when this build has the CUDA kernels and a GPU is visible.
bool CudaAvailable();

// The optimized CPU kernels run on ATen's intra-op thread pool; these set and
// read its size (the pool at::set_num_threads controls). n must be >= 1.
void SetCpuThreads(int n);
int CpuThreads();

// Which instruction-set variant the optimized CPU kernels run: "avx512",
// "avx2" or "baseline"; THALAMUS_KERNELS_CPU_ISA=avx2|baseline caps it.
const char* CpuKernelIsa();

}  // namespace thalamus::kernels
