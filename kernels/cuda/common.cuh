// Device helpers shared by the .cu files: dtype conversion, activations,
// and dispatch from DType to a template parameter.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "kernels/cuda/launch.h"

namespace thalamus::kernels::cuda {

__device__ __forceinline__ float ToFloat(float v) { return v; }
__device__ __forceinline__ float ToFloat(__half v) { return __half2float(v); }
__device__ __forceinline__ float ToFloat(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T FromFloat(float v);
template <>
__device__ __forceinline__ float FromFloat<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __half FromFloat<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 FromFloat<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// Same threshold as torch.nn.functional.softplus.
__device__ __forceinline__ float Softplus(float v) { return v <= 20.0f ? log1pf(__expf(v)) : v; }

__device__ __forceinline__ float Silu(float v) { return v / (1.0f + __expf(-v)); }

// Calls fn(T{}) with T the storage type of `dtype`.
template <typename Fn>
const char* WithStorageType(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kFloat32: return fn(float{});
    case DType::kFloat16: return fn(__half{});
    case DType::kBFloat16: return fn(__nv_bfloat16{});
  }
  return "unknown dtype";
}

// The launch result as the launcher API reports it.
inline const char* LaunchStatus() {
  const cudaError_t error = cudaGetLastError();
  return error == cudaSuccess ? nullptr : cudaGetErrorString(error);
}

}  // namespace thalamus::kernels::cuda
