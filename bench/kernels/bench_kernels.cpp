// Mamba-130m shapes (d_inner 1536, d_state 16, d_conv 4, batch 1) on the CPU:
// each optimized kernel beside its baseline in the same run.
//   Reference*     : naive scalar loops over TensorAccessors, one thread.
//   TorchOps*      : a per-time-step loop of torch ops (ATen's own vectorized,
//                    threaded kernels), the way the scan is written in PyTorch.
// Threads: --threads=N (default 2) sets ATen's pool for every benchmark.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include "bench/threads_flag.h"
#include "kernels/kernels.h"

namespace thalamus::kernels {
namespace {

constexpr int64_t kDim = 1536, kState = 16, kConvWidth = 4, kBatch = 1;

struct Inputs {
  torch::Tensor u, delta, A, B, C, D, z, delta_bias;
};

Inputs MakeInputs(int64_t seqlen) {
  torch::manual_seed(0);
  Inputs in;
  in.u = torch::randn({kBatch, kDim, seqlen});
  in.delta = 0.5 * torch::rand({kBatch, kDim, seqlen});
  in.A = -torch::arange(1, kState + 1, torch::kFloat).repeat({kDim, 1});  // mamba's S4D-real init
  in.B = torch::randn({kBatch, kState, seqlen});
  in.C = torch::randn({kBatch, kState, seqlen});
  in.D = torch::ones({kDim});
  in.z = torch::randn({kBatch, kDim, seqlen});
  in.delta_bias = torch::rand({kDim}) - 4.0;
  return in;
}

template <typename Scan>
void RunScan(benchmark::State& state, Scan scan) {
  const int64_t seqlen = state.range(0);
  const auto in = MakeInputs(seqlen);
  for (auto _ : state) {
    auto result = scan(in.u, in.delta, in.A, in.B, in.C, in.D, in.z, in.delta_bias, true);
    benchmark::DoNotOptimize(result.y.data_ptr());
  }
  state.SetItemsProcessed(state.iterations() * kBatch * seqlen);  // tokens
  state.counters["threads"] = CpuThreads();
}

void BM_ScanOptimized(benchmark::State& state) { RunScan(state, SelectiveScan); }
void BM_ScanReference(benchmark::State& state) { RunScan(state, ReferenceSelectiveScan); }
void BM_ScanTorchOps(benchmark::State& state) { RunScan(state, TorchOpsSelectiveScan); }
BENCHMARK(BM_ScanOptimized)->Arg(128)->Arg(512)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ScanReference)->Arg(128)->Arg(512)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ScanTorchOps)->Arg(128)->Arg(512)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();

template <typename Update>
void RunStateUpdate(benchmark::State& state, Update update) {
  const auto in = MakeInputs(1);
  auto ssm_state = torch::zeros({kBatch, kDim, kState});
  const auto x = in.u.select(2, 0), dt = in.delta.select(2, 0), z = in.z.select(2, 0);
  const auto B = in.B.select(2, 0), C = in.C.select(2, 0);
  for (auto _ : state) {
    auto y = update(ssm_state, x, dt, in.A, B, C, in.D, z, in.delta_bias, true);
    benchmark::DoNotOptimize(y.data_ptr());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);  // tokens
}

void BM_StateUpdateOptimized(benchmark::State& state) { RunStateUpdate(state, SelectiveStateUpdate); }
void BM_StateUpdateReference(benchmark::State& state) { RunStateUpdate(state, ReferenceSelectiveStateUpdate); }
BENCHMARK(BM_StateUpdateOptimized)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_StateUpdateReference)->Unit(benchmark::kMicrosecond)->UseRealTime();

template <typename Conv>
void RunConv(benchmark::State& state, Conv conv) {
  const int64_t seqlen = state.range(0);
  torch::manual_seed(0);
  const auto x = torch::randn({kBatch, kDim, seqlen}), weight = torch::randn({kDim, kConvWidth});
  const auto bias = torch::randn({kDim});
  for (auto _ : state) {
    auto out = conv(x, weight, bias, true);
    benchmark::DoNotOptimize(out.data_ptr());
  }
  state.SetItemsProcessed(state.iterations() * kBatch * seqlen);
}

void BM_ConvOptimized(benchmark::State& state) { RunConv(state, CausalConv1d); }
void BM_ConvReference(benchmark::State& state) { RunConv(state, ReferenceCausalConv1d); }
BENCHMARK(BM_ConvOptimized)->Arg(2048)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_ConvReference)->Arg(2048)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
}  // namespace thalamus::kernels

int main(int argc, char** argv) {
  const int threads = thalamus::bench::TakeThreadsFlag(&argc, argv);
  thalamus::kernels::SetCpuThreads(threads);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("cpu_kernel_isa", thalamus::kernels::CpuKernelIsa());
  benchmark::AddCustomContext("cpu_threads", std::to_string(thalamus::kernels::CpuThreads()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
