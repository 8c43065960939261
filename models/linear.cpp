#include "models/linear.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

namespace thalamus::models {
namespace {

constexpr int64_t kMaxSmallBatch = 8;

// Sixteen floats: GCC lowers it to one AVX-512, two AVX2 or four SSE registers
// in the clone the CPU selects at load time.
typedef float Vec16 __attribute__((vector_size(64)));

// Output rows [begin, end) for a batch of B activation rows. Each weight row
// is read once and used for all B activations; with few rows, several
// accumulators per activation keep the FMA units busy.
template <int B>
__attribute__((target_clones("avx512f", "avx2,fma", "default"))) void GemvRows(
    const float* __restrict weight, int64_t in, const float* __restrict x, int64_t out, float* __restrict y,
    int64_t begin, int64_t end) {
  constexpr int kUnroll = B >= 4 ? 1 : 4 / B;
  constexpr int64_t kStep = 16 * kUnroll;
  const int64_t main_end = in / kStep * kStep;
  for (int64_t row = begin; row < end; ++row) {
    const float* w = weight + row * in;
    Vec16 acc[B][kUnroll] = {};
    for (int64_t k = 0; k < main_end; k += kStep) {
      for (int u = 0; u < kUnroll; ++u) {
        Vec16 wk;
        __builtin_memcpy(&wk, w + k + 16 * u, sizeof(wk));
        for (int b = 0; b < B; ++b) {
          Vec16 xk;
          __builtin_memcpy(&xk, x + b * in + k + 16 * u, sizeof(xk));
          acc[b][u] += wk * xk;
        }
      }
    }
    for (int b = 0; b < B; ++b) {
      Vec16 total = acc[b][0];
      for (int u = 1; u < kUnroll; ++u) total += acc[b][u];
      float sum = 0;
      for (int i = 0; i < 16; ++i) sum += total[i];
      for (int64_t k = main_end; k < in; ++k) sum += w[k] * x[b * in + k];
      y[b * out + row] = sum;
    }
  }
}

template <int B>
void Run(const float* weight, int64_t out, int64_t in, const float* x, float* y) {
  // ~256 KiB of weights per task: small matrices (x_proj, dt_proj) stay on the
  // calling thread, since a fork-join costs more than reading them.
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, in));
  at::parallel_for(0, out, grain, [&](int64_t begin, int64_t end) { GemvRows<B>(weight, in, x, out, y, begin, end); });
}

}  // namespace

void SmallBatchGemv(const float* weight, int64_t out, int64_t in, const float* x, int64_t rows, float* y) {
  switch (rows) {
    case 1: return Run<1>(weight, out, in, x, y);
    case 2: return Run<2>(weight, out, in, x, y);
    case 3: return Run<3>(weight, out, in, x, y);
    case 4: return Run<4>(weight, out, in, x, y);
    case 5: return Run<5>(weight, out, in, x, y);
    case 6: return Run<6>(weight, out, in, x, y);
    case 7: return Run<7>(weight, out, in, x, y);
    case 8: return Run<8>(weight, out, in, x, y);
    default: TORCH_CHECK(false, "SmallBatchGemv: rows must be 1..8, got ", rows);
  }
}

torch::Tensor Linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  const bool small = x.dim() == 2 && x.size(0) <= kMaxSmallBatch && x.scalar_type() == torch::kFloat32 &&
                     weight.scalar_type() == torch::kFloat32 && x.device().is_cpu() && weight.is_contiguous();
  if (!small) return at::linear(x, weight, bias.defined() ? c10::optional<at::Tensor>(bias) : c10::nullopt);
  torch::Tensor rows = x.contiguous();
  torch::Tensor y = torch::empty({x.size(0), weight.size(0)}, x.options());
  SmallBatchGemv(weight.data_ptr<float>(), weight.size(0), weight.size(1), rows.data_ptr<float>(), rows.size(0), y.data_ptr<float>());
  if (bias.defined()) y.add_(bias);
  return y;
}

}  // namespace thalamus::models
