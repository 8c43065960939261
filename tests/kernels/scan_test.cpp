// Optimized CPU selective scan against the plain reference.
#include <gtest/gtest.h>

#include <vector>

#include "kernels/kernels.h"
#include "tests/kernels/test_util.h"

namespace thalamus::kernels {
namespace {

using testing::AllClose;
using testing::Describe;
using testing::MakeScanInputs;
using testing::ScanOptions;
using testing::ToleranceFor;

void ExpectScanMatchesReference(const ScanOptions& options) {
  SCOPED_TRACE(Describe(options));
  const auto in = MakeScanInputs(options);
  const auto fast = SelectiveScan(in.u, in.delta, in.A, in.B, in.C, in.D, in.z, in.delta_bias, in.delta_softplus);
  const auto ref =
      ReferenceSelectiveScan(in.u, in.delta, in.A, in.B, in.C, in.D, in.z, in.delta_bias, in.delta_softplus);
  EXPECT_EQ(fast.y.scalar_type(), options.dtype);
  EXPECT_EQ(fast.last_state.scalar_type(), torch::kFloat);
  EXPECT_TRUE(AllClose(fast.y, ref.y, ToleranceFor(options.dtype)));
  // The state is fp32 in both paths whatever the input dtype.
  EXPECT_TRUE(AllClose(fast.last_state, ref.last_state, ToleranceFor(torch::kFloat)));
}

TEST(SelectiveScanCpu, OddSequenceLengths) {
  for (int64_t seqlen : {1, 3, 63, 64, 65, 127, 1000, 1537}) {
    ExpectScanMatchesReference({.batch = 2, .dim = 19, .seqlen = seqlen, .dstate = 16, .seed = 1});
  }
}

TEST(SelectiveScanCpu, StateSizes) {
  for (int64_t dstate : {1, 2, 7, 16, 64, 255, 256}) {
    ExpectScanMatchesReference({.batch = 1, .dim = 17, .seqlen = 37, .dstate = dstate, .seed = 2});
  }
}

TEST(SelectiveScanCpu, ChannelCountsAroundTheLaneWidth) {
  for (int64_t dim : {1, 15, 16, 17, 33}) {
    ExpectScanMatchesReference({.batch = 3, .dim = dim, .seqlen = 70, .dstate = 4, .seed = 3});
  }
}

TEST(SelectiveScanCpu, EveryOptionalInputCombination) {
  for (int mask = 0; mask < 16; ++mask) {
    ExpectScanMatchesReference({.batch = 2,
                                .dim = 20,
                                .seqlen = 129,
                                .dstate = 8,
                                .has_D = (mask & 1) != 0,
                                .has_z = (mask & 2) != 0,
                                .has_bias = (mask & 4) != 0,
                                .softplus = (mask & 8) != 0,
                                .seed = 4});
  }
}

TEST(SelectiveScanCpu, HalfAndBFloat16Inputs) {
  for (auto dtype : {torch::kHalf, torch::kBFloat16}) {
    ExpectScanMatchesReference({.batch = 2, .dim = 24, .seqlen = 300, .dstate = 16, .dtype = dtype, .seed = 5});
  }
}

TEST(SelectiveScanCpu, LongSequence) {
  ExpectScanMatchesReference({.batch = 1, .dim = 32, .seqlen = 4099, .dstate = 16, .seed = 6});
}

// Decays from exp(-180) (underflow) to 1, and a few growing modes (A > 0):
// exercises the whole range of the vectorized exp, not only exp(-0.5..0).
TEST(SelectiveScanCpu, WideDecayRange) {
  auto in = MakeScanInputs({.batch = 2, .dim = 21, .seqlen = 50, .dstate = 16, .seed = 10});
  in.A = -torch::exp(6.0 * torch::rand({21, 16}) - 2.0);  // -0.14 .. -55
  in.A.select(1, 0).uniform_(0.0, 0.05);
  in.delta = 3.0 * torch::rand({2, 21, 50});
  for (bool softplus : {false, true}) {
    const auto fast = SelectiveScan(in.u, in.delta, in.A, in.B, in.C, in.D, in.z, in.delta_bias, softplus);
    const auto ref = ReferenceSelectiveScan(in.u, in.delta, in.A, in.B, in.C, in.D, in.z, in.delta_bias, softplus);
    EXPECT_TRUE(AllClose(fast.y, ref.y, ToleranceFor(torch::kFloat)));
    EXPECT_TRUE(AllClose(fast.last_state, ref.last_state, ToleranceFor(torch::kFloat)));
  }
}

// Decays within 1e-4 of 1 remember thousands of steps: a biased exp would
// compound here (it did, once).
TEST(SelectiveScanCpu, SlowDecayLongSequence) {
  auto in = MakeScanInputs({.batch = 1, .dim = 18, .seqlen = 3001, .dstate = 8, .seed = 11});
  in.A = -1e-3 * torch::rand({18, 8});
  const auto fast = SelectiveScan(in.u, in.delta, in.A, in.B, in.C, in.D, in.z, in.delta_bias, true);
  const auto ref = ReferenceSelectiveScan(in.u, in.delta, in.A, in.B, in.C, in.D, in.z, in.delta_bias, true);
  EXPECT_TRUE(AllClose(fast.y, ref.y, ToleranceFor(torch::kFloat)));
  EXPECT_TRUE(AllClose(fast.last_state, ref.last_state, ToleranceFor(torch::kFloat)));
}

TEST(SelectiveScanCpu, NonContiguousInputs) {
  auto in = MakeScanInputs({.batch = 2, .dim = 10, .seqlen = 33, .dstate = 5, .seed = 7});
  // Same values, transposed storage: the kernels must honour strides.
  const auto u = in.u.transpose(1, 2).contiguous().transpose(1, 2);
  const auto B = in.B.transpose(1, 2).contiguous().transpose(1, 2);
  ASSERT_FALSE(u.is_contiguous());
  const auto fast = SelectiveScan(u, in.delta, in.A, B, in.C, in.D, in.z, in.delta_bias, true);
  const auto ref = ReferenceSelectiveScan(in.u, in.delta, in.A, in.B, in.C, in.D, in.z, in.delta_bias, true);
  EXPECT_TRUE(AllClose(fast.y, ref.y, ToleranceFor(torch::kFloat)));
}

TEST(SelectiveScanCpu, ResultDoesNotDependOnThreadCount) {
  const auto in = MakeScanInputs({.batch = 2, .dim = 40, .seqlen = 200, .dstate = 16, .seed = 8});
  const int saved = CpuThreads();
  SetCpuThreads(1);
  const auto one = SelectiveScan(in.u, in.delta, in.A, in.B, in.C, in.D, in.z, in.delta_bias, true);
  SetCpuThreads(2);
  const auto two = SelectiveScan(in.u, in.delta, in.A, in.B, in.C, in.D, in.z, in.delta_bias, true);
  SetCpuThreads(saved);
  // Each channel is computed by exactly one task, so the results are bitwise equal.
  EXPECT_TRUE(torch::equal(one.y, two.y));
  EXPECT_TRUE(torch::equal(one.last_state, two.last_state));
}

TEST(SelectiveScanCpu, EmptySequenceGivesZeroState) {
  const auto in = MakeScanInputs({.batch = 1, .dim = 3, .seqlen = 0, .dstate = 4});
  const auto fast = SelectiveScan(in.u, in.delta, in.A, in.B, in.C, in.D, in.z, in.delta_bias, true);
  EXPECT_EQ(fast.y.sizes(), (std::vector<int64_t>{1, 3, 0}));
  EXPECT_TRUE(torch::equal(fast.last_state, torch::zeros({1, 3, 4})));
}

}  // namespace
}  // namespace thalamus::kernels

namespace thalamus::kernels {
namespace {

TEST(TorchOpsSelectiveScan, MatchesReference) {
  for (int mask : {0, 5, 10, 15}) {
    const testing::ScanOptions options{.batch = 2,
                                       .dim = 11,
                                       .seqlen = 45,
                                       .dstate = 6,
                                       .has_D = (mask & 1) != 0,
                                       .has_z = (mask & 2) != 0,
                                       .has_bias = (mask & 4) != 0,
                                       .softplus = (mask & 8) != 0,
                                       .seed = 9};
    SCOPED_TRACE(testing::Describe(options));
    const auto in = testing::MakeScanInputs(options);
    const auto ops =
        TorchOpsSelectiveScan(in.u, in.delta, in.A, in.B, in.C, in.D, in.z, in.delta_bias, in.delta_softplus);
    const auto ref =
        ReferenceSelectiveScan(in.u, in.delta, in.A, in.B, in.C, in.D, in.z, in.delta_bias, in.delta_softplus);
    EXPECT_TRUE(testing::AllClose(ops.y, ref.y, testing::ToleranceFor(torch::kFloat)));
    EXPECT_TRUE(testing::AllClose(ops.last_state, ref.last_state, testing::ToleranceFor(torch::kFloat)));
  }
}

}  // namespace
}  // namespace thalamus::kernels
