#include "models/batcher.h"

#include <gtest/gtest.h>

#include <thread>

#include "models/mamba.h"

namespace thalamus::models {
namespace {

const std::string kModelDir = std::string(THALAMUS_TEST_DATA_DIR) + "/models/mamba-tiny-hf";

GenerationRequest Greedy(std::vector<int32_t> prompt, int64_t max_tokens) {
  GenerationRequest request;
  request.prompt = std::move(prompt);
  request.sampling.max_tokens = max_tokens;
  return request;
}

TEST(BatcherTest, ConcurrentSubmitsShareStepsAndMatchSeparateRuns) {
  auto model = MambaModel::Load(kModelDir);
  Tokenizer tokenizer = Tokenizer::FromFile(kModelDir + "/tokenizer.json");
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 6; ++i) prompts.push_back(std::vector<int32_t>(1 + i * 3, 10 + i));
  std::vector<GenerationResult> results(prompts.size());
  {
    Batcher batcher(*model, tokenizer, /*max_batch=*/4);
    std::vector<std::thread> clients;
    for (size_t i = 0; i < prompts.size(); ++i) {
      clients.emplace_back([&, i] { results[i] = batcher.Submit(Greedy(prompts[i], 10 + i)).get(); });
    }
    for (std::thread& client : clients) client.join();
    EXPECT_EQ(batcher.pending(), 0u);
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::vector<GenerationRequest> alone;
    alone.push_back(Greedy(prompts[i], 10 + i));
    EXPECT_EQ(results[i].tokens, Generate(*model, tokenizer, std::move(alone), 1)[0].tokens) << i;
    EXPECT_EQ(results[i].finish_reason, FinishReason::kLength);
  }
}

TEST(BatcherTest, ShutdownFinishesWhatIsLeft) {
  auto model = MambaModel::Load(kModelDir);
  Tokenizer tokenizer = Tokenizer::FromFile(kModelDir + "/tokenizer.json");
  std::future<GenerationResult> endless;
  {
    Batcher batcher(*model, tokenizer, 2);
    GenerationRequest request = Greedy({1, 2, 3}, 1 << 30);
    std::promise<void> started;
    bool signalled = false;
    request.on_text = [&](std::string_view) {
      if (!signalled) started.set_value(), signalled = true;
    };
    endless = batcher.Submit(std::move(request));
    started.get_future().wait();
  }
  GenerationResult result = endless.get();
  EXPECT_EQ(result.finish_reason, FinishReason::kError);
  EXPECT_EQ(result.error, "shutting down");
}

}  // namespace
}  // namespace thalamus::models
