// Selective state update: optimized against reference, and token-by-token
// decoding against the prefill scan.
#include <gtest/gtest.h>

#include "kernels/kernels.h"
#include "tests/kernels/test_util.h"

namespace thalamus::kernels {
namespace {

using testing::AllClose;
using testing::Describe;
using testing::MakeScanInputs;
using testing::ScanOptions;
using testing::ToleranceFor;

std::optional<torch::Tensor> Step(const std::optional<torch::Tensor>& t, int64_t step) {
  if (!t) return std::nullopt;
  return t->select(2, step);
}

// Feeds the scan inputs one time step at a time through SelectiveStateUpdate.
ScanResult DecodeTokenByToken(const testing::ScanInputs& in, bool use_reference) {
  const int64_t batch = in.u.size(0), dim = in.u.size(1), seqlen = in.u.size(2);
  torch::Tensor state = torch::zeros({batch, dim, in.A.size(1)});
  std::vector<torch::Tensor> ys;
  for (int64_t t = 0; t < seqlen; ++t) {
    const auto x = in.u.select(2, t), dt = in.delta.select(2, t);
    const auto B = in.B.select(2, t), C = in.C.select(2, t);
    ys.push_back(use_reference ? ReferenceSelectiveStateUpdate(state, x, dt, in.A, B, C, in.D, Step(in.z, t),
                                                               in.delta_bias, in.delta_softplus)
                               : SelectiveStateUpdate(state, x, dt, in.A, B, C, in.D, Step(in.z, t), in.delta_bias,
                                                      in.delta_softplus));
  }
  return {torch::stack(ys, 2), state};
}

void ExpectDecodeMatchesScan(const ScanOptions& options) {
  SCOPED_TRACE(Describe(options));
  const auto in = MakeScanInputs(options);
  const auto scan =
      ReferenceSelectiveScan(in.u, in.delta, in.A, in.B, in.C, in.D, in.z, in.delta_bias, in.delta_softplus);
  for (bool use_reference : {false, true}) {
    SCOPED_TRACE(use_reference ? "reference state update" : "optimized state update");
    const auto decoded = DecodeTokenByToken(in, use_reference);
    EXPECT_EQ(decoded.y.scalar_type(), options.dtype);
    EXPECT_TRUE(AllClose(decoded.y, scan.y, ToleranceFor(options.dtype)));
    EXPECT_TRUE(AllClose(decoded.last_state, scan.last_state, ToleranceFor(torch::kFloat)));
  }
}

TEST(SelectiveStateUpdate, TokenByTokenEqualsScan) {
  ExpectDecodeMatchesScan({.batch = 2, .dim = 19, .seqlen = 40, .dstate = 16, .seed = 11});
}

TEST(SelectiveStateUpdate, TokenByTokenEqualsScanForEveryOption) {
  for (int mask = 0; mask < 16; ++mask) {
    ExpectDecodeMatchesScan({.batch = 1,
                             .dim = 9,
                             .seqlen = 7,
                             .dstate = 5,
                             .has_D = (mask & 1) != 0,
                             .has_z = (mask & 2) != 0,
                             .has_bias = (mask & 4) != 0,
                             .softplus = (mask & 8) != 0,
                             .seed = 12});
  }
}

TEST(SelectiveStateUpdate, TokenByTokenEqualsScanInHalfPrecision) {
  for (auto dtype : {torch::kHalf, torch::kBFloat16}) {
    ExpectDecodeMatchesScan({.batch = 2, .dim = 12, .seqlen = 25, .dstate = 16, .dtype = dtype, .seed = 13});
  }
}

TEST(SelectiveStateUpdate, LargeStateMatchesReference) {
  for (int64_t dstate : {1, 3, 64, 256}) {
    torch::manual_seed(14);
    const int64_t batch = 3, dim = 70;
    auto state = torch::randn({batch, dim, dstate});
    auto state_ref = state.clone();
    const auto x = torch::randn({batch, dim}), dt = torch::rand({batch, dim}), z = torch::randn({batch, dim});
    const auto A = -torch::rand({dim, dstate}), B = torch::randn({batch, dstate}), C = torch::randn({batch, dstate});
    const auto D = torch::randn({dim}), bias = torch::rand({dim});
    const auto y = SelectiveStateUpdate(state, x, dt, A, B, C, D, z, bias, true);
    const auto y_ref = ReferenceSelectiveStateUpdate(state_ref, x, dt, A, B, C, D, z, bias, true);
    EXPECT_TRUE(AllClose(y, y_ref, ToleranceFor(torch::kFloat))) << "dstate " << dstate;
    EXPECT_TRUE(AllClose(state, state_ref, ToleranceFor(torch::kFloat))) << "dstate " << dstate;
  }
}

TEST(SelectiveStateUpdate, UpdatesNonContiguousStateInPlace) {
  torch::manual_seed(15);
  const int64_t batch = 2, dim = 6, dstate = 4;
  // A (batch, dstate, dim) buffer viewed as (batch, dim, dstate): strided, not contiguous.
  auto storage = torch::randn({batch, dstate, dim});
  auto state = storage.transpose(1, 2);
  auto expected_state = state.contiguous();
  const auto x = torch::randn({batch, dim}), dt = torch::rand({batch, dim});
  const auto A = -torch::rand({dim, dstate}), B = torch::randn({batch, dstate}), C = torch::randn({batch, dstate});
  const auto y = SelectiveStateUpdate(state, x, dt, A, B, C, std::nullopt, std::nullopt, std::nullopt, false);
  const auto y_ref =
      ReferenceSelectiveStateUpdate(expected_state, x, dt, A, B, C, std::nullopt, std::nullopt, std::nullopt, false);
  EXPECT_TRUE(AllClose(y, y_ref, ToleranceFor(torch::kFloat)));
  // The caller's storage itself changed.
  EXPECT_TRUE(AllClose(storage.transpose(1, 2), expected_state, ToleranceFor(torch::kFloat)));
}

}  // namespace
}  // namespace thalamus::kernels
