// Selective scan forward, the hardware-aware way of the Mamba paper (sec. 3.3):
// u, delta, z and B, C are read once from global memory, discretized on chip,
// and the recurrence x_t = exp(delta_t A) x_{t-1} + delta_t B_t u_t runs as a
// parallel scan over (decay, input) pairs; only y and the final state go back.
//
// Layout (chosen on the H200, see bench/RESULTS.md): a warp scans one or two
// channels of one batch row. The sequence is walked in chunks of 32 * kItems
// steps; lane l holds kItems consecutive steps of the chunk. Per state
// dimension a lane composes its steps serially, the warp scans the 32 lane
// totals with shuffles (the parallel scan over the associative (a, b)
// operator), and the lane then replays its steps from the exclusive prefix,
// accumulating C . x into y. The state carried between chunks (one float per
// state dimension and channel) sits in shared memory. The B and C rows of the
// next state dimension are loaded while the current one computes. No
// block-wide barrier is needed: a block's four warps are neighbouring
// channels of one batch row and read the same B and C rows, mostly from L1.
#include <cstdint>
#include <cstdlib>
#include <initializer_list>

#include "kernels/cuda/common.cuh"

namespace thalamus::kernels::cuda {
namespace {

constexpr float kLog2e = 1.4426950408889634f;
constexpr int kWarps = 4;  // channels per block
constexpr unsigned kFullMask = 0xffffffffu;

// 2^v on the special-function unit; the scan's one transcendental per step.
__device__ __forceinline__ float FastExp2(float v) {
  float out;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(out) : "f"(v));
  return out;
}

// kItems consecutive elements starting at `src` as floats; those at or past
// `valid` read as zero. Vector loads when the caller vouched for 16-byte
// alignment and the whole run is valid.
template <int kItems, typename T>
__device__ __forceinline__ void LoadRun(const T* src, int valid, bool vector_ok, float (&out)[kItems]) {
  constexpr int kBytes = kItems * static_cast<int>(sizeof(T));
  if (kBytes % 16 == 0 && vector_ok && valid >= kItems) {
    T raw[kItems];
#pragma unroll
    for (int v = 0; v < kBytes / 16; ++v) {
      reinterpret_cast<uint4*>(raw)[v] = __ldg(reinterpret_cast<const uint4*>(src) + v);
    }
#pragma unroll
    for (int i = 0; i < kItems; ++i) out[i] = ToFloat(raw[i]);
    return;
  }
#pragma unroll
  for (int i = 0; i < kItems; ++i) out[i] = i < valid ? ToFloat(src[i]) : 0.0f;
}

template <int kItems, typename T>
__device__ __forceinline__ void StoreRun(T* dst, int valid, bool vector_ok, const float (&values)[kItems]) {
  constexpr int kBytes = kItems * static_cast<int>(sizeof(T));
  T raw[kItems];
#pragma unroll
  for (int i = 0; i < kItems; ++i) raw[i] = FromFloat<T>(values[i]);
  if (kBytes % 16 == 0 && vector_ok && valid >= kItems) {
#pragma unroll
    for (int v = 0; v < kBytes / 16; ++v) reinterpret_cast<uint4*>(dst)[v] = reinterpret_cast<const uint4*>(raw)[v];
    return;
  }
#pragma unroll
  for (int i = 0; i < kItems; ++i) {
    if (i < valid) dst[i] = raw[i];
  }
}

// Inclusive scan over the warp's lanes of steps (a, b): x -> a x + b, lane 0
// first. Composing `earlier` then `later` gives (a_l a_e, a_l b_e + b_l).
__device__ __forceinline__ void WarpScanSteps(int lane, float& a, float& b) {
#pragma unroll
  for (int offset = 1; offset < 32; offset *= 2) {
    const float earlier_a = __shfl_up_sync(kFullMask, a, offset);
    const float earlier_b = __shfl_up_sync(kFullMask, b, offset);
    if (lane >= offset) {
      b = fmaf(a, earlier_b, b);
      a *= earlier_a;
    }
  }
}

// The rows one warp scans: kChannels channels of one batch row. They share
// the B and C rows, so each B and C load serves kChannels scans.
template <int kChannels, typename T>
struct WarpRows {
  const T* u[kChannels];
  const T* delta[kChannels];
  const T* z[kChannels];
  T* y[kChannels];
  const float* A[kChannels];
  float skip[kChannels], bias[kChannels];
  float* carried[kChannels];  // shared memory: the state entering the chunk, per state dimension
};

// B and C rows of state dimensions n0 .. n0 + kStates - 1 for this lane's steps.
template <int kStates, int kItems, typename T>
__device__ __forceinline__ void LoadStates(const ScanLaunch& p, int n0, const T* B, const T* C, int first, int valid,
                                           bool vector_ok, float (&bn)[kStates][kItems], float (&cn)[kStates][kItems]) {
#pragma unroll
  for (int s = 0; s < kStates; ++s) {
    LoadRun<kItems>(B + (n0 + s) * p.B_stride.inner + first, valid, vector_ok, bn[s]);
    LoadRun<kItems>(C + (n0 + s) * p.C_stride.inner + first, valid, vector_ok, cn[s]);
  }
}

// The part of one chunk that depends on the state dimension, for kStates
// dimensions n0.. (B and C rows in bn, cn) and every channel of the warp at
// once: independent work the scheduler can interleave. When `next` >= 0 it
// first issues the loads of the next group's rows, so they arrive while this
// group computes.
template <int kStates, int kChannels, int kItems, typename T>
__device__ __forceinline__ void ScanStates(const ScanLaunch& p, int n0, const T* B, const T* C,
                                           const WarpRows<kChannels, T>& rows, int first, int valid, bool vector_ok,
                                           int lane, const float (&dt)[kChannels][kItems],
                                           const float (&drive)[kChannels][kItems], float (&out)[kChannels][kItems],
                                           const float (&bn)[kStates][kItems], const float (&cn)[kStates][kItems],
                                           int next, float (&next_bn)[kStates][kItems],
                                           float (&next_cn)[kStates][kItems]) {
  if (next >= 0) LoadStates<kStates, kItems>(p, next, B, C, first, valid, vector_ok, next_bn, next_cn);
  float input[kStates][kChannels][kItems], decay[kStates][kChannels][kItems];
  float total_a[kStates][kChannels], total_b[kStates][kChannels];
#pragma unroll
  for (int s = 0; s < kStates; ++s) {
    const int n = n0 + s;
#pragma unroll
    for (int c = 0; c < kChannels; ++c) {
      const float a = rows.A[c][n * p.A_stride.inner];
      total_a[s][c] = 1.0f, total_b[s][c] = 0.0f;
#pragma unroll
      for (int i = 0; i < kItems; ++i) {
        decay[s][c][i] = FastExp2(dt[c][i] * a);
        input[s][c][i] = bn[s][i] * drive[c][i];
        total_b[s][c] = fmaf(decay[s][c][i], total_b[s][c], input[s][c][i]);
        total_a[s][c] *= decay[s][c][i];
      }
    }
  }
  float leaving[kStates][kChannels];
#pragma unroll
  for (int s = 0; s < kStates; ++s) {
#pragma unroll
    for (int c = 0; c < kChannels; ++c) {
      WarpScanSteps(lane, total_a[s][c], total_b[s][c]);
      // Exclusive prefix: the steps of the lanes before this one, applied to the carried state.
      float before_a = __shfl_up_sync(kFullMask, total_a[s][c], 1);
      float before_b = __shfl_up_sync(kFullMask, total_b[s][c], 1);
      if (lane == 0) before_a = 1.0f, before_b = 0.0f;
      float x = fmaf(before_a, rows.carried[c][n0 + s], before_b);
#pragma unroll
      for (int i = 0; i < kItems; ++i) {
        x = fmaf(decay[s][c][i], x, input[s][c][i]);
        out[c][i] = fmaf(cn[s][i], x, out[c][i]);
      }
      // Lane 31's last step is the chunk's last (padding steps are the identity).
      leaving[s][c] = __shfl_sync(kFullMask, x, 31);
    }
  }
  __syncwarp();
  if (lane == 0) {
#pragma unroll
    for (int s = 0; s < kStates; ++s) {
#pragma unroll
      for (int c = 0; c < kChannels; ++c) rows.carried[c][n0 + s] = leaving[s][c];
    }
  }
  __syncwarp();
}

template <int kItems, int kChannels, typename T>
__global__ void __launch_bounds__(kWarps * 32) SelectiveScanKernel(ScanLaunch p, bool vector_ok) {
  constexpr int kChunk = 32 * kItems;
  constexpr int kStates = kChannels == 1 ? 2 : 1;  // two independent scans in flight either way
  __shared__ float carried_state[kWarps][kChannels][kMaxScanState];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t b = blockIdx.y, d0 = (static_cast<int64_t>(blockIdx.x) * kWarps + warp) * kChannels;
  if (d0 >= p.dim) return;  // whole warps only: nothing below synchronizes across warps

  WarpRows<kChannels, T> rows;
#pragma unroll
  for (int c = 0; c < kChannels; ++c) {
    // A last, partial group repeats its last channel; only real channels are stored.
    const int64_t d = d0 + c < p.dim ? d0 + c : p.dim - 1;
    rows.u[c] = static_cast<const T*>(p.u) + b * p.u_stride.outer + d * p.u_stride.inner;
    rows.delta[c] = static_cast<const T*>(p.delta) + b * p.delta_stride.outer + d * p.delta_stride.inner;
    rows.z[c] = p.z ? static_cast<const T*>(p.z) + b * p.z_stride.outer + d * p.z_stride.inner : nullptr;
    rows.y[c] = static_cast<T*>(p.y) + b * p.y_stride.outer + d * p.y_stride.inner;
    rows.A[c] = p.A + d * p.A_stride.outer;
    rows.skip[c] = p.D ? p.D[d] : 0.0f;
    rows.bias[c] = p.delta_bias ? p.delta_bias[d] : 0.0f;
    rows.carried[c] = carried_state[warp][c];
    for (int n = lane; n < p.dstate; n += 32) rows.carried[c][n] = 0.0f;
  }
  const int channels = static_cast<int>(min(static_cast<int64_t>(kChannels), p.dim - d0));
  const T* B = static_cast<const T*>(p.B) + b * p.B_stride.outer;
  const T* C = static_cast<const T*>(p.C) + b * p.C_stride.outer;
  __syncwarp();

  for (int start = 0; start < p.seqlen; start += kChunk) {
    const int first = start + lane * kItems;
    const int valid = p.seqlen - first;  // <= 0 for lanes past the end
    float dt[kChannels][kItems], drive[kChannels][kItems], out[kChannels][kItems];
#pragma unroll
    for (int c = 0; c < kChannels; ++c) {
      LoadRun<kItems>(rows.u[c] + first, valid, vector_ok, drive[c]);
      LoadRun<kItems>(rows.delta[c] + first, valid, vector_ok, dt[c]);
#pragma unroll
      for (int i = 0; i < kItems; ++i) {
        float step = dt[c][i] + rows.bias[c];
        if (p.delta_softplus) step = Softplus(step);
        dt[c][i] = i < valid ? step * kLog2e : 0.0f;  // past the end: exp2(0) = 1 and no input, the identity
        out[c][i] = rows.skip[c] * drive[c][i];
        drive[c][i] *= step;  // delta_t u_t
      }
    }
    // Groups of kStates dimensions, two row buffers in turn (one computing, one loading).
    const int groups = p.dstate / kStates;
    float bn0[kStates][kItems], cn0[kStates][kItems], bn1[kStates][kItems], cn1[kStates][kItems];
    if (groups > 0) LoadStates<kStates, kItems>(p, 0, B, C, first, valid, vector_ok, bn0, cn0);
    int g = 0;
    for (; g + 2 <= groups; g += 2) {
      ScanStates<kStates, kChannels, kItems>(p, g * kStates, B, C, rows, first, valid, vector_ok, lane, dt, drive, out,
                                             bn0, cn0, (g + 1) * kStates, bn1, cn1);
      ScanStates<kStates, kChannels, kItems>(p, (g + 1) * kStates, B, C, rows, first, valid, vector_ok, lane, dt, drive,
                                             out, bn1, cn1, g + 2 < groups ? (g + 2) * kStates : -1, bn0, cn0);
    }
    if (g < groups) {
      ScanStates<kStates, kChannels, kItems>(p, g * kStates, B, C, rows, first, valid, vector_ok, lane, dt, drive, out,
                                             bn0, cn0, -1, bn1, cn1);
    }
    for (int n = groups * kStates; n < p.dstate; ++n) {
      float bn[1][kItems], cn[1][kItems];
      LoadStates<1, kItems>(p, n, B, C, first, valid, vector_ok, bn, cn);
      ScanStates<1, kChannels, kItems>(p, n, B, C, rows, first, valid, vector_ok, lane, dt, drive, out, bn, cn, -1, bn,
                                       cn);
    }
#pragma unroll
    for (int c = 0; c < kChannels; ++c) {
      if (c < channels) {
        if (rows.z[c] != nullptr) {
          float zf[kItems];
          LoadRun<kItems>(rows.z[c] + first, valid, vector_ok, zf);
#pragma unroll
          for (int i = 0; i < kItems; ++i) out[c][i] *= Silu(zf[i]);
        }
        if (valid > 0) StoreRun<kItems>(rows.y[c] + first, valid, vector_ok, out[c]);
      }
    }
  }
#pragma unroll
  for (int c = 0; c < kChannels; ++c) {
    if (c < channels) {
      float* last_state = p.last_state + (b * p.dim + d0 + c) * p.dstate;
      for (int n = lane; n < p.dstate; n += 32) last_state[n] = rows.carried[c][n];
    }
  }
}

bool Aligned16(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }

// 16-byte vector loads need every row start aligned: base pointers and the
// strides between rows (time has stride 1).
template <typename T>
bool RowsAligned(const ScanLaunch& p) {
  auto aligned = [](const void* ptr, const Strides2& s) {
    return ptr == nullptr || (Aligned16(ptr) && (s.outer * sizeof(T)) % 16 == 0 && (s.inner * sizeof(T)) % 16 == 0);
  };
  return aligned(p.u, p.u_stride) && aligned(p.delta, p.delta_stride) && aligned(p.z, p.z_stride) &&
         aligned(p.B, p.B_stride) && aligned(p.C, p.C_stride) && aligned(p.y, p.y_stride);
}

// Tuning knobs read once from the environment, for benchmarks: 0 = automatic.
int ForcedSetting(const char* name, std::initializer_list<int> allowed) {
  const char* text = std::getenv(name);
  const int value = text ? std::atoi(text) : 0;
  for (int ok : allowed) {
    if (value == ok) return value;
  }
  return 0;
}

// Steps per lane and channels per warp, from a sweep on the H200 (see
// bench/RESULTS.md): 16-byte runs for fp32 (8 steps), 4 steps for 16-bit types
// (wider runs cost registers that lose more occupancy than the wider loads
// gain), and two channels per warp, sharing B and C loads, once there are
// enough channels to fill the GPU with half as many warps.
// THALAMUS_KERNELS_CUDA_SCAN_ITEMS=4|8|16 and _CHANNELS=1|2 force a choice.
template <typename T>
int ItemsPerLane(int seqlen) {
  static const int forced = ForcedSetting("THALAMUS_KERNELS_CUDA_SCAN_ITEMS", {4, 8, 16});
  if (forced != 0) return forced;
  if (seqlen <= 32 * 4 || sizeof(T) < 4) return 4;
  return 8;
}

int ChannelsPerWarp(const ScanLaunch& p) {
  static const int forced = ForcedSetting("THALAMUS_KERNELS_CUDA_SCAN_CHANNELS", {1, 2});
  if (forced != 0) return forced;
  return static_cast<int64_t>(p.batch) * p.dim >= 4096 ? 2 : 1;
}

template <int kChannels, typename T>
void LaunchShape(const ScanLaunch& p, bool vector_ok, cudaStream_t stream) {
  const int64_t warps = (p.dim + kChannels - 1) / kChannels;
  const dim3 grid(static_cast<unsigned>((warps + kWarps - 1) / kWarps), p.batch);
  switch (ItemsPerLane<T>(p.seqlen)) {
    case 4: SelectiveScanKernel<4, kChannels, T><<<grid, kWarps * 32, 0, stream>>>(p, vector_ok); break;
    case 8: SelectiveScanKernel<8, kChannels, T><<<grid, kWarps * 32, 0, stream>>>(p, vector_ok); break;
    default: SelectiveScanKernel<16, kChannels, T><<<grid, kWarps * 32, 0, stream>>>(p, vector_ok); break;
  }
}

template <typename T>
const char* LaunchForType(const ScanLaunch& p, cudaStream_t stream) {
  const bool vector_ok = RowsAligned<T>(p);
  if (ChannelsPerWarp(p) == 2) {
    LaunchShape<2, T>(p, vector_ok, stream);
  } else {
    LaunchShape<1, T>(p, vector_ok, stream);
  }
  return LaunchStatus();
}

}  // namespace

const char* LaunchSelectiveScan(const ScanLaunch& p, void* stream) {
  if (p.dstate < 1 || p.dstate > kMaxScanState) return "selective scan: dstate must be in 1..256 on CUDA";
  if (p.batch > 65535) return "selective scan: batch must be at most 65535 on CUDA";
  if (p.batch < 0 || p.dim < 0 || p.seqlen < 0) return "selective scan: negative size";
  if (p.batch == 0 || p.dim == 0) return nullptr;
  return WithStorageType(
      p.dtype, [&](auto type) { return LaunchForType<decltype(type)>(p, static_cast<cudaStream_t>(stream)); });
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
