// Launcher API of the CUDA kernels: plain structs of raw device pointers and
// element strides, no CUDA or torch types, so the torch-facing side
// (cuda_backend.cpp) compiles with the host compiler and the .cu files with
// plain nvcc. Each Launch* enqueues on `stream` (a cudaStream_t) and returns
// nullptr, or a static message when the arguments are out of range or the
// launch failed. Kernels never allocate.
#pragma once

#include <cstdint>

namespace thalamus::kernels::cuda {

// dtype of the activations (u, delta, z, B, C, y, x, conv state); A, D,
// biases and conv weights are always fp32, and so is the SSM state.
enum class DType { kFloat32, kFloat16, kBFloat16 };

inline constexpr int kMaxScanState = 256;
inline constexpr int kMaxConvWidth = 64;

struct Strides2 {
  int64_t outer = 0, inner = 0;  // (batch, dim) or (dim, dstate) ...
};

// Time (the last axis) must have stride 1 for u, delta, z, B, C and y.
struct ScanLaunch {
  int batch = 0, dim = 0, seqlen = 0, dstate = 0;
  DType dtype = DType::kFloat32;
  const void* u = nullptr;
  Strides2 u_stride;  // (batch, dim)
  const void* delta = nullptr;
  Strides2 delta_stride;  // (batch, dim)
  const void* z = nullptr;
  Strides2 z_stride;  // (batch, dim); z may be null
  const void* B = nullptr;
  Strides2 B_stride;  // (batch, dstate)
  const void* C = nullptr;
  Strides2 C_stride;  // (batch, dstate)
  const float* A = nullptr;
  Strides2 A_stride;                  // (dim, dstate)
  const float* D = nullptr;           // contiguous (dim) or null
  const float* delta_bias = nullptr;  // contiguous (dim) or null
  bool delta_softplus = false;
  void* y = nullptr;
  Strides2 y_stride;            // (batch, dim)
  float* last_state = nullptr;  // contiguous (batch, dim, dstate)
};
const char* LaunchSelectiveScan(const ScanLaunch& args, void* stream);

struct StateUpdateLaunch {
  int batch = 0, dim = 0, dstate = 0;
  DType dtype = DType::kFloat32;
  float* state = nullptr;
  int64_t state_stride[3] = {0, 0, 0};  // (batch, dim, dstate), in place
  const void* x = nullptr;
  Strides2 x_stride;  // (batch, dim)
  const void* dt = nullptr;
  Strides2 dt_stride;  // (batch, dim)
  const void* z = nullptr;
  Strides2 z_stride;  // (batch, dim) or null
  const void* B = nullptr;
  Strides2 B_stride;  // (batch, dstate)
  const void* C = nullptr;
  Strides2 C_stride;  // (batch, dstate)
  const float* A = nullptr;
  Strides2 A_stride;               // (dim, dstate)
  const float* D = nullptr;        // contiguous (dim) or null
  const float* dt_bias = nullptr;  // contiguous (dim) or null
  bool dt_softplus = false;
  void* y = nullptr;  // contiguous (batch, dim)
};
const char* LaunchSelectiveStateUpdate(const StateUpdateLaunch& args, void* stream);

// x and out: time stride 1.
struct ConvLaunch {
  int batch = 0, dim = 0, seqlen = 0, width = 0;
  DType dtype = DType::kFloat32;
  const void* x = nullptr;
  Strides2 x_stride;              // (batch, dim)
  const float* weight = nullptr;  // contiguous (dim, width)
  const float* bias = nullptr;    // contiguous (dim) or null
  bool silu = false;
  void* out = nullptr;
  Strides2 out_stride;  // (batch, dim)
};
const char* LaunchCausalConv1d(const ConvLaunch& args, void* stream);

struct ConvUpdateLaunch {
  int batch = 0, dim = 0, width = 0;
  DType dtype = DType::kFloat32;  // of x, conv_state and out
  void* conv_state = nullptr;
  int64_t state_stride[3] = {0, 0, 0};  // (batch, dim, width), shifted in place
  const void* x = nullptr;
  Strides2 x_stride;              // (batch, dim)
  const float* weight = nullptr;  // contiguous (dim, width)
  const float* bias = nullptr;    // contiguous (dim) or null
  bool silu = false;
  void* out = nullptr;  // contiguous (batch, dim)
};
const char* LaunchCausalConv1dUpdate(const ConvUpdateLaunch& args, void* stream);

// Number of visible CUDA devices; 0 when there is no driver or no device.
int VisibleDeviceCount();

}  // namespace thalamus::kernels::cuda
