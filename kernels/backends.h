// The device back ends behind the public entry points in kernels.h. Arguments
// arrive validated (checks.h); each back end owns its own layout conversions.
#pragma once

#include <optional>

#include <torch/types.h>

#include "kernels/checks.h"
#include "kernels/kernels.h"

namespace thalamus::kernels::internal {

// Optimized CPU versions (cpu_kernels.cpp), threaded with at::parallel_for.
ScanResult CpuSelectiveScan(const ScanDims& dims, const torch::Tensor& u, const torch::Tensor& delta,
                            const torch::Tensor& A, const torch::Tensor& B, const torch::Tensor& C,
                            const std::optional<torch::Tensor>& D, const std::optional<torch::Tensor>& z,
                            const std::optional<torch::Tensor>& delta_bias, bool delta_softplus);
torch::Tensor CpuSelectiveStateUpdate(const ScanDims& dims, torch::Tensor& state, const torch::Tensor& x,
                                      const torch::Tensor& dt, const torch::Tensor& A, const torch::Tensor& B,
                                      const torch::Tensor& C, const std::optional<torch::Tensor>& D,
                                      const std::optional<torch::Tensor>& z,
                                      const std::optional<torch::Tensor>& dt_bias, bool dt_softplus);
torch::Tensor CpuCausalConv1d(const ConvDims& dims, const torch::Tensor& x, const torch::Tensor& weight,
                              const std::optional<torch::Tensor>& bias, bool silu);
torch::Tensor CpuCausalConv1dUpdate(const ConvDims& dims, const torch::Tensor& x, torch::Tensor& conv_state,
                                    const torch::Tensor& weight, const std::optional<torch::Tensor>& bias, bool silu);

// CUDA versions (cuda_backend.cpp); only built when LibTorch has CUDA.
#ifdef THALAMUS_KERNELS_TORCH_CUDA
ScanResult CudaSelectiveScan(const ScanDims& dims, const torch::Tensor& u, const torch::Tensor& delta,
                             const torch::Tensor& A, const torch::Tensor& B, const torch::Tensor& C,
                             const std::optional<torch::Tensor>& D, const std::optional<torch::Tensor>& z,
                             const std::optional<torch::Tensor>& delta_bias, bool delta_softplus);
torch::Tensor CudaSelectiveStateUpdate(const ScanDims& dims, torch::Tensor& state, const torch::Tensor& x,
                                       const torch::Tensor& dt, const torch::Tensor& A, const torch::Tensor& B,
                                       const torch::Tensor& C, const std::optional<torch::Tensor>& D,
                                       const std::optional<torch::Tensor>& z,
                                       const std::optional<torch::Tensor>& dt_bias, bool dt_softplus);
torch::Tensor CudaCausalConv1d(const ConvDims& dims, const torch::Tensor& x, const torch::Tensor& weight,
                               const std::optional<torch::Tensor>& bias, bool silu);
torch::Tensor CudaCausalConv1dUpdate(const ConvDims& dims, const torch::Tensor& x, torch::Tensor& conv_state,
                                     const torch::Tensor& weight, const std::optional<torch::Tensor>& bias, bool silu);
bool CudaDeviceVisible();
#endif

}  // namespace thalamus::kernels::internal
