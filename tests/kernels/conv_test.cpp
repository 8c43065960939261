// Causal depthwise conv1d: optimized against reference and torch's conv1d, and
// the one-token update against prefill.
#include <gtest/gtest.h>

#include <vector>

#include "kernels/kernels.h"
#include "tests/kernels/test_util.h"

namespace thalamus::kernels {
namespace {

using testing::AllClose;
using testing::ToleranceFor;

// An independent third opinion: torch's grouped conv1d, left-padded and trimmed.
torch::Tensor TorchCausalConv(const torch::Tensor& x, const torch::Tensor& weight,
                              const std::optional<torch::Tensor>& bias, bool silu) {
  const int64_t width = weight.size(1), seqlen = x.size(2);
  auto out = torch::conv1d(x.to(torch::kFloat), weight.unsqueeze(1).to(torch::kFloat),
                           bias ? bias->to(torch::kFloat) : torch::Tensor(), /*stride=*/{1},
                           /*padding=*/{width - 1}, /*dilation=*/{1}, /*groups=*/x.size(1));
  out = out.narrow(2, 0, seqlen);
  return silu ? out * torch::sigmoid(out) : out;
}

TEST(CausalConv1d, MatchesReferenceAndTorch) {
  for (int64_t width : {1, 2, 4, 7}) {
    for (int64_t seqlen : {1, 3, 127, 1030}) {
      for (bool with_bias : {false, true}) {
        for (bool silu : {false, true}) {
          SCOPED_TRACE("width=" + std::to_string(width) + " seqlen=" + std::to_string(seqlen) +
                       " bias=" + std::to_string(with_bias) + " silu=" + std::to_string(silu));
          torch::manual_seed(21);
          const auto x = torch::randn({2, 13, seqlen}), weight = torch::randn({13, width});
          const std::optional<torch::Tensor> bias =
              with_bias ? std::optional<torch::Tensor>(torch::randn({13})) : std::nullopt;
          const auto fast = CausalConv1d(x, weight, bias, silu);
          const auto ref = ReferenceCausalConv1d(x, weight, bias, silu);
          EXPECT_TRUE(AllClose(fast, ref, ToleranceFor(torch::kFloat)));
          EXPECT_TRUE(AllClose(ref, TorchCausalConv(x, weight, bias, silu), ToleranceFor(torch::kFloat)));
        }
      }
    }
  }
}

TEST(CausalConv1d, HalfPrecisionInputs) {
  for (auto dtype : {torch::kHalf, torch::kBFloat16}) {
    torch::manual_seed(22);
    const auto x = torch::randn({1, 40, 99}).to(dtype), weight = torch::randn({40, 4}).to(dtype);
    const auto bias = torch::randn({40});
    const auto fast = CausalConv1d(x, weight, bias, true);
    EXPECT_EQ(fast.scalar_type(), dtype);
    EXPECT_TRUE(AllClose(fast, ReferenceCausalConv1d(x, weight, bias, true), ToleranceFor(dtype)));
  }
}

// Decoding one token at a time from a zero window must reproduce prefill.
TEST(CausalConv1dUpdate, TokenByTokenEqualsPrefill) {
  for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
    for (int64_t width : {1, 4}) {
      torch::manual_seed(23);
      const int64_t batch = 2, dim = 17, seqlen = 30;
      const auto x = torch::randn({batch, dim, seqlen}).to(dtype);
      const auto weight = torch::randn({dim, width}), bias = torch::randn({dim});
      const auto prefill = CausalConv1d(x, weight, bias, true);
      auto conv_state = torch::zeros({batch, dim, width}, dtype);
      std::vector<torch::Tensor> outs;
      for (int64_t t = 0; t < seqlen; ++t)
        outs.push_back(CausalConv1dUpdate(x.select(2, t), conv_state, weight, bias, true));
      EXPECT_TRUE(AllClose(torch::stack(outs, 2), prefill, ToleranceFor(dtype))) << c10::toString(dtype);
      // The window now holds the last `width` inputs.
      EXPECT_TRUE(torch::equal(conv_state, x.narrow(2, seqlen - width, width))) << c10::toString(dtype);
    }
  }
}

TEST(CausalConv1dUpdate, ContinuesFromAPrefilledWindow) {
  torch::manual_seed(24);
  const int64_t batch = 1, dim = 8, seqlen = 12, width = 4, prefix = 9;
  const auto x = torch::randn({batch, dim, seqlen}), weight = torch::randn({dim, width});
  const auto prefill = CausalConv1d(x, weight, std::nullopt, false);
  auto conv_state = x.narrow(2, prefix - width, width).contiguous();
  for (int64_t t = prefix; t < seqlen; ++t) {
    const auto out = CausalConv1dUpdate(x.select(2, t), conv_state, weight, std::nullopt, false);
    EXPECT_TRUE(AllClose(out, prefill.select(2, t), ToleranceFor(torch::kFloat))) << "step " << t;
  }
}

}  // namespace
}  // namespace thalamus::kernels
