// The Mamba model on CUDA against the same model on CPU and against the
// transformers fixtures, eager and CUDA-graph decode. Skipped unless this
// build dispatches the kernels to CUDA and a GPU is visible.
#include <gtest/gtest.h>

#include <torch/cuda.h>

#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "models/generate.h"
#include "models/mamba.h"
#include "tests/models/mamba_fixture.h"

namespace thalamus::models {
namespace {

using testing_support::kMambaHfDir;
using testing_support::MambaExpected;
using testing_support::MambaExpectedIds;

bool CudaUsable() { return kernels::CudaAvailable() && torch::cuda::is_available(); }

#define SKIP_WITHOUT_CUDA() \
  if (!CudaUsable()) GTEST_SKIP() << "no CUDA kernels in this build or no GPU"

std::vector<int32_t> RandomIds(int64_t count, int64_t vocab, uint64_t seed) {
  torch::manual_seed(seed);
  torch::Tensor ids = torch::randint(vocab, {count}, torch::kInt32);
  return std::vector<int32_t>(ids.data_ptr<int32_t>(), ids.data_ptr<int32_t>() + count);
}

void ExpectClose(const torch::Tensor& actual, const torch::Tensor& expected, double rtol, double atol,
                 const std::string& what) {
  ASSERT_TRUE(actual.defined()) << what;
  const torch::Tensor a = actual.to(torch::kCPU, torch::kFloat32), e = expected.to(torch::kCPU, torch::kFloat32);
  ASSERT_EQ(a.sizes(), e.sizes()) << what;
  EXPECT_TRUE(torch::allclose(a, e, rtol, atol))
      << what << ": max abs difference " << (a - e).abs().max().item<float>();
}

// bf16 keeps ~3 significant digits per operation, and the devices round
// different intermediates: compare relative error norms, as mamba_test does.
void ExpectRelativelyClose(const torch::Tensor& actual, const torch::Tensor& expected, double max_relative,
                           const std::string& what) {
  const torch::Tensor a = actual.to(torch::kCPU, torch::kFloat32), e = expected.to(torch::kCPU, torch::kFloat32);
  ASSERT_EQ(a.sizes(), e.sizes()) << what;
  const double relative = ((a - e).norm() / e.norm()).item<double>();
  EXPECT_LT(relative, max_relative) << what;
}

// A model big enough for the long-sequence scan path (> 256 steps) and
// several warps per channel row, small enough to run on the CPU in a second.
MambaConfig SmallConfig() {
  MambaConfig c;
  c.d_model = 128;
  c.n_layer = 3;
  c.vocab_size = 1000;
  c.d_inner = 256;
  c.dt_rank = 8;
  return c;
}

TEST(MambaCudaTest, FixtureLogitsMatchTransformers) {
  SKIP_WITHOUT_CUDA();
  std::unique_ptr<MambaModel> model = MambaModel::Load(kMambaHfDir, torch::kFloat32, torch::kCUDA);
  for (const char* which : {"a", "b"}) {
    std::vector<int32_t> ids = MambaExpectedIds(std::string("ids_") + which);
    auto state = model->NewState(1);
    torch::Tensor logits = model->Prefill(*state, 0, ids, true);
    EXPECT_TRUE(logits.is_cuda());
    ExpectClose(logits, MambaExpected().Load(std::string("logits_") + which), 6e-4, 2e-3, which);
  }
}

// Step by step through the graph path: the warm-up step, the captured step and replays.
TEST(MambaCudaTest, GraphDecodeMatchesTransformers) {
  SKIP_WITHOUT_CUDA();
  std::unique_ptr<MambaModel> model = MambaModel::Load(kMambaHfDir, torch::kFloat32, torch::kCUDA);
  std::vector<int32_t> ids = MambaExpectedIds("ids_a");
  torch::Tensor expected = MambaExpected().Load("logits_a");
  for (size_t prompt : {size_t{1}, size_t{3}, size_t{7}}) {
    auto state = model->NewState(1);
    ExpectClose(model->Prefill(*state, 0, std::span(ids).first(prompt), false), expected.narrow(0, prompt - 1, 1), 6e-4,
                2e-3, "prefill");
    for (size_t t = prompt; t < ids.size(); ++t) {
      ExpectClose(model->Step(*state, std::span(ids).subspan(t, 1)), expected.narrow(0, t, 1), 6e-4, 2e-3,
                  "step " + std::to_string(t));
    }
  }
}

TEST(MambaCudaTest, LongPromptAndBatchedStepsMatchCpu) {
  SKIP_WITHOUT_CUDA();
  for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    SCOPED_TRACE(c10::toString(dtype));
    auto expect_close = [&](const torch::Tensor& actual, const torch::Tensor& expected, const std::string& what) {
      if (dtype == torch::kFloat32) {
        ExpectClose(actual, expected, 6e-4, 2e-3, what);
      } else {
        ExpectRelativelyClose(actual, expected, 0.03, what);
      }
    };
    auto cpu = MambaModel::Random(SmallConfig(), 7, dtype);
    auto gpu = MambaModel::Random(SmallConfig(), 7, dtype, torch::kCUDA);
    auto cpu_state = cpu->NewState(3), gpu_state = gpu->NewState(3);
    for (int64_t slot = 0; slot < 3; ++slot) {
      const std::vector<int32_t> prompt = RandomIds(slot == 0 ? 1000 : 17 + slot, 1000, slot);
      expect_close(gpu->Prefill(*gpu_state, slot, prompt, slot == 0), cpu->Prefill(*cpu_state, slot, prompt, slot == 0),
                   "prefill slot " + std::to_string(slot));
    }
    for (int step = 0; step < 12; ++step) {
      const std::vector<int32_t> tokens = RandomIds(3, 1000, 100 + step);
      expect_close(gpu->Step(*gpu_state, tokens), cpu->Step(*cpu_state, tokens), "step " + std::to_string(step));
    }
  }
}

// Graph replay must compute exactly what launching the kernels one by one
// does, for every batch size, as sequences join and leave (CopySlot).
TEST(MambaCudaTest, GraphStepsEqualEagerSteps) {
  SKIP_WITHOUT_CUDA();
  auto graphed = MambaModel::Random(SmallConfig(), 11, torch::kFloat32, torch::kCUDA);
  auto eager = MambaModel::Random(SmallConfig(), 11, torch::kFloat32, torch::kCUDA);
  eager->SetCudaGraphs(false);
  auto graphed_state = graphed->NewState(4), eager_state = eager->NewState(4);
  for (int64_t slot = 0; slot < 4; ++slot) {
    const std::vector<int32_t> prompt = RandomIds(5 + 3 * slot, 1000, slot);
    graphed->Prefill(*graphed_state, slot, prompt, false);
    eager->Prefill(*eager_state, slot, prompt, false);
  }
  const std::vector<int64_t> batch_sizes = {4, 4, 4, 3, 3, 3, 3, 1, 1, 1, 2, 2, 2, 4, 4};
  for (size_t i = 0; i < batch_sizes.size(); ++i) {
    if (i == 3 || i == 10) {  // a sequence leaves: the last live slot moves into its place
      graphed->CopySlot(*graphed_state, 3, 1);
      eager->CopySlot(*eager_state, 3, 1);
    }
    const std::vector<int32_t> tokens = RandomIds(batch_sizes[i], 1000, 200 + i);
    ExpectClose(graphed->Step(*graphed_state, tokens), eager->Step(*eager_state, tokens), 1e-4, 1e-4,
                "step " + std::to_string(i) + " batch " + std::to_string(batch_sizes[i]));
  }
}

TEST(MambaCudaTest, GreedyGenerationMatchesTransformers) {
  SKIP_WITHOUT_CUDA();
  std::unique_ptr<MambaModel> model = MambaModel::Load(kMambaHfDir, torch::kFloat32, torch::kCUDA);
  const Tokenizer tokenizer = Tokenizer::FromFile(kMambaHfDir + "/tokenizer.json");
  std::vector<GenerationRequest> requests(3);
  for (auto& request : requests) {
    request.prompt = MambaExpectedIds("greedy_prompt");
    request.sampling.max_tokens = 16;
  }
  requests[1].sampling.max_tokens = 5;  // leaves early: the batch shrinks from 3 to 2 mid-generation
  const auto results = Generate(*model, tokenizer, std::move(requests), 3);
  const std::vector<int32_t> expected = MambaExpectedIds("greedy_tokens");
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].tokens, expected);
  EXPECT_EQ(results[1].tokens, std::vector<int32_t>(expected.begin(), expected.begin() + 5));
  EXPECT_EQ(results[2].tokens, expected);
}

TEST(MambaCudaTest, RejectsIdsOutsideTheVocabularyBeforeLaunching) {
  SKIP_WITHOUT_CUDA();
  auto model = MambaModel::Random(SmallConfig(), 1, torch::kFloat32, torch::kCUDA);
  auto state = model->NewState(2);
  model->Prefill(*state, 0, std::vector<int32_t>{1, 2}, false);
  const std::vector<int32_t> bad = {5, 1000};
  for (int attempt = 0; attempt < 3; ++attempt) {  // eager warm-up, capture and replay paths all check first
    EXPECT_THROW(model->Step(*state, bad), std::invalid_argument);
    model->Step(*state, std::vector<int32_t>{5, 6});
  }
}

TEST(MambaCudaTest, DeviceNamesBeyondTheVisibleGpusAreRejected) {
  SKIP_WITHOUT_CUDA();
  EXPECT_EQ(DeviceFromName("cuda").type(), torch::kCUDA);
  EXPECT_THROW(DeviceFromName("cuda:" + std::to_string(torch::cuda::device_count())), std::invalid_argument);
}

}  // namespace
}  // namespace thalamus::models
