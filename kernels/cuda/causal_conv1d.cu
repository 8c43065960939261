// Causal depthwise conv1d: prefill (a tile of the sequence per block, staged
// in shared memory with its width-1 halo) and the one-token update.
#include "kernels/cuda/common.cuh"

namespace thalamus::kernels::cuda {
namespace {

constexpr int kTile = 256;  // outputs per block, one per thread

template <typename T>
__global__ void __launch_bounds__(kTile) CausalConv1dKernel(ConvLaunch p) {
  __shared__ float window[kTile + kMaxConvWidth - 1];
  const int64_t b = blockIdx.z, d = blockIdx.y;
  const int start = blockIdx.x * kTile;
  const int halo = p.width - 1;
  const T* x = static_cast<const T*>(p.x) + b * p.x_stride.outer + d * p.x_stride.inner;
  // window[i] holds x[start - halo + i]; positions before 0 are the causal zero padding.
  for (int i = threadIdx.x; i < kTile + halo; i += kTile) {
    const int t = start - halo + i;
    window[i] = (t >= 0 && t < p.seqlen) ? ToFloat(x[t]) : 0.0f;
  }
  __syncthreads();
  const int t = start + threadIdx.x;
  if (t >= p.seqlen) return;
  const float* w = p.weight + d * p.width;
  float acc = p.bias ? p.bias[d] : 0.0f;
  for (int k = 0; k < p.width; ++k) acc += w[k] * window[threadIdx.x + k];
  if (p.silu) acc = Silu(acc);
  static_cast<T*>(p.out)[b * p.out_stride.outer + d * p.out_stride.inner + t] = FromFloat<T>(acc);
}

template <typename T>
__global__ void CausalConv1dUpdateKernel(ConvUpdateLaunch p) {
  const int64_t channel = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (channel >= static_cast<int64_t>(p.batch) * p.dim) return;
  const int64_t b = channel / p.dim, d = channel % p.dim;
  T* window = static_cast<T*>(p.conv_state) + b * p.state_stride[0] + d * p.state_stride[1];
  const int64_t step = p.state_stride[2];
  const float* w = p.weight + d * p.width;
  float acc = p.bias ? p.bias[d] : 0.0f;
  // Shift left by one while accumulating, then append the new input.
  for (int k = 0; k + 1 < p.width; ++k) {
    const T next = window[(k + 1) * step];
    window[k * step] = next;
    acc += w[k] * ToFloat(next);
  }
  const T newest = static_cast<const T*>(p.x)[b * p.x_stride.outer + d * p.x_stride.inner];
  window[(p.width - 1) * step] = newest;
  acc += w[p.width - 1] * ToFloat(newest);
  if (p.silu) acc = Silu(acc);
  static_cast<T*>(p.out)[b * p.dim + d] = FromFloat<T>(acc);
}

}  // namespace

const char* LaunchCausalConv1d(const ConvLaunch& p, void* stream) {
  if (p.width < 1 || p.width > kMaxConvWidth) return "causal conv1d: width must be in 1..64 on CUDA";
  if (p.batch > 65535 || p.dim > 65535) return "causal conv1d: batch and dim must be at most 65535 on CUDA";
  if (p.batch < 0 || p.dim < 0 || p.seqlen < 0) return "causal conv1d: negative size";
  if (p.batch == 0 || p.dim == 0 || p.seqlen == 0) return nullptr;
  return WithStorageType(p.dtype, [&](auto type) {
    using T = decltype(type);
    const dim3 grid((p.seqlen + kTile - 1) / kTile, p.dim, p.batch);
    CausalConv1dKernel<T><<<grid, kTile, 0, static_cast<cudaStream_t>(stream)>>>(p);
    return LaunchStatus();
  });
}

const char* LaunchCausalConv1dUpdate(const ConvUpdateLaunch& p, void* stream) {
  if (p.width < 1) return "causal conv1d update: width must be >= 1";
  if (p.batch < 0 || p.dim < 0) return "causal conv1d update: negative size";
  const int64_t channels = static_cast<int64_t>(p.batch) * p.dim;
  if (channels == 0) return nullptr;
  return WithStorageType(p.dtype, [&](auto type) {
    using T = decltype(type);
    constexpr int kThreads = 256;
    const auto blocks = static_cast<unsigned>((channels + kThreads - 1) / kThreads);
    CausalConv1dUpdateKernel<T><<<blocks, kThreads, 0, static_cast<cudaStream_t>(stream)>>>(p);
    return LaunchStatus();
  });
}

}  // namespace thalamus::kernels::cuda
