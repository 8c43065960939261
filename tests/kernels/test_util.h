// Input generators and a tolerance check shared by the kernels tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>

#include <torch/types.h>

namespace thalamus::kernels::testing {

struct Tolerance {
  double rtol;
  double atol;
};

// mamba_ssm's tolerances: fp32 results differ by summation order only; 16-bit
// inputs differ by the final rounding of y.
inline Tolerance ToleranceFor(torch::ScalarType type) {
  if (type == torch::kBFloat16) return {3e-2, 5e-2};
  if (type == torch::kHalf) return {3e-3, 5e-3};
  return {6e-4, 2e-3};
}

// Fails (with the worst element) unless |actual - expected| <= atol + rtol * |expected| everywhere.
inline ::testing::AssertionResult AllClose(const torch::Tensor& actual, const torch::Tensor& expected, Tolerance tol) {
  if (actual.sizes() != expected.sizes()) {
    return ::testing::AssertionFailure() << "shape " << actual.sizes() << " != " << expected.sizes();
  }
  if (actual.numel() == 0) return ::testing::AssertionSuccess();
  const auto a = actual.to(torch::kCPU).to(torch::kFloat), e = expected.to(torch::kCPU).to(torch::kFloat);
  if (!a.isfinite().all().item<bool>()) return ::testing::AssertionFailure() << "non-finite values in result";
  const auto excess = (a - e).abs() - (tol.atol + tol.rtol * e.abs());
  const auto worst = excess.flatten().argmax().item<int64_t>();
  const float worst_excess = excess.flatten()[worst].item<float>();
  if (worst_excess <= 0.0f) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "element " << worst << " (flat) is " << a.flatten()[worst].item<float>()
                                       << ", expected " << e.flatten()[worst].item<float>() << " (rtol " << tol.rtol
                                       << ", atol " << tol.atol << ")";
}

struct ScanInputs {
  torch::Tensor u, delta, A, B, C;
  std::optional<torch::Tensor> D, z, delta_bias;
  bool delta_softplus = false;
};

struct ScanOptions {
  int64_t batch = 2, dim = 8, seqlen = 16, dstate = 16;
  bool has_D = true, has_z = true, has_bias = true, softplus = true;
  torch::ScalarType dtype = torch::kFloat;
  uint64_t seed = 0;
};

// Same distributions as mamba_ssm's test_selective_scan: A negative, delta in
// [0, 0.5) so the state neither explodes nor vanishes instantly.
inline ScanInputs MakeScanInputs(const ScanOptions& o) {
  torch::manual_seed(o.seed);
  const auto f32 = torch::kFloat;
  ScanInputs in;
  in.u = torch::randn({o.batch, o.dim, o.seqlen}, f32).to(o.dtype);
  in.delta = (0.5 * torch::rand({o.batch, o.dim, o.seqlen}, f32)).to(o.dtype);
  in.A = -0.5 * torch::rand({o.dim, o.dstate}, f32);
  in.B = torch::randn({o.batch, o.dstate, o.seqlen}, f32).to(o.dtype);
  in.C = torch::randn({o.batch, o.dstate, o.seqlen}, f32).to(o.dtype);
  if (o.has_D) in.D = torch::randn({o.dim}, f32);
  if (o.has_z) in.z = torch::randn({o.batch, o.dim, o.seqlen}, f32).to(o.dtype);
  if (o.has_bias) in.delta_bias = 0.5 * torch::rand({o.dim}, f32);
  in.delta_softplus = o.softplus;
  return in;
}

inline std::string Describe(const ScanOptions& o) {
  return "batch=" + std::to_string(o.batch) + " dim=" + std::to_string(o.dim) + " seqlen=" + std::to_string(o.seqlen) +
         " dstate=" + std::to_string(o.dstate) + " D=" + std::to_string(o.has_D) + " z=" + std::to_string(o.has_z) +
         " bias=" + std::to_string(o.has_bias) + " softplus=" + std::to_string(o.softplus) +
         " dtype=" + std::string(c10::toString(o.dtype));
}

}  // namespace thalamus::kernels::testing
