// Public entry points: validate once, then route by the tensors' device.
#include "kernels/kernels.h"

#include <ATen/Parallel.h>

#include "kernels/backends.h"
#include "kernels/checks.h"
#include "kernels/cpu_loops.h"

namespace thalamus::kernels {
namespace {

// Throws unless `t` lives where some back end of this build can run it; true for CUDA.
bool RoutesToCuda(const char* op, const torch::Tensor& t) {
  if (t.is_cpu()) return false;
#ifdef THALAMUS_KERNELS_TORCH_CUDA
  if (t.is_cuda()) return true;
#else
  TORCH_CHECK(!t.is_cuda(), op, ": the inputs are on ", t.device(),
              " but this build has no CUDA kernels (build with a CUDA LibTorch and THALAMUS_CUDA=ON or AUTO)");
#endif
  TORCH_CHECK(false, op, ": unsupported device ", t.device(), "; the kernels run on CPU and CUDA");
  return false;
}

}  // namespace

ScanResult SelectiveScan(const torch::Tensor& u, const torch::Tensor& delta, const torch::Tensor& A,
                         const torch::Tensor& B, const torch::Tensor& C, const std::optional<torch::Tensor>& D,
                         const std::optional<torch::Tensor>& z, const std::optional<torch::Tensor>& delta_bias,
                         bool delta_softplus) {
  const char* op = "SelectiveScan";
  const auto dims = internal::CheckScanArgs(op, u, delta, A, B, C, D, z, delta_bias);
#ifdef THALAMUS_KERNELS_TORCH_CUDA
  if (RoutesToCuda(op, u)) {
    return internal::CudaSelectiveScan(dims, u, delta, A, B, C, D, z, delta_bias, delta_softplus);
  }
#else
  RoutesToCuda(op, u);
#endif
  return internal::CpuSelectiveScan(dims, u, delta, A, B, C, D, z, delta_bias, delta_softplus);
}

torch::Tensor SelectiveStateUpdate(torch::Tensor& state, const torch::Tensor& x, const torch::Tensor& dt,
                                   const torch::Tensor& A, const torch::Tensor& B, const torch::Tensor& C,
                                   const std::optional<torch::Tensor>& D, const std::optional<torch::Tensor>& z,
                                   const std::optional<torch::Tensor>& dt_bias, bool dt_softplus) {
  const char* op = "SelectiveStateUpdate";
  const auto dims = internal::CheckStateUpdateArgs(op, state, x, dt, A, B, C, D, z, dt_bias);
#ifdef THALAMUS_KERNELS_TORCH_CUDA
  if (RoutesToCuda(op, x)) {
    return internal::CudaSelectiveStateUpdate(dims, state, x, dt, A, B, C, D, z, dt_bias, dt_softplus);
  }
#else
  RoutesToCuda(op, x);
#endif
  return internal::CpuSelectiveStateUpdate(dims, state, x, dt, A, B, C, D, z, dt_bias, dt_softplus);
}

torch::Tensor CausalConv1d(const torch::Tensor& x, const torch::Tensor& weight,
                           const std::optional<torch::Tensor>& bias, bool silu) {
  const char* op = "CausalConv1d";
  const auto dims = internal::CheckConvArgs(op, x, weight, bias);
#ifdef THALAMUS_KERNELS_TORCH_CUDA
  if (RoutesToCuda(op, x)) return internal::CudaCausalConv1d(dims, x, weight, bias, silu);
#else
  RoutesToCuda(op, x);
#endif
  return internal::CpuCausalConv1d(dims, x, weight, bias, silu);
}

torch::Tensor CausalConv1dUpdate(const torch::Tensor& x, torch::Tensor& conv_state, const torch::Tensor& weight,
                                 const std::optional<torch::Tensor>& bias, bool silu) {
  const char* op = "CausalConv1dUpdate";
  const auto dims = internal::CheckConvUpdateArgs(op, x, conv_state, weight, bias);
#ifdef THALAMUS_KERNELS_TORCH_CUDA
  if (RoutesToCuda(op, x)) return internal::CudaCausalConv1dUpdate(dims, x, conv_state, weight, bias, silu);
#else
  RoutesToCuda(op, x);
#endif
  return internal::CpuCausalConv1dUpdate(dims, x, conv_state, weight, bias, silu);
}

bool CudaAvailable() {
#ifdef THALAMUS_KERNELS_TORCH_CUDA
  return internal::CudaDeviceVisible();
#else
  return false;
#endif
}

void SetCpuThreads(int n) {
  TORCH_CHECK(n >= 1, "SetCpuThreads: n must be >= 1, got ", n);
  at::set_num_threads(n);
}

int CpuThreads() { return at::get_num_threads(); }

const char* CpuKernelIsa() { return internal::SelectedCpuIsa(); }

}  // namespace thalamus::kernels
