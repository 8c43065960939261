#include "models/linear.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <dlfcn.h>

#include <mutex>
#include <vector>

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
__attribute__((target_clones("avx512f", "avx2,fma", "default"))) void GemvRows(const float* __restrict weight,
                                                                               int64_t in, const float* __restrict x,
                                                                               int64_t out, float* __restrict y,
                                                                               int64_t begin, int64_t end) {
  constexpr int kUnroll = B >= 4 ? 1 : 4 / B;
  constexpr int64_t kStep = 16 * kUnroll;
  const int64_t main_end = in / kStep * kStep;
  for (int64_t row = begin; row < end; ++row) {
    const float* w = weight + row * in;
    Vec16 acc[B][kUnroll] = {};
    for (int64_t k = 0; k < main_end; k += kStep) {
#pragma GCC unroll 4
      for (int u = 0; u < kUnroll; ++u) {
        Vec16 wk;
        __builtin_memcpy(&wk, w + k + 16 * u, sizeof(wk));
#pragma GCC unroll 8
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

namespace {

// OpenBLAS (what LibTorch's CPU GEMM calls here) runs its own pthreads pool,
// whose busy workers and the OpenMP pool's spinning ones fight over the cores:
// on the benchmark machine a 128-token prefill took ten times longer that way.
// So OpenBLAS gets one thread and big products are split over the OpenMP pool.
void UseOneBlasThread() {
  static std::once_flag once;
  std::call_once(once, [] {
    using SetThreads = void (*)(int);
    if (auto set = reinterpret_cast<SetThreads>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set(1);
  });
}

std::vector<int64_t> OutputShape(const torch::Tensor& x, const torch::Tensor& weight) {
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = weight.size(0);
  return shape;
}

// y = x W^T for many rows: each thread multiplies its own block of rows.
torch::Tensor SplitRowsLinear(const torch::Tensor& x, const torch::Tensor& weight, int64_t rows) {
  UseOneBlasThread();
  torch::Tensor flat = x.reshape({rows, x.size(-1)}).contiguous();
  torch::Tensor y = torch::empty({rows, weight.size(0)}, x.options());
  const int64_t threads = at::get_num_threads();
  at::parallel_for(0, rows, (rows + threads - 1) / threads, [&](int64_t begin, int64_t end) {
    torch::Tensor block = y.narrow(0, begin, end - begin);
    at::mm_out(block, flat.narrow(0, begin, end - begin), weight.t());
  });
  return y.view(OutputShape(x, weight));
}

torch::Tensor SmallRowsLinear(const torch::Tensor& x, const torch::Tensor& weight, int64_t rows) {
  torch::Tensor flat = x.reshape({rows, x.size(-1)}).contiguous();
  torch::Tensor y = torch::empty({rows, weight.size(0)}, x.options());
  SmallBatchGemv(weight.data_ptr<float>(), weight.size(0), weight.size(1), flat.data_ptr<float>(), rows,
                 y.data_ptr<float>());
  return y.view(OutputShape(x, weight));
}

}  // namespace

torch::Tensor Linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  const bool cpu = x.device().is_cpu() && weight.device().is_cpu() && x.scalar_type() == weight.scalar_type();
  const int64_t rows = x.dim() >= 1 && x.size(-1) > 0 ? x.numel() / x.size(-1) : 0;
  if (!cpu || rows == 0) return at::linear(x, weight, bias.defined() ? c10::optional<at::Tensor>(bias) : c10::nullopt);
  const bool small = rows <= kMaxSmallBatch && x.scalar_type() == torch::kFloat32 && weight.is_contiguous();
  torch::Tensor y = small ? SmallRowsLinear(x, weight, rows) : SplitRowsLinear(x, weight, rows);
  return bias.defined() ? y.add_(bias) : y;
}

}  // namespace thalamus::models
