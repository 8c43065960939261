// Compiled with -O3 -ffast-math (see cpu_loops.h). The loops are written so
// GCC vectorizes them: fixed-width inner loops over kScanLanes, no branches in
// the hot paths, an inlined exp2 for the decays and libmvec's log1pf/expf for
// softplus. Each loop body is instantiated for x86-64-v2, x86-64-v3
// (AVX2+FMA) and x86-64-v4 (AVX-512); the variant is chosen at run time.
#include "kernels/cpu_loops.h"

#include <math.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

#define THALAMUS_INLINE inline __attribute__((always_inline))
#if defined(__x86_64__)
#define THALAMUS_HAVE_X86_VARIANTS 1
#define THALAMUS_TARGET_AVX2 __attribute__((target("arch=x86-64-v3")))
// 512-bit vectors on purpose: the scan needs more than AVX2's 16 registers.
#define THALAMUS_TARGET_AVX512 __attribute__((target("arch=x86-64-v4,prefer-vector-width=512")))
#else
#define THALAMUS_HAVE_X86_VARIANTS 0
#endif

namespace thalamus::kernels::internal {
namespace {

constexpr int64_t L = kScanLanes;
constexpr int64_t kChunk = 64;  // time steps staged per lane group; 4 buffers of 4 KiB stay in L1

constexpr float kLog2e = 1.44269504088896341f;

// 2^x for the recurrence's decay, inlined so the vectorized loop keeps the
// state in registers: libmvec's expf is an out-of-line call that spills every
// vector register, which made it the bottleneck. x = k + r with |r| <= 1/2,
// 2^r = 1 + r q(r) with q a degree-5 Chebyshev fit of (2^r - 1)/r (1e-8
// relative error). The 1 + r q form keeps 1 - 2^r accurate for decays near 1,
// where a plain polynomial's error would compound over long sequences. 2^k is
// built in the exponent bits; inputs below -126 give 2^-126 instead of a
// denormal, which is immaterial for a decay factor.
THALAMUS_INLINE float FastExp2(float x) {
  x = std::min(std::max(x, -126.0f), 126.0f);
  const float k = nearbyintf(x);
  const float r = x - k;
  float q = 1.5453162939509034e-4f;
  q = q * r + 1.339086336462805e-3f;
  q = q * r + 9.618082557302569e-3f;
  q = q * r + 5.550357114219147e-2f;
  q = q * r + 2.4022650760567846e-1f;
  q = q * r + 6.931471880262285e-1f;
  const float p = 1.0f + r * q;
  const int32_t bits = (static_cast<int32_t>(k) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

// Above 20, softplus(v) == v in fp32; clamping keeps expf finite under -ffast-math.
// Both sides are computed and one selected, so the loop if-converts and vectorizes.
THALAMUS_INLINE float Softplus(float v) {
  const float smooth = log1pf(expf(std::min(v, 20.0f)));
  return v > 20.0f ? v : smooth;
}

// z * sigmoid(z); for z < -87 the result is ~z * 1e-38, i.e. 0 for every purpose.
THALAMUS_INLINE float Silu(float v) { return v / (1.0f + FastExp2(-v * kLog2e)); }

// The scan works on time-major [t][lane] buffers but the tensors are
// channel-major, so every chunk is transposed in and out. Scalar copies made
// that ~40% of the scan; 4x4 register transposes (SSE, present on every
// x86-64) cut it to a fraction. Elsewhere the scalar loop is used.
#if defined(__SSE2__)
THALAMUS_INLINE void Transpose4x4(const float* src, int64_t src_stride, float* dst, int64_t dst_stride) {
  __m128 r0 = _mm_loadu_ps(src), r1 = _mm_loadu_ps(src + src_stride);
  __m128 r2 = _mm_loadu_ps(src + 2 * src_stride), r3 = _mm_loadu_ps(src + 3 * src_stride);
  _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
  _mm_storeu_ps(dst, r0);
  _mm_storeu_ps(dst + dst_stride, r1);
  _mm_storeu_ps(dst + 2 * dst_stride, r2);
  _mm_storeu_ps(dst + 3 * dst_stride, r3);
}
constexpr int64_t kBlock = 4;
#else
constexpr int64_t kBlock = 0;
#endif

// Copies `count` steps of kScanLanes channel rows (row stride `seqlen`) into a
// time-major [count][L] buffer; channels past `lanes` read as 0.
THALAMUS_INLINE void GatherLanes(const float* rows, int64_t seqlen, int64_t lanes, int64_t count, float* out) {
  int64_t done = 0;
#if defined(__SSE2__)
  if (lanes == L) {
    for (; done + kBlock <= count; done += kBlock) {
      for (int64_t l = 0; l < L; l += kBlock) Transpose4x4(rows + l * seqlen + done, seqlen, out + done * L + l, L);
    }
  }
#endif
  for (int64_t l = 0; l < L; ++l) {
    for (int64_t t = done; t < count; ++t) out[t * L + l] = l < lanes ? rows[l * seqlen + t] : 0.0f;
  }
}

// The inverse of GatherLanes for the first `lanes` channels.
THALAMUS_INLINE void ScatterLanes(const float* in, int64_t lanes, int64_t count, float* rows, int64_t seqlen) {
  int64_t done = 0;
#if defined(__SSE2__)
  if (lanes == L) {
    for (; done + kBlock <= count; done += kBlock) {
      for (int64_t l = 0; l < L; l += kBlock) Transpose4x4(in + done * L + l, L, rows + l * seqlen + done, seqlen);
    }
  }
#endif
  for (int64_t l = 0; l < lanes; ++l) {
    for (int64_t t = done; t < count; ++t) rows[l * seqlen + t] = in[t * L + l];
  }
}

THALAMUS_INLINE void AddPerLane(int64_t count, const float* per_lane, float* values) {
  for (int64_t t = 0; t < count; ++t) {
    for (int64_t l = 0; l < L; ++l) values[t * L + l] += per_lane[l];
  }
}

struct LaneParams {
  float bias[L] = {};
  float skip[L] = {};  // D
};

// Runs the recurrence for one chunk of `count` steps. x: [dstate][L] state,
// a: [dstate][L] A transposed and scaled by log2(e). B_rows, C_rows: [count][dstate].
THALAMUS_INLINE void ScanChunk(int64_t count, int64_t dstate, const float* a, const float* B_rows, const float* C_rows,
                               const float* u, const float* dt, float* x, float* y) {
  for (int64_t t = 0; t < count; ++t) {
    float step[L], drive[L], acc[L] = {};
    for (int64_t l = 0; l < L; ++l) {
      step[l] = dt[t * L + l];
      drive[l] = step[l] * u[t * L + l];
    }
    const float* b_row = B_rows + t * dstate;
    const float* c_row = C_rows + t * dstate;
    for (int64_t n = 0; n < dstate; ++n) {
      const float bn = b_row[n], cn = c_row[n];
      float* xn = x + n * L;
      const float* an = a + n * L;
      for (int64_t l = 0; l < L; ++l) {
        xn[l] = FastExp2(step[l] * an[l]) * xn[l] + drive[l] * bn;
        acc[l] += cn * xn[l];
      }
    }
    for (int64_t l = 0; l < L; ++l) y[t * L + l] = acc[l];
  }
}

THALAMUS_INLINE void PrefetchRow(const CpuScanArgs& p, int64_t offset) {
  constexpr int64_t kFloatsPerLine = 16;
  for (int64_t i = 0; i < kChunk; i += kFloatsPerLine) {
    __builtin_prefetch(p.u + offset + i);
    __builtin_prefetch(p.delta + offset + i);
    if (p.z) __builtin_prefetch(p.z + offset + i);
  }
}

THALAMUS_INLINE void ScanLaneGroup(const CpuScanArgs& p, int64_t b, int64_t d0, float* a, float* x) {
  const int64_t lanes = std::min(L, p.dim - d0);
  LaneParams lp;
  for (int64_t l = 0; l < lanes; ++l) {
    if (p.delta_bias) lp.bias[l] = p.delta_bias[d0 + l];
    if (p.D) lp.skip[l] = p.D[d0 + l];
  }
  for (int64_t n = 0; n < p.dstate; ++n) {
    for (int64_t l = 0; l < L; ++l) a[n * L + l] = l < lanes ? p.A[(d0 + l) * p.dstate + n] * kLog2e : 0.0f;
  }
  std::fill(x, x + p.dstate * L, 0.0f);

  const int64_t row = (b * p.dim + d0) * p.seqlen;
  alignas(64) float u[kChunk * L], dt[kChunk * L], gate[kChunk * L], y[kChunk * L];
  for (int64_t t0 = 0; t0 < p.seqlen; t0 += kChunk) {
    const int64_t count = std::min(kChunk, p.seqlen - t0);
    GatherLanes(p.u + row + t0, p.seqlen, lanes, count, u);
    GatherLanes(p.delta + row + t0, p.seqlen, lanes, count, dt);
    AddPerLane(count, lp.bias, dt);
    if (p.delta_softplus) {
      for (int64_t i = 0; i < count * L; ++i) dt[i] = Softplus(dt[i]);
    }
    // 48 row streams are more than the hardware prefetchers follow: fetch the
    // next chunk's rows while this one computes.
    if (t0 + kChunk < p.seqlen) {
      for (int64_t l = 0; l < lanes; ++l) PrefetchRow(p, row + l * p.seqlen + t0 + kChunk);
    }
    const int64_t by_time = (b * p.seqlen + t0) * p.dstate;
    ScanChunk(count, p.dstate, a, p.B_by_time + by_time, p.C_by_time + by_time, u, dt, x, y);
    for (int64_t t = 0; t < count; ++t) {
      for (int64_t l = 0; l < L; ++l) y[t * L + l] += lp.skip[l] * u[t * L + l];
    }
    if (p.z) {
      GatherLanes(p.z + row + t0, p.seqlen, lanes, count, gate);
      for (int64_t i = 0; i < count * L; ++i) y[i] *= Silu(gate[i]);
    }
    ScatterLanes(y, lanes, count, p.y + row + t0, p.seqlen);
  }
  for (int64_t l = 0; l < lanes; ++l) {
    for (int64_t n = 0; n < p.dstate; ++n) p.last_state[(b * p.dim + d0 + l) * p.dstate + n] = x[n * L + l];
  }
}

THALAMUS_INLINE void ScanTasksBody(const CpuScanArgs& p, int64_t begin, int64_t end) {
  const int64_t groups = (p.dim + L - 1) / L;
  std::vector<float> a(p.dstate * L), x(p.dstate * L);
  for (int64_t task = begin; task < end; ++task) {
    ScanLaneGroup(p, task / groups, (task % groups) * L, a.data(), x.data());
  }
}

THALAMUS_INLINE void StateUpdateBody(const CpuStateUpdateArgs& p, int64_t begin, int64_t end) {
  constexpr int64_t kRows = 64;
  float step[kRows];
  for (int64_t r0 = begin; r0 < end; r0 += kRows) {
    const int64_t count = std::min(kRows, end - r0);
    // softplus for a block of rows at once so it vectorizes across channels.
    for (int64_t i = 0; i < count; ++i) step[i] = p.dt[r0 + i];
    if (p.dt_bias) {
      for (int64_t i = 0; i < count; ++i) step[i] += p.dt_bias[(r0 + i) % p.dim];
    }
    if (p.dt_softplus) {
      for (int64_t i = 0; i < count; ++i) step[i] = Softplus(step[i]);
    }
    for (int64_t i = 0; i < count; ++i) {
      const int64_t row = r0 + i, b = row / p.dim, d = row % p.dim;
      float* state = p.state + row * p.dstate;
      const float* a = p.A + d * p.dstate;
      const float* bb = p.B + b * p.dstate;
      const float* cc = p.C + b * p.dstate;
      const float drive = step[i] * p.x[row], step2 = step[i] * kLog2e;
      float acc = 0.0f;
      for (int64_t n = 0; n < p.dstate; ++n) {
        state[n] = FastExp2(step2 * a[n]) * state[n] + drive * bb[n];
        acc += cc[n] * state[n];
      }
      if (p.D) acc += p.D[d] * p.x[row];
      if (p.z) acc *= Silu(p.z[row]);
      p.y[row] = acc;
    }
  }
}

THALAMUS_INLINE void ConvRowsBody(const CpuConvArgs& p, int64_t begin, int64_t end) {
  for (int64_t row = begin; row < end; ++row) {
    const int64_t d = row % p.dim;
    const float* x = p.x + row * p.seqlen;
    const float* w = p.weight + d * p.width;
    float* out = p.out + row * p.seqlen;
    const float bias = p.bias ? p.bias[d] : 0.0f;
    for (int64_t t = 0; t < p.seqlen; ++t) out[t] = bias;
    // Tap k reads x[t - shift]; the first `shift` outputs see the zero padding.
    for (int64_t k = 0; k < p.width; ++k) {
      const int64_t shift = p.width - 1 - k;
      const float wk = w[k];
      for (int64_t t = shift; t < p.seqlen; ++t) out[t] += wk * x[t - shift];
    }
    if (p.silu) {
      for (int64_t t = 0; t < p.seqlen; ++t) out[t] = Silu(out[t]);
    }
  }
}

THALAMUS_INLINE void ConvUpdateBody(const CpuConvUpdateArgs& p, int64_t begin, int64_t end) {
  for (int64_t row = begin; row < end; ++row) {
    const int64_t d = row % p.dim;
    float* window = p.conv_state + row * p.width;
    std::memmove(window, window + 1, (p.width - 1) * sizeof(float));
    window[p.width - 1] = p.x[row];
    float acc = p.bias ? p.bias[d] : 0.0f;
    for (int64_t k = 0; k < p.width; ++k) acc += p.weight[d * p.width + k] * window[k];
    p.out[row] = p.silu ? Silu(acc) : acc;
  }
}

enum class Isa { kBaseline, kAvx2, kAvx512 };

Isa DetectIsa() {
#if THALAMUS_HAVE_X86_VARIANTS
  const char* forced = std::getenv("THALAMUS_KERNELS_CPU_ISA");
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  if (forced != nullptr && std::strcmp(forced, "baseline") == 0) return Isa::kBaseline;
  if (forced != nullptr && std::strcmp(forced, "avx2") == 0) return avx2 ? Isa::kAvx2 : Isa::kBaseline;
  if (avx512) return Isa::kAvx512;
  if (avx2) return Isa::kAvx2;
#endif
  return Isa::kBaseline;
}

Isa SelectedIsa() {
  static const Isa isa = DetectIsa();
  return isa;
}

// One copy of each body per instruction set, chosen per call.
#if THALAMUS_HAVE_X86_VARIANTS
#define THALAMUS_VARIANTS(Body, Args)                                                          \
  void Body##Baseline(const Args& a, int64_t b, int64_t e) { Body(a, b, e); }                  \
  THALAMUS_TARGET_AVX2 void Body##Avx2(const Args& a, int64_t b, int64_t e) { Body(a, b, e); } \
  THALAMUS_TARGET_AVX512 void Body##Avx512(const Args& a, int64_t b, int64_t e) { Body(a, b, e); }
#define THALAMUS_DISPATCH(Body, args, begin, end)                 \
  switch (SelectedIsa()) {                                        \
    case Isa::kAvx512: return Body##Avx512(args, begin, end);     \
    case Isa::kAvx2: return Body##Avx2(args, begin, end);         \
    case Isa::kBaseline: return Body##Baseline(args, begin, end); \
  }
#else
#define THALAMUS_VARIANTS(Body, Args) \
  void Body##Baseline(const Args& a, int64_t b, int64_t e) { Body(a, b, e); }
#define THALAMUS_DISPATCH(Body, args, begin, end) return Body##Baseline(args, begin, end)
#endif

THALAMUS_VARIANTS(ScanTasksBody, CpuScanArgs)
THALAMUS_VARIANTS(StateUpdateBody, CpuStateUpdateArgs)
THALAMUS_VARIANTS(ConvRowsBody, CpuConvArgs)
THALAMUS_VARIANTS(ConvUpdateBody, CpuConvUpdateArgs)

}  // namespace

void RunScanTasks(const CpuScanArgs& args, int64_t begin, int64_t end) {
  THALAMUS_DISPATCH(ScanTasksBody, args, begin, end);
}

void RunStateUpdateRows(const CpuStateUpdateArgs& args, int64_t begin, int64_t end) {
  THALAMUS_DISPATCH(StateUpdateBody, args, begin, end);
}

void RunConvRows(const CpuConvArgs& args, int64_t begin, int64_t end) {
  THALAMUS_DISPATCH(ConvRowsBody, args, begin, end);
}

void RunConvUpdateRows(const CpuConvUpdateArgs& args, int64_t begin, int64_t end) {
  THALAMUS_DISPATCH(ConvUpdateBody, args, begin, end);
}

const char* SelectedCpuIsa() {
  switch (SelectedIsa()) {
    case Isa::kAvx512: return "avx512";
    case Isa::kAvx2: return "avx2";
    case Isa::kBaseline: break;
  }
  return "baseline";
}

}  // namespace thalamus::kernels::internal
