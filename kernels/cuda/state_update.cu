// Selective state update (decode): one token per call, the fp32 state updated
// in place. A team of kTeam lanes owns one (batch, channel): each lane updates
// state dimensions lane, lane + kTeam, ... and the team sums C . x with warp
// shuffles. Memory-bound on the state: each element is read and written once.
#include "kernels/cuda/common.cuh"

namespace thalamus::kernels::cuda {
namespace {

constexpr int kBlockThreads = 128;

template <int kTeam, typename T>
__global__ void __launch_bounds__(kBlockThreads) StateUpdateKernel(StateUpdateLaunch p) {
  const int lane = threadIdx.x % kTeam;
  const int64_t channel = static_cast<int64_t>(blockIdx.x) * (kBlockThreads / kTeam) + threadIdx.x / kTeam;
  // Out-of-range teams still take part in the shuffles below (full-warp masks), they just do no work.
  const bool active = channel < static_cast<int64_t>(p.batch) * p.dim;
  const int64_t b = active ? channel / p.dim : 0, d = active ? channel % p.dim : 0;

  float acc = 0.0f, x = 0.0f;
  if (active) {
    x = ToFloat(static_cast<const T*>(p.x)[b * p.x_stride.outer + d * p.x_stride.inner]);
    float dt = ToFloat(static_cast<const T*>(p.dt)[b * p.dt_stride.outer + d * p.dt_stride.inner]);
    if (p.dt_bias) dt += p.dt_bias[d];
    if (p.dt_softplus) dt = Softplus(dt);
    const T* B = static_cast<const T*>(p.B) + b * p.B_stride.outer;
    const T* C = static_cast<const T*>(p.C) + b * p.C_stride.outer;
    const float* A = p.A + d * p.A_stride.outer;
    float* state = p.state + b * p.state_stride[0] + d * p.state_stride[1];
    const float drive = dt * x;
    for (int n = lane; n < p.dstate; n += kTeam) {
      float* cell = state + n * p.state_stride[2];
      const float next = __expf(dt * A[n * p.A_stride.inner]) * *cell + drive * ToFloat(B[n * p.B_stride.inner]);
      *cell = next;
      acc += ToFloat(C[n * p.C_stride.inner]) * next;
    }
  }
#pragma unroll
  for (int offset = kTeam / 2; offset > 0; offset /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, offset);
  if (!active || lane != 0) return;
  if (p.D) acc += p.D[d] * x;
  if (p.z) acc *= Silu(ToFloat(static_cast<const T*>(p.z)[b * p.z_stride.outer + d * p.z_stride.inner]));
  static_cast<T*>(p.y)[b * p.dim + d] = FromFloat<T>(acc);
}

template <typename T>
const char* LaunchForType(const StateUpdateLaunch& p, cudaStream_t stream) {
  const int64_t channels = static_cast<int64_t>(p.batch) * p.dim;
  // Half-warp teams when dstate <= 16 (mamba's usual size) so no lane idles.
  if (p.dstate <= 16) {
    constexpr int kTeam = 16;
    const int64_t blocks = (channels + kBlockThreads / kTeam - 1) / (kBlockThreads / kTeam);
    StateUpdateKernel<kTeam, T><<<static_cast<unsigned>(blocks), kBlockThreads, 0, stream>>>(p);
  } else {
    constexpr int kTeam = 32;
    const int64_t blocks = (channels + kBlockThreads / kTeam - 1) / (kBlockThreads / kTeam);
    StateUpdateKernel<kTeam, T><<<static_cast<unsigned>(blocks), kBlockThreads, 0, stream>>>(p);
  }
  return LaunchStatus();
}

}  // namespace

const char* LaunchSelectiveStateUpdate(const StateUpdateLaunch& p, void* stream) {
  if (p.dstate < 1) return "selective state update: dstate must be >= 1";
  if (p.batch < 0 || p.dim < 0) return "selective state update: negative size";
  if (static_cast<int64_t>(p.batch) * p.dim == 0) return nullptr;
  return WithStorageType(
      p.dtype, [&](auto type) { return LaunchForType<decltype(type)>(p, static_cast<cudaStream_t>(stream)); });
}

}  // namespace thalamus::kernels::cuda
