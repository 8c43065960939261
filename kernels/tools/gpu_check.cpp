// kernels_gpu_check: a self-checking run of the CUDA kernels for machines that
// have a GPU but no GoogleTest or Google Benchmark (see kernels/README.md).
//
//   1. correctness: each CUDA kernel against the CPU reference on random
//      shapes (odd and long sequences, dstate 1..256, fp32/fp16/bf16, every
//      optional input), plus decode-equals-prefill on the device;
//   2. speed: the scan's effective bandwidth beside cudaMemcpy device-to-device
//      (torch's copy_) and beside a per-step torch-op scan, in the same run.
//
// Prints one line per check and ends with "N passed, M failed"; exits 1 on a
// failure, or when no CUDA device is usable (unless --cpu-only).
#include <torch/cuda.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "kernels/kernels.h"

namespace thalamus::kernels {
namespace {

struct Tally {
  int passed = 0, failed = 0;
};

struct Tolerance {
  double rtol, atol;
};

Tolerance ToleranceFor(torch::ScalarType type) {
  if (type == torch::kBFloat16) return {3e-2, 5e-2};
  if (type == torch::kHalf) return {3e-3, 5e-3};
  return {6e-4, 2e-3};
}

// Records one comparison; returns the worst |a - e| / (atol + rtol |e|) so failures say how far off.
void Compare(Tally& tally, const std::string& name, const torch::Tensor& actual, const torch::Tensor& expected,
             Tolerance tol) {
  const auto a = actual.to(torch::kCPU).to(torch::kFloat), e = expected.to(torch::kCPU).to(torch::kFloat);
  bool ok = a.sizes() == e.sizes();
  double ratio = 0.0;
  if (ok && a.numel() > 0) {
    ok = a.isfinite().all().item<bool>();
    ratio = ((a - e).abs() / (tol.atol + tol.rtol * e.abs())).max().item<double>();
    ok = ok && ratio <= 1.0;
  }
  (ok ? tally.passed : tally.failed)++;
  std::printf("%s %-72s worst/tolerance %.3f\n", ok ? "PASS" : "FAIL", name.c_str(), ratio);
}

struct Shape {
  int64_t batch, dim, seqlen, dstate;
};

std::string Name(const char* what, const Shape& s, torch::ScalarType type, int options) {
  char text[160];
  std::snprintf(text, sizeof(text), "%s b=%lld d=%lld l=%lld n=%lld %s opts=%d", what, static_cast<long long>(s.batch),
                static_cast<long long>(s.dim), static_cast<long long>(s.seqlen), static_cast<long long>(s.dstate),
                c10::toString(type), options);
  return text;
}

struct ScanArgs {
  torch::Tensor u, delta, A, B, C;
  std::optional<torch::Tensor> D, z, bias;
  bool softplus;

  ScanArgs To(torch::Device device) const {
    auto move = [&](const std::optional<torch::Tensor>& t) {
      return t ? std::optional<torch::Tensor>(t->to(device)) : std::nullopt;
    };
    return {u.to(device), delta.to(device), A.to(device), B.to(device), C.to(device),
            move(D),      move(z),          move(bias),   softplus};
  }
};

// options bit 0: D, 1: z, 2: delta_bias, 3: softplus.
ScanArgs RandomScan(const Shape& s, torch::ScalarType type, int options) {
  ScanArgs in;
  in.u = torch::randn({s.batch, s.dim, s.seqlen}).to(type);
  in.delta = (0.5 * torch::rand({s.batch, s.dim, s.seqlen})).to(type);
  in.A = -0.5 * torch::rand({s.dim, s.dstate});
  in.B = torch::randn({s.batch, s.dstate, s.seqlen}).to(type);
  in.C = torch::randn({s.batch, s.dstate, s.seqlen}).to(type);
  if (options & 1) in.D = torch::randn({s.dim});
  if (options & 2) in.z = torch::randn({s.batch, s.dim, s.seqlen}).to(type);
  if (options & 4) in.bias = 0.5 * torch::rand({s.dim});
  in.softplus = (options & 8) != 0;
  return in;
}

ScanResult Run(const ScanArgs& a) { return SelectiveScan(a.u, a.delta, a.A, a.B, a.C, a.D, a.z, a.bias, a.softplus); }

void CheckScan(Tally& tally, const Shape& s, torch::ScalarType type, int options, bool on_cuda) {
  const auto cpu = RandomScan(s, type, options);
  const auto expected =
      ReferenceSelectiveScan(cpu.u, cpu.delta, cpu.A, cpu.B, cpu.C, cpu.D, cpu.z, cpu.bias, cpu.softplus);
  const auto actual = on_cuda ? Run(cpu.To(torch::kCUDA)) : Run(cpu);
  const char* where = on_cuda ? "cuda scan y" : "cpu scan y";
  Compare(tally, Name(where, s, type, options), actual.y, expected.y, ToleranceFor(type));
  Compare(tally, Name(on_cuda ? "cuda scan state" : "cpu scan state", s, type, options), actual.last_state,
          expected.last_state, ToleranceFor(torch::kFloat));
}

// Decoding token by token with SelectiveStateUpdate on the device must reproduce the device's scan.
void CheckDecode(Tally& tally, const Shape& s, torch::ScalarType type) {
  const auto in = RandomScan(s, type, 15).To(torch::kCUDA);
  const auto scan = Run(in);
  auto state = torch::zeros({s.batch, s.dim, s.dstate}, in.u.options().dtype(torch::kFloat));
  std::vector<torch::Tensor> ys;
  for (int64_t t = 0; t < s.seqlen; ++t) {
    ys.push_back(SelectiveStateUpdate(state, in.u.select(2, t), in.delta.select(2, t), in.A, in.B.select(2, t),
                                      in.C.select(2, t), in.D, in.z->select(2, t), in.bias, true));
  }
  Compare(tally, Name("cuda decode y == scan y", s, type, 15), torch::stack(ys, 2), scan.y, ToleranceFor(type));
  Compare(tally, Name("cuda decode state == scan state", s, type, 15), state, scan.last_state,
          ToleranceFor(torch::kFloat));
}

void CheckConv(Tally& tally, const Shape& s, int64_t width, torch::ScalarType type) {
  const auto x = torch::randn({s.batch, s.dim, s.seqlen}).to(type);
  const auto weight = torch::randn({s.dim, width}), bias = torch::randn({s.dim});
  const auto expected = ReferenceCausalConv1d(x, weight, bias, true);
  const auto gpu = CausalConv1d(x.to(torch::kCUDA), weight.to(torch::kCUDA), bias.to(torch::kCUDA), true);
  const std::string label = "cuda conv1d w=" + std::to_string(width);
  Compare(tally, Name(label.c_str(), s, type, 0), gpu, expected, ToleranceFor(type));
  auto window = torch::zeros({s.batch, s.dim, width}, x.options().device(torch::kCUDA));
  std::vector<torch::Tensor> outs;
  const auto xg = x.to(torch::kCUDA), wg = weight.to(torch::kCUDA), bg = bias.to(torch::kCUDA);
  for (int64_t t = 0; t < s.seqlen; ++t) outs.push_back(CausalConv1dUpdate(xg.select(2, t), window, wg, bg, true));
  Compare(tally, Name((label + " update == prefill").c_str(), s, type, 0), torch::stack(outs, 2), expected,
          ToleranceFor(type));
}

void CorrectnessChecks(Tally& tally, bool cuda) {
  torch::manual_seed(0);
  const std::vector<Shape> shapes = {{1, 3, 1, 16},     {2, 5, 3, 16},    {1, 7, 127, 1},
                                     {2, 4, 256, 16},   {1, 6, 257, 64},  {2, 9, 1000, 16},
                                     {1, 3, 1025, 256}, {1, 4, 4099, 16}, {1, 2, 16411, 16}};
  for (const auto& s : shapes) {
    for (auto type : {torch::kFloat, torch::kHalf, torch::kBFloat16}) CheckScan(tally, s, type, 15, cuda);
  }
  for (int options = 0; options < 16; ++options) CheckScan(tally, {2, 6, 300, 8}, torch::kFloat, options, cuda);
  if (!cuda) return;
  for (int64_t dstate : {1, 16, 17, 100, 256}) CheckDecode(tally, {2, 37, 20, dstate}, torch::kFloat);
  CheckDecode(tally, {1, 40, 20, 16}, torch::kBFloat16);
  for (int64_t width : {1, 4, 9}) {
    for (auto type : {torch::kFloat, torch::kBFloat16}) CheckConv(tally, {2, 11, 300, 0}, width, type);
  }
  CheckConv(tally, {1, 3, 3, 0}, 4, torch::kFloat);
}

// Mean seconds per call of fn, after a warm-up call, synchronizing the device.
double TimeCuda(const std::function<void()>& fn, int iterations) {
  fn();
  torch::cuda::synchronize();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < iterations; ++i) fn();
  torch::cuda::synchronize();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / iterations;
}

void SpeedReport() {
  std::printf("\nspeed (one device, same run)\n");
  const int64_t copy_bytes = int64_t{1} << 30;
  const auto src = torch::empty({copy_bytes}, torch::dtype(torch::kUInt8).device(torch::kCUDA));
  auto dst = torch::empty_like(src);
  const double copy_s = TimeCuda([&] { dst.copy_(src); }, 20);
  const double copy_bw = 2.0 * copy_bytes / copy_s / 1e9;  // read + write
  std::printf("cudaMemcpy device-to-device (torch copy_ of 1 GiB): %.0f GB/s\n", copy_bw);
  const std::vector<Shape> shapes = {
      {1, 1536, 2048, 16}, {8, 1536, 2048, 16}, {1, 5120, 8192, 16}, {4, 2560, 4096, 16}};
  for (const auto& s : shapes) {
    for (auto type : {torch::kFloat, torch::kBFloat16}) {
      const auto in = RandomScan(s, type, 15).To(torch::kCUDA);
      const double scan_s = TimeCuda([&] { Run(in); }, 100);
      const int64_t element = type == torch::kFloat ? 4 : 2;
      // Compulsory traffic: read u, delta, z, write y; B and C once per batch; A, D, bias; write the state.
      const double bytes = element * (4.0 * s.batch * s.dim * s.seqlen + 2.0 * s.batch * s.dstate * s.seqlen) +
                           4.0 * (s.dim * s.dstate + 2 * s.dim + s.batch * s.dim * s.dstate);
      std::printf("scan %-40s %8.3f ms  %6.0f GB/s  (%.0f%% of memcpy)\n", Name("", s, type, 15).c_str(), scan_s * 1e3,
                  bytes / scan_s / 1e9, 100.0 * bytes / scan_s / 1e9 / copy_bw);
    }
  }
  const Shape s{1, 1536, 2048, 16};
  const auto in = RandomScan(s, torch::kFloat, 15).To(torch::kCUDA);
  const double ops_s =
      TimeCuda([&] { TorchOpsSelectiveScan(in.u, in.delta, in.A, in.B, in.C, in.D, in.z, in.bias, true); }, 3);
  const double scan_s = TimeCuda([&] { Run(in); }, 20);
  std::printf("scan b=1 d=1536 l=2048 n=16 fp32: kernel %.3f ms, torch per-step ops %.1f ms (%.0fx)\n", scan_s * 1e3,
              ops_s * 1e3, ops_s / scan_s);
  auto state = torch::zeros({1, 1536, 16}, in.u.options());
  const auto x = in.u.select(2, 0), dt = in.delta.select(2, 0), B = in.B.select(2, 0), C = in.C.select(2, 0);
  const auto z = in.z->select(2, 0);
  const double step_s = TimeCuda([&] { SelectiveStateUpdate(state, x, dt, in.A, B, C, in.D, z, in.bias, true); }, 200);
  std::printf("state update b=1 d=1536 n=16 fp32: %.1f us per token (launch included)\n", step_s * 1e6);
}

}  // namespace
}  // namespace thalamus::kernels

int main(int argc, char** argv) {
  using namespace thalamus::kernels;
  bool cpu_only = false, speed = true, checks = true;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--cpu-only") == 0) {
      cpu_only = true;
    } else if (std::strcmp(argv[i], "--no-speed") == 0) {
      speed = false;
    } else if (std::strcmp(argv[i], "--no-checks") == 0) {
      checks = false;
    } else {
      std::fprintf(stderr, "usage: %s [--cpu-only] [--no-speed] [--no-checks]\n", argv[0]);
      return 2;
    }
  }
  Tally tally;
  try {
    std::printf("cpu kernels: %s, %d threads\n", CpuKernelIsa(), CpuThreads());
    if (checks) CorrectnessChecks(tally, /*cuda=*/false);
    if (CudaAvailable()) {
      if (checks) CorrectnessChecks(tally, /*cuda=*/true);
      if (speed) SpeedReport();
    } else if (!cpu_only) {
      std::printf("FAIL CUDA unavailable: this build has no CUDA kernels or no GPU is visible\n");
      tally.failed++;
    }
  } catch (const std::exception& error) {
    std::printf("FAIL exception: %s\n", error.what());
    tally.failed++;
  }
  std::printf("%d passed, %d failed\n", tally.passed, tally.failed);
  return tally.failed == 0 ? 0 : 1;
}
