// Linear layers for decoding; private to models/.
//
// A decode step multiplies a few activation rows by every weight matrix, so
// it is bound by reading the weights once. LibTorch's CPU GEMM (OpenBLAS here)
// handles 1-8 rows poorly (4-9 GB/s on the benchmark machine, where a plain
// pass over the weights reaches 25+), and OpenBLAS's own threads would compete
// with the OpenMP pool the kernels run on (its idle workers spin). So fp32 CPU
// inputs of 1..8 rows go through SmallBatchGemv, one pass over the weights on
// the ATen/OpenMP pool (hand-written: no library here does this shape well);
// larger CPU products (prefill) are split by rows over the same pool, with
// OpenBLAS set to one thread (see linear.cpp); other devices use at::linear.
#pragma once

#include <torch/types.h>

namespace thalamus::models {

// x (rows, in) or (..., in); weight (out, in); bias (out) or undefined.
torch::Tensor Linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias = {});

// y (rows, out) = x (rows, in) . weight (out, in)^T for rows in 1..8; fp32,
// contiguous, CPU. Threaded over output rows with at::parallel_for.
void SmallBatchGemv(const float* weight, int64_t out, int64_t in, const float* x, int64_t rows, float* y);

}  // namespace thalamus::models
