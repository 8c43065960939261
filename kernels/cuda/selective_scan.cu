// Selective scan forward, the hardware-aware way of the Mamba paper (sec. 3.3):
// one thread block per (batch, channel) reads u, delta, z and that batch's B,
// C rows once from global memory, discretizes on chip, and runs the
// recurrence x_t = exp(delta_t A) x_{t-1} + delta_t B_t u_t as a block-wide
// parallel scan over (decay, input) pairs. The sequence is walked in chunks;
// the state carried between chunks (one float per state dimension) lives in
// shared memory, so (batch, dim, seqlen, dstate) intermediates never exist.
// Only y and the final state go back to global memory.
#include <cub/block/block_load.cuh>
#include <cub/block/block_scan.cuh>
#include <cub/block/block_store.cuh>

#include "kernels/cuda/common.cuh"

namespace thalamus::kernels::cuda {
namespace {

constexpr float kLog2e = 1.4426950408889634f;

// A step is the pair (a, b) of x -> a x + b. Applying `first` then `second`
// gives (a2 a1, a2 b1 + b2): associative, so a parallel scan over steps
// yields every intermediate state.
struct ComposeSteps {
  __device__ __forceinline__ float2 operator()(const float2& first, const float2& second) const {
    return make_float2(second.x * first.x, second.x * first.y + second.y);
  }
};

// cub's block prefix callback: gives a chunk's scan the state carried out of
// the previous chunks and folds in this chunk's total.
struct CarryIn {
  float2 carried;
  __device__ __forceinline__ float2 operator()(const float2& chunk_total) {
    const float2 before = carried;
    carried = ComposeSteps{}(carried, chunk_total);
    return before;
  }
};

template <int kThreadsArg, int kItemsArg, typename T>
struct ScanConfig {
  static constexpr int kThreads = kThreadsArg;
  static constexpr int kItems = kItemsArg;
  static constexpr int kChunk = kThreads * kItems;
  using Load = cub::BlockLoad<T, kThreads, kItems, cub::BLOCK_LOAD_WARP_TRANSPOSE>;
  using Store = cub::BlockStore<T, kThreads, kItems, cub::BLOCK_STORE_WARP_TRANSPOSE>;
  using Scan = cub::BlockScan<float2, kThreads, cub::BLOCK_SCAN_WARP_SCANS>;
  struct Shared {
    union {
      typename Load::TempStorage load;
      typename Store::TempStorage store;
      typename Scan::TempStorage scan;
    } temp;
    float carried[kMaxScanState];  // state after the chunks done so far, per state dimension
  };
};

// Loads `valid` elements from `src` into a blocked arrangement (thread i holds
// elements i*kItems ...), as float. Ends with a barrier so temp can be reused.
template <typename Cfg, typename T>
__device__ __forceinline__ void LoadChunk(const T* src, int valid, float (&out)[Cfg::kItems],
                                          typename Cfg::Shared& shared) {
  T raw[Cfg::kItems];
  typename Cfg::Load(shared.temp.load).Load(src, raw, valid, FromFloat<T>(0.0f));
  __syncthreads();
#pragma unroll
  for (int i = 0; i < Cfg::kItems; ++i) out[i] = ToFloat(raw[i]);
}

template <typename Cfg, typename T>
__device__ __forceinline__ void StoreChunk(T* dst, int valid, const float (&values)[Cfg::kItems],
                                           typename Cfg::Shared& shared) {
  T raw[Cfg::kItems];
#pragma unroll
  for (int i = 0; i < Cfg::kItems; ++i) raw[i] = FromFloat<T>(values[i]);
  typename Cfg::Store(shared.temp.store).Store(dst, raw, valid);
  __syncthreads();
}

template <typename Cfg, typename T>
__global__ void __launch_bounds__(Cfg::kThreads) SelectiveScanKernel(ScanLaunch p) {
  constexpr int kItems = Cfg::kItems;
  __shared__ typename Cfg::Shared shared;
  const int64_t b = blockIdx.y, d = blockIdx.x;
  const T* u = static_cast<const T*>(p.u) + b * p.u_stride.outer + d * p.u_stride.inner;
  const T* delta = static_cast<const T*>(p.delta) + b * p.delta_stride.outer + d * p.delta_stride.inner;
  const T* z = p.z ? static_cast<const T*>(p.z) + b * p.z_stride.outer + d * p.z_stride.inner : nullptr;
  const T* B = static_cast<const T*>(p.B) + b * p.B_stride.outer;
  const T* C = static_cast<const T*>(p.C) + b * p.C_stride.outer;
  const float* A = p.A + d * p.A_stride.outer;
  T* y = static_cast<T*>(p.y) + b * p.y_stride.outer + d * p.y_stride.inner;
  const float skip = p.D ? p.D[d] : 0.0f;
  const float bias = p.delta_bias ? p.delta_bias[d] : 0.0f;

  for (int n = threadIdx.x; n < p.dstate; n += Cfg::kThreads) shared.carried[n] = 0.0f;
  __syncthreads();

  for (int start = 0; start < p.seqlen; start += Cfg::kChunk) {
    const int valid = min(Cfg::kChunk, p.seqlen - start);
    float uf[kItems], dt[kItems], out[kItems];
    LoadChunk<Cfg>(u + start, valid, uf, shared);
    LoadChunk<Cfg>(delta + start, valid, dt, shared);
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      dt[i] += bias;
      if (p.delta_softplus) dt[i] = Softplus(dt[i]);
      out[i] = skip * uf[i];
    }
    for (int n = 0; n < p.dstate; ++n) {
      float bn[kItems], cn[kItems];
      LoadChunk<Cfg>(B + n * p.B_stride.inner + start, valid, bn, shared);
      LoadChunk<Cfg>(C + n * p.C_stride.inner + start, valid, cn, shared);
      const float a = A[n * p.A_stride.inner] * kLog2e;
      float2 steps[kItems];
#pragma unroll
      for (int i = 0; i < kItems; ++i) {
        // Past the end, the identity step: the chunk total is then the state at the last element.
        const bool in_range = static_cast<int>(threadIdx.x) * kItems + i < valid;
        steps[i] = in_range ? make_float2(exp2f(dt[i] * a), dt[i] * uf[i] * bn[i]) : make_float2(1.0f, 0.0f);
      }
      CarryIn carry{make_float2(1.0f, shared.carried[n])};
      typename Cfg::Scan(shared.temp.scan).InclusiveScan(steps, steps, ComposeSteps{}, carry);
      __syncthreads();
      if (threadIdx.x == 0) shared.carried[n] = carry.carried.y;
#pragma unroll
      for (int i = 0; i < kItems; ++i) out[i] += steps[i].y * cn[i];
    }
    if (z != nullptr) {
      float zf[kItems];
      LoadChunk<Cfg>(z + start, valid, zf, shared);
#pragma unroll
      for (int i = 0; i < kItems; ++i) out[i] *= Silu(zf[i]);
    }
    StoreChunk<Cfg>(y + start, valid, out, shared);
  }
  __syncthreads();
  float* last_state = p.last_state + (b * p.dim + d) * p.dstate;
  for (int n = threadIdx.x; n < p.dstate; n += Cfg::kThreads) last_state[n] = shared.carried[n];
}

// Two shapes only, to keep compile time down: short prompts waste fewer
// threads on a 256-step chunk; long ones amortize the per-chunk barriers.
template <typename T>
const char* LaunchForType(const ScanLaunch& p, cudaStream_t stream) {
  const dim3 grid(p.dim, p.batch);
  if (p.seqlen <= 256) {
    using Cfg = ScanConfig<64, 4, T>;
    SelectiveScanKernel<Cfg, T><<<grid, Cfg::kThreads, 0, stream>>>(p);
  } else {
    using Cfg = ScanConfig<128, 8, T>;
    SelectiveScanKernel<Cfg, T><<<grid, Cfg::kThreads, 0, stream>>>(p);
  }
  return LaunchStatus();
}

}  // namespace

const char* LaunchSelectiveScan(const ScanLaunch& p, void* stream) {
  if (p.dstate < 1 || p.dstate > kMaxScanState) return "selective scan: dstate must be in 1..256 on CUDA";
  if (p.batch > 65535) return "selective scan: batch must be at most 65535 on CUDA";
  if (p.batch < 0 || p.dim < 0 || p.seqlen < 0) return "selective scan: negative size";
  if (p.batch == 0 || p.dim == 0) return nullptr;
  return WithStorageType(p.dtype, [&](auto type) {
    return LaunchForType<decltype(type)>(p, static_cast<cudaStream_t>(stream));
  });
}

int VisibleDeviceCount() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error so later calls start clean
    return 0;
  }
  return count;
}

}  // namespace thalamus::kernels::cuda
