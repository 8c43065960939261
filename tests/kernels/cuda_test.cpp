// The public entry points on CUDA tensors against the CPU reference. Skipped
// unless this build dispatches to CUDA and a GPU is visible.
#include <gtest/gtest.h>

#include <vector>

#include "kernels/kernels.h"
#include "tests/kernels/test_util.h"

namespace thalamus::kernels {
namespace {

using testing::AllClose;
using testing::MakeScanInputs;
using testing::ScanOptions;
using testing::ToleranceFor;

std::optional<torch::Tensor> ToCuda(const std::optional<torch::Tensor>& t) {
  return t ? std::optional<torch::Tensor>(t->to(torch::kCUDA)) : std::nullopt;
}

void ExpectCudaScanMatchesReference(const ScanOptions& options) {
  SCOPED_TRACE(testing::Describe(options));
  const auto in = MakeScanInputs(options);
  const auto ref =
      ReferenceSelectiveScan(in.u, in.delta, in.A, in.B, in.C, in.D, in.z, in.delta_bias, in.delta_softplus);
  const auto gpu = SelectiveScan(in.u.cuda(), in.delta.cuda(), in.A.cuda(), in.B.cuda(), in.C.cuda(), ToCuda(in.D),
                                 ToCuda(in.z), ToCuda(in.delta_bias), in.delta_softplus);
  EXPECT_TRUE(gpu.y.is_cuda());
  EXPECT_EQ(gpu.y.scalar_type(), options.dtype);
  EXPECT_TRUE(AllClose(gpu.y, ref.y, ToleranceFor(options.dtype)));
  EXPECT_TRUE(AllClose(gpu.last_state, ref.last_state, ToleranceFor(torch::kFloat)));
}

TEST(CudaKernels, ScanMatchesReference) {
  if (!CudaAvailable()) GTEST_SKIP() << "no CUDA kernels in this build or no GPU";
  for (int64_t seqlen : {1, 3, 127, 256, 257, 1000, 2049}) {
    ExpectCudaScanMatchesReference({.batch = 2, .dim = 9, .seqlen = seqlen, .dstate = 16, .seed = 31});
  }
  for (int64_t dstate : {1, 5, 64, 256}) {
    ExpectCudaScanMatchesReference({.batch = 1, .dim = 4, .seqlen = 300, .dstate = dstate, .seed = 32});
  }
  for (int mask = 0; mask < 16; ++mask) {
    ExpectCudaScanMatchesReference({.batch = 2,
                                    .dim = 5,
                                    .seqlen = 77,
                                    .dstate = 8,
                                    .has_D = (mask & 1) != 0,
                                    .has_z = (mask & 2) != 0,
                                    .has_bias = (mask & 4) != 0,
                                    .softplus = (mask & 8) != 0,
                                    .seed = 33});
  }
  for (auto dtype : {torch::kHalf, torch::kBFloat16}) {
    ExpectCudaScanMatchesReference({.batch = 2, .dim = 8, .seqlen = 500, .dstate = 16, .dtype = dtype, .seed = 34});
  }
}

TEST(CudaKernels, ScanRejectsTooLargeState) {
  if (!CudaAvailable()) GTEST_SKIP() << "no CUDA kernels in this build or no GPU";
  const auto in = MakeScanInputs({.batch = 1, .dim = 2, .seqlen = 4, .dstate = 257});
  EXPECT_THROW(SelectiveScan(in.u.cuda(), in.delta.cuda(), in.A.cuda(), in.B.cuda(), in.C.cuda(), std::nullopt,
                             std::nullopt, std::nullopt, false),
               c10::Error);
}

TEST(CudaKernels, StateUpdateAndConvMatchReference) {
  if (!CudaAvailable()) GTEST_SKIP() << "no CUDA kernels in this build or no GPU";
  torch::manual_seed(35);
  const int64_t batch = 2, dim = 33, dstate = 16, width = 4;
  auto state = torch::randn({batch, dim, dstate});
  auto state_gpu = state.cuda();
  const auto x = torch::randn({batch, dim}), dt = torch::rand({batch, dim}), z = torch::randn({batch, dim});
  const auto A = -torch::rand({dim, dstate}), B = torch::randn({batch, dstate}), C = torch::randn({batch, dstate});
  const auto D = torch::randn({dim}), bias = torch::rand({dim});
  const auto y_ref = ReferenceSelectiveStateUpdate(state, x, dt, A, B, C, D, z, bias, true);
  const auto y = SelectiveStateUpdate(state_gpu, x.cuda(), dt.cuda(), A.cuda(), B.cuda(), C.cuda(), D.cuda(), z.cuda(),
                                      bias.cuda(), true);
  EXPECT_TRUE(AllClose(y, y_ref, ToleranceFor(torch::kFloat)));
  EXPECT_TRUE(AllClose(state_gpu, state, ToleranceFor(torch::kFloat)));

  const auto seq = torch::randn({batch, dim, 100}), weight = torch::randn({dim, width});
  const auto conv_ref = ReferenceCausalConv1d(seq, weight, bias, true);
  EXPECT_TRUE(
      AllClose(CausalConv1d(seq.cuda(), weight.cuda(), bias.cuda(), true), conv_ref, ToleranceFor(torch::kFloat)));
  auto window = torch::zeros({batch, dim, width}, torch::kCUDA);
  std::vector<torch::Tensor> outs;
  for (int64_t t = 0; t < 100; ++t) {
    outs.push_back(CausalConv1dUpdate(seq.select(2, t).cuda(), window, weight.cuda(), bias.cuda(), true));
  }
  EXPECT_TRUE(AllClose(torch::stack(outs, 2), conv_ref, ToleranceFor(torch::kFloat)));
}

}  // namespace
}  // namespace thalamus::kernels
