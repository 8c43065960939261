// Argument validation shared by the reference, CPU and CUDA paths, so every
// path rejects the same bad input with the same message.
#pragma once

#include <cstdint>
#include <optional>

#include <torch/types.h>

namespace thalamus::kernels::internal {

struct ScanDims {
  int64_t batch = 0;
  int64_t dim = 0;
  int64_t seqlen = 0;
  int64_t dstate = 0;
};

struct ConvDims {
  int64_t batch = 0;
  int64_t dim = 0;
  int64_t seqlen = 0;
  int64_t width = 0;
};

// Throws c10::Error naming the offending argument; returns the problem size.
ScanDims CheckScanArgs(const char* op, const torch::Tensor& u, const torch::Tensor& delta, const torch::Tensor& A,
                       const torch::Tensor& B, const torch::Tensor& C, const std::optional<torch::Tensor>& D,
                       const std::optional<torch::Tensor>& z, const std::optional<torch::Tensor>& delta_bias);

// seqlen of the result is 1.
ScanDims CheckStateUpdateArgs(const char* op, const torch::Tensor& state, const torch::Tensor& x,
                              const torch::Tensor& dt, const torch::Tensor& A, const torch::Tensor& B,
                              const torch::Tensor& C, const std::optional<torch::Tensor>& D,
                              const std::optional<torch::Tensor>& z, const std::optional<torch::Tensor>& dt_bias);

ConvDims CheckConvArgs(const char* op, const torch::Tensor& x, const torch::Tensor& weight,
                       const std::optional<torch::Tensor>& bias);

// seqlen of the result is 1.
ConvDims CheckConvUpdateArgs(const char* op, const torch::Tensor& x, const torch::Tensor& conv_state,
                             const torch::Tensor& weight, const std::optional<torch::Tensor>& bias);

}  // namespace thalamus::kernels::internal
