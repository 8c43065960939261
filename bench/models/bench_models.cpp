// Mamba-130m shapes (d_model 768, 24 layers, vocab 50280; random weights) on
// the CPU, beside the machine's memory bandwidth measured in the same run.
//
// Decoding one token reads every weight once, so it cannot beat
//   bound tokens/s = read bandwidth / weight bytes.
// BM_ReadBandwidth measures that bandwidth (a 1 GiB array summed by all
// threads with wide loads, far beyond the caches) and BM_CopyBandwidth the STREAM-style copy
// rate (bytes read + written). BM_Decode reports `of_bound`: its tokens/s
// times the weight bytes over the read bandwidth (1.0 = at the bound); with
// batch > 1 one pass over the weights serves every sequence.
// Threads: --threads=N (default 2) for ATen/OpenMP and the bandwidth probes.
#include <benchmark/benchmark.h>

#include <ATen/Parallel.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <numeric>
#include <vector>

#include "bench/models/model_shapes.h"
#include "bench/threads_flag.h"
#include "kernels/kernels.h"
#include "models/mamba.h"

namespace thalamus::models {
namespace {

constexpr size_t kProbeBytes = size_t{1} << 30;

const MambaModel& Model() {
  static const std::unique_ptr<MambaModel> model = MambaModel::Random(Mamba130m(), 1);
  return *model;
}

std::vector<uint64_t>& ProbeBuffer() {
  static std::vector<uint64_t> buffer = [] {
    std::vector<uint64_t> data(kProbeBytes / sizeof(uint64_t));
    std::fill(data.begin(), data.end(), 0x3F8000003F800000ull);  // touch every page; floats of 1.0
    return data;
  }();
  return buffer;
}

// Sixteen-float vectors (AVX-512, 2xAVX2 or 4xSSE by the clone the CPU picks)
// and four independent sums: the loop issues loads faster than memory delivers.
typedef float Vec16 __attribute__((vector_size(64)));

__attribute__((target_clones("avx512f", "avx2", "default"))) float SumFloats(const float* data, int64_t count) {
  Vec16 acc[4] = {};
  int64_t i = 0;
  for (; i + 64 <= count; i += 64) {
    for (int u = 0; u < 4; ++u) {
      Vec16 v;
      std::memcpy(&v, data + i + 16 * u, sizeof(v));
      acc[u] += v;
    }
  }
  Vec16 total = acc[0] + acc[1] + acc[2] + acc[3];
  float sum = 0;
  for (int lane = 0; lane < 16; ++lane) sum += total[lane];
  for (; i < count; ++i) sum += data[i];
  return sum;
}

// One pass reading the whole buffer with every thread.
float ReadPass() {
  const std::vector<uint64_t>& buffer = ProbeBuffer();
  const float* data = reinterpret_cast<const float*>(buffer.data());
  const int64_t count = static_cast<int64_t>(buffer.size() * 2);
  std::vector<float> partial(at::get_num_threads() * 16, 0.0f);
  at::parallel_for(0, count, 1 << 20, [&](int64_t begin, int64_t end) {
    partial[at::get_thread_num() * 16] += SumFloats(data + begin, end - begin);
  });
  return std::accumulate(partial.begin(), partial.end(), 0.0f);
}

double MeasuredReadBandwidth() {
  static const double bytes_per_second = [] {
    ReadPass();  // warm
    double best = 0;
    for (int i = 0; i < 5; ++i) {
      auto start = std::chrono::steady_clock::now();
      benchmark::DoNotOptimize(ReadPass());
      double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      best = std::max(best, kProbeBytes / seconds);
    }
    return best;
  }();
  return bytes_per_second;
}

void BM_ReadBandwidth(benchmark::State& state) {
  ReadPass();  // allocate and fault in the buffer outside the timing
  for (auto _ : state) benchmark::DoNotOptimize(ReadPass());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(kProbeBytes));
}
BENCHMARK(BM_ReadBandwidth)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_CopyBandwidth(benchmark::State& state) {
  const std::vector<uint64_t>& source = ProbeBuffer();
  std::vector<uint64_t> target(source.size() / 2);
  const int64_t half = static_cast<int64_t>(target.size());
  for (auto _ : state) {
    at::parallel_for(0, half, 1 << 20, [&](int64_t begin, int64_t end) {
      std::memcpy(target.data() + begin, source.data() + begin, (end - begin) * sizeof(uint64_t));
    });
    benchmark::DoNotOptimize(target.data());
  }
  state.SetBytesProcessed(state.iterations() * 2 * half * static_cast<int64_t>(sizeof(uint64_t)));  // read + write
}
BENCHMARK(BM_CopyBandwidth)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Decode(benchmark::State& state) {
  const MambaModel& model = Model();
  const int64_t batch = state.range(0);
  const double bandwidth = MeasuredReadBandwidth();
  auto slots = model.NewState(batch);
  for (int64_t slot = 0; slot < batch; ++slot) model.Prefill(*slots, slot, RandomIds(16, slot), false);
  std::vector<int32_t> tokens = RandomIds(batch, 99);
  for (auto _ : state) benchmark::DoNotOptimize(model.Step(*slots, tokens).data_ptr());
  const double weight_bytes = static_cast<double>(model.WeightBytes());
  state.SetItemsProcessed(state.iterations() * batch);  // tokens
  state.counters["weight_MB"] = weight_bytes / 1e6;
  state.counters["bound_steps_per_s"] = bandwidth / weight_bytes;
  state.counters["of_bound"] = benchmark::Counter(static_cast<double>(state.iterations()) * weight_bytes / bandwidth,
                                                  benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Decode)->Arg(1)->Arg(4)->Arg(8)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Prefill(benchmark::State& state) {
  const MambaModel& model = Model();
  auto slots = model.NewState(1);
  std::vector<int32_t> ids = RandomIds(state.range(0), 5);
  for (auto _ : state) benchmark::DoNotOptimize(model.Prefill(*slots, 0, ids, false).data_ptr());
  state.SetItemsProcessed(state.iterations() * state.range(0));  // tokens
}
BENCHMARK(BM_Prefill)->Arg(128)->Arg(512)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace thalamus::models

int main(int argc, char** argv) {
  const int threads = thalamus::bench::TakeThreadsFlag(&argc, argv);
  thalamus::models::SetComputeThreads(threads);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("cpu_threads", std::to_string(thalamus::kernels::CpuThreads()));
  benchmark::AddCustomContext("cpu_kernel_isa", thalamus::kernels::CpuKernelIsa());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
