// Bad arguments throw c10::Error naming the argument, on every entry point.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>

#include "kernels/kernels.h"
#include "tests/kernels/test_util.h"

namespace thalamus::kernels {
namespace {

using ::testing::HasSubstr;

void ExpectError(const std::function<void()>& call, const std::string& fragment) {
  try {
    call();
    ADD_FAILURE() << "no error; expected one mentioning '" << fragment << "'";
  } catch (const c10::Error& error) {
    EXPECT_THAT(error.what_without_backtrace(), HasSubstr(fragment));
  }
}

class ScanValidation : public ::testing::Test {
 protected:
  testing::ScanInputs in = testing::MakeScanInputs({.batch = 2, .dim = 4, .seqlen = 5, .dstate = 3});

  void ExpectBoth(const testing::ScanInputs& bad, const std::string& fragment) {
    ExpectError([&] { SelectiveScan(bad.u, bad.delta, bad.A, bad.B, bad.C, bad.D, bad.z, bad.delta_bias, true); },
                fragment);
    ExpectError(
        [&] { ReferenceSelectiveScan(bad.u, bad.delta, bad.A, bad.B, bad.C, bad.D, bad.z, bad.delta_bias, true); },
        fragment);
  }
};

TEST_F(ScanValidation, WrongShapesNameTheArgument) {
  auto bad = in;
  bad.u = torch::randn({2, 4});
  ExpectBoth(bad, "u must be (batch, dim, seqlen)");
  bad = in;
  bad.delta = torch::randn({2, 4, 6});
  ExpectBoth(bad, "delta must have shape (batch=2, dim=4, seqlen=5)");
  bad = in;
  bad.B = torch::randn({2, 1, 3, 5});  // grouped B is not supported
  ExpectBoth(bad, "B must have shape (batch=2, dstate=3, seqlen=5)");
  bad = in;
  bad.C = torch::randn({2, 4, 5});
  ExpectBoth(bad, "C must have shape");
  bad = in;
  bad.A = torch::randn({5, 3});
  ExpectBoth(bad, "A must have shape (dim=4, dstate=3)");
  bad = in;
  bad.D = torch::randn({3});
  ExpectBoth(bad, "D must have shape (dim=4)");
  bad = in;
  bad.z = torch::randn({2, 4, 4});
  ExpectBoth(bad, "z must have shape");
  bad = in;
  bad.delta_bias = torch::randn({4, 1});
  ExpectBoth(bad, "delta_bias must have shape");
}

TEST_F(ScanValidation, WrongDtypesAndEmptyState) {
  auto bad = in;
  bad.u = in.u.to(torch::kDouble);
  ExpectBoth(bad, "u must be float32, float16 or bfloat16");
  bad = in;
  bad.B = in.B.to(torch::kInt);
  ExpectBoth(bad, "B must be float32");
  bad = in;
  bad.A = torch::randn({4, 0});
  bad.B = torch::randn({2, 0, 5});
  bad.C = torch::randn({2, 0, 5});
  ExpectBoth(bad, "dstate >= 1");
  bad = in;
  bad.delta = torch::Tensor();
  ExpectBoth(bad, "delta is an undefined tensor");
}

TEST(StateUpdateValidation, WrongShapesAndDtypes) {
  auto state = torch::zeros({2, 4, 3});
  const auto x = torch::randn({2, 4}), dt = torch::rand({2, 4}), A = -torch::rand({4, 3});
  const auto B = torch::randn({2, 3}), C = torch::randn({2, 3});
  const auto none = std::nullopt;
  auto half_state = state.to(torch::kHalf);
  ExpectError([&] { SelectiveStateUpdate(half_state, x, dt, A, B, C, none, none, none, true); },
              "state must be float32");
  auto small_state = torch::zeros({2, 4, 2});
  ExpectError([&] { SelectiveStateUpdate(small_state, x, dt, A, B, C, none, none, none, true); },
              "state must have shape (batch=2, dim=4, dstate=3)");
  ExpectError([&] { SelectiveStateUpdate(state, x, dt.unsqueeze(2), A, B, C, none, none, none, true); },
              "dt must have shape (batch=2, dim=4)");
  ExpectError([&] { SelectiveStateUpdate(state, x, dt, A, B.t(), C, none, none, none, true); },
              "B must have shape (batch=2, dstate=3)");
  ExpectError([&] { ReferenceSelectiveStateUpdate(state, x, dt, A, B, C, torch::ones({5}), none, none, true); },
              "D must have shape (dim=4)");
  ExpectError(
      [&] {
        SelectiveStateUpdate(state, x, dt, A, B, C, none, torch::ones({2, 5}), none, true);
      },
      "z must have shape (batch=2, dim=4)");
}

TEST(ConvValidation, WrongShapes) {
  const auto x = torch::randn({2, 4, 6}), weight = torch::randn({4, 3});
  ExpectError(
      [&] {
        CausalConv1d(x, torch::randn({5, 3}), std::nullopt, false);
      },
      "weight must have shape (dim=4, width=3)");
  ExpectError([&] { ReferenceCausalConv1d(x, weight, torch::randn({3}), false); }, "bias must have shape (dim=4)");
  ExpectError([&] { CausalConv1d(x.select(2, 0), weight, std::nullopt, false); }, "x must be (batch, dim, seqlen)");
  ExpectError([&] { CausalConv1d(x, torch::randn({4, 0}), std::nullopt, false); }, "width >= 1");
  auto short_window = torch::zeros({2, 4, 2});
  ExpectError([&] { CausalConv1dUpdate(x.select(2, 0), short_window, weight, std::nullopt, false); },
              "conv_state must have shape (batch=2, dim=4, width=3)");
  auto half_window = torch::zeros({2, 4, 3}, torch::kHalf);
  ExpectError([&] { CausalConv1dUpdate(x.select(2, 0), half_window, weight, std::nullopt, false); },
              "conv_state must have x's dtype");
}

TEST(DeviceValidation, CudaTensorsWithoutCudaKernels) {
  if (CudaAvailable()) GTEST_SKIP() << "this build has CUDA kernels and a GPU";
  // A meta tensor stands in for a device this build cannot run on.
  const auto x = torch::empty({1, 2, 3}, torch::TensorOptions().device(torch::kMeta));
  const auto w = torch::empty({2, 2}, torch::TensorOptions().device(torch::kMeta));
  ExpectError([&] { CausalConv1d(x, w, std::nullopt, false); }, "unsupported device");
  ExpectError([&] { CausalConv1d(x, torch::randn({2, 2}), std::nullopt, false); }, "weight is on cpu");
}

TEST(Threads, RejectsNonPositiveCount) {
  ExpectError([] { SetCpuThreads(0); }, "n must be >= 1");
}

}  // namespace
}  // namespace thalamus::kernels
