// Mamba-130m shapes (random weights) decoding on a CUDA GPU: CUDA-graph
// replay against launching each step's kernels one by one (the baseline),
// beside the device-to-device copy bandwidth measured in the same run.
//
// A decode step reads every weight once, so
//   bound steps/s = copy bandwidth / 2 / weight bytes
// (the copy moves each byte twice: read and write). `of_bound` is the step
// rate over that bound. Each iteration is one model Step for `batch`
// sequences and waits for the GPU; `host_logits` also copies the logits to the
// host, as the expert's sampler does every token.
// Exits with status 2 (and runs nothing) when no CUDA device is usable.
#include <benchmark/benchmark.h>

#include <torch/cuda.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <vector>

#include "bench/models/model_shapes.h"
#include "kernels/kernels.h"
#include "models/mamba.h"

namespace thalamus::models {
namespace {

double CopyBandwidth() {  // bytes read + written per second
  static const double bandwidth = [] {
    const int64_t bytes = int64_t{1} << 31;
    const auto src = torch::rand({bytes / 4}, torch::TensorOptions().device(torch::kCUDA));
    auto dst = torch::empty_like(src);
    for (int i = 0; i < 3; ++i) dst.copy_(src);
    torch::cuda::synchronize();
    const int repeats = 20;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < repeats; ++i) dst.copy_(src);
    torch::cuda::synchronize();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return 2.0 * bytes * repeats / seconds;
  }();
  return bandwidth;
}

void BM_CudaCopyBandwidth(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(CopyBandwidth());
  state.counters["GB_per_s"] = CopyBandwidth() / 1e9;
}
BENCHMARK(BM_CudaCopyBandwidth)->Iterations(1);

MambaModel& Model(torch::ScalarType dtype) {
  static const std::unique_ptr<MambaModel> fp32 = MambaModel::Random(Mamba130m(), 1, torch::kFloat32, torch::kCUDA);
  static const std::unique_ptr<MambaModel> bf16 = MambaModel::Random(Mamba130m(), 1, torch::kBFloat16, torch::kCUDA);
  return dtype == torch::kFloat32 ? *fp32 : *bf16;
}

// Args: batch, graphs (0/1), bf16 (0/1), host_logits (0/1).
void BM_CudaDecode(benchmark::State& state) {
  const int64_t batch = state.range(0);
  const bool graphs = state.range(1) != 0, bf16 = state.range(2) != 0, host_logits = state.range(3) != 0;
  // One model per dtype; the flag is read at each Step, and states are per run.
  MambaModel& model = Model(bf16 ? torch::kBFloat16 : torch::kFloat32);
  model.SetCudaGraphs(graphs);
  auto slots = model.NewState(batch);
  for (int64_t slot = 0; slot < batch; ++slot) model.Prefill(*slots, slot, RandomIds(16, slot), false);
  const std::vector<int32_t> tokens = RandomIds(batch, 99);
  for (int i = 0; i < 3; ++i) model.Step(*slots, tokens);  // warm-up and capture
  torch::cuda::synchronize();
  for (auto _ : state) {
    torch::Tensor logits = model.Step(*slots, tokens);
    if (host_logits) logits = logits.to(torch::kCPU);
    torch::cuda::synchronize();
  }
  const double weight_bytes = static_cast<double>(model.WeightBytes());
  state.SetItemsProcessed(state.iterations() * batch);  // tokens
  state.counters["weight_MB"] = weight_bytes / 1e6;
  state.counters["of_bound"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * weight_bytes / (CopyBandwidth() / 2), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_CudaDecode)
    ->ArgNames({"batch", "graphs", "bf16", "host_logits"})
    ->ArgsProduct({{1, 64}, {0, 1}, {0, 1}, {0}})
    ->Args({1, 1, 0, 1})
    ->Args({64, 1, 0, 1})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

void BM_CudaPrefill(benchmark::State& state) {
  const MambaModel& model = Model(state.range(1) != 0 ? torch::kBFloat16 : torch::kFloat32);
  auto slots = model.NewState(1);
  const std::vector<int32_t> ids = RandomIds(state.range(0), 5);
  model.Prefill(*slots, 0, ids, false);
  torch::cuda::synchronize();
  for (auto _ : state) {
    model.Prefill(*slots, 0, ids, false);
    torch::cuda::synchronize();
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));  // tokens
}
BENCHMARK(BM_CudaPrefill)
    ->ArgNames({"tokens", "bf16"})
    ->ArgsProduct({{512, 2048, 8192}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace thalamus::models

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (!thalamus::kernels::CudaAvailable() || !torch::cuda::is_available()) {
    std::fprintf(stderr, "bench_models_cuda: no CUDA kernels in this build or no GPU visible\n");
    return 2;
  }
  benchmark::AddCustomContext("gpu_copy_GB_per_s", std::to_string(thalamus::models::CopyBandwidth() / 1e9));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
