// Prefill and decode cost against context length: GPT-NeoX with a KV cache
// (pythia-160m shapes) beside Mamba-1 (mamba-130m shapes), random fp32
// weights, on the CPU, in the same run.
//
// Attention's prefill grows with the square of the context and each decoded
// token reads the whole KV cache, so its cost per token grows with the
// context; Mamba's prefill is linear and its decode step constant. Each run
// prefills `context` tokens with both models (*_prefill_ms: the best of a few
// prefills at short contexts), then decodes tokens one at a time after that
// prefill (*_decode_ms: the median step). The benchmark's time is GPT-NeoX's
// decode step; the *_neox_over_mamba counters are the ratios (> 1: Mamba is
// cheaper). Positions past pythia's trained 2048 are run with random weights
// purely to measure cost.
// Threads: --threads=N (default 2).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench/models/model_shapes.h"
#include "models/causal_lm.h"
#include "models/gpt_neox.h"
#include "models/mamba.h"

namespace thalamus::models {
namespace {

constexpr int64_t kLongestContext = 8192;

GptNeoxConfig Pythia160m() {
  GptNeoxConfig c;
  c.hidden_size = 768;
  c.num_layers = 12;
  c.num_heads = 12;
  c.intermediate_size = 3072;
  c.vocab_size = 50304;
  c.rotary_pct = 0.25;
  c.max_position_embeddings = kLongestContext + 64;  // room for the decoded tokens
  return c;
}

const GptNeoxModel& Neox() {
  static const std::unique_ptr<GptNeoxModel> model = GptNeoxModel::Random(Pythia160m(), 1);
  return *model;
}

const MambaModel& Mamba() {
  static const std::unique_ptr<MambaModel> model = MambaModel::Random(Mamba130m(), 1);
  return *model;
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

double Median(std::vector<double> values) {
  std::nth_element(values.begin(), values.begin() + values.size() / 2, values.end());
  return values[values.size() / 2];
}

// One model's timings at one context: the best prefill (the least disturbed by
// other load) and the median time of single decode steps after it.
struct Timings {
  double prefill = 1e30;
  std::vector<double> steps;
};

// Arg: context length. Both models run in the same iteration, interleaved
// (prefill A, prefill B, then alternating decode steps), so a change in the
// machine's load hits both alike.
void BM_ContextScaling(benchmark::State& bench) {
  const int64_t context = bench.range(0);
  const CausalLM* models[2] = {&Neox(), &Mamba()};
  std::mt19937 random(7);
  std::uniform_int_distribution<int32_t> token(0, 50000);
  std::vector<int32_t> prompt(context);
  for (int32_t& id : prompt) id = token(random);
  // Fewer repetitions where one prefill takes many seconds: the sweep stays within minutes.
  const int prefills = context <= 512 ? 3 : context <= 2048 ? 2 : 1;
  const int decoded = context <= 2048 ? 32 : 16;

  for (auto _ : bench) {
    Timings timings[2];
    std::unique_ptr<CausalLM::State> states[2] = {models[0]->NewState(1), models[1]->NewState(1)};
    for (int i = 0; i < prefills; ++i) {
      for (int m = 0; m < 2; ++m) {
        auto start = std::chrono::steady_clock::now();
        benchmark::DoNotOptimize(models[m]->Prefill(*states[m], 0, prompt, false));
        timings[m].prefill = std::min(timings[m].prefill, Seconds(start));
      }
    }
    for (int m = 0; m < 2; ++m)
      models[m]->Step(*states[m], std::vector<int32_t>{token(random)});  // warm; grows the cache
    for (int i = 0; i < decoded; ++i) {
      for (int m = 0; m < 2; ++m) {
        const std::vector<int32_t> next = {token(random)};
        auto start = std::chrono::steady_clock::now();
        benchmark::DoNotOptimize(models[m]->Step(*states[m], next));
        timings[m].steps.push_back(Seconds(start));
      }
    }
    const double neox_step = Median(timings[0].steps), mamba_step = Median(timings[1].steps);
    bench.SetIterationTime(neox_step);
    bench.counters["neox_prefill_ms"] = timings[0].prefill * 1e3;
    bench.counters["mamba_prefill_ms"] = timings[1].prefill * 1e3;
    bench.counters["neox_decode_ms"] = neox_step * 1e3;
    bench.counters["mamba_decode_ms"] = mamba_step * 1e3;
    bench.counters["prefill_neox_over_mamba"] = timings[0].prefill / timings[1].prefill;
    bench.counters["decode_neox_over_mamba"] = neox_step / mamba_step;
  }
}
BENCHMARK(BM_ContextScaling)
    ->ArgName("context")
    ->Arg(256)
    ->Arg(512)
    ->Arg(1024)
    ->Arg(2048)
    ->Arg(4096)
    ->Arg(kLongestContext)
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace thalamus::models

int main(int argc, char** argv) {
  int threads = 2;
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0) {
      threads = std::atoi(argv[i] + 10);
    } else {
      rest.push_back(argv[i]);
    }
  }
  thalamus::models::SetComputeThreads(threads);
  int count = static_cast<int>(rest.size());
  benchmark::Initialize(&count, rest.data());
  if (benchmark::ReportUnrecognizedArguments(count, rest.data())) return 1;
  benchmark::AddCustomContext("threads", std::to_string(threads));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
