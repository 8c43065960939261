#include "models/generate.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <numeric>
#include <set>

#include "models/mamba.h"
#include "tests/models/mamba_fixture.h"

namespace thalamus::models {
namespace {

using testing_support::kMambaHfDir;
using testing_support::MambaExpected;
using testing_support::MambaExpectedIds;

class GenerateTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = MambaModel::Load(kMambaHfDir).release();
    tokenizer_ = new Tokenizer(Tokenizer::FromFile(kMambaHfDir + "/tokenizer.json"));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete tokenizer_;
  }

  static GenerationRequest Request(std::vector<int32_t> prompt, int64_t max_tokens, float temperature = 0.0f,
                                   std::optional<uint64_t> seed = std::nullopt) {
    GenerationRequest request;
    request.prompt = std::move(prompt);
    request.sampling.max_tokens = max_tokens;
    request.sampling.temperature = temperature;
    request.sampling.seed = seed;
    return request;
  }
  static GenerationResult RunOne(GenerationRequest request) {
    std::vector<GenerationRequest> requests;
    requests.push_back(std::move(request));
    return Generate(*model_, *tokenizer_, std::move(requests), 1)[0];
  }

  static MambaModel* model_;
  static Tokenizer* tokenizer_;
};

MambaModel* GenerateTest::model_ = nullptr;
Tokenizer* GenerateTest::tokenizer_ = nullptr;

// transformers' generate(do_sample=False) on the same weights.
TEST_F(GenerateTest, GreedyMatchesTransformers) {
  GenerationResult result = RunOne(Request(MambaExpectedIds("greedy_prompt"), 16));
  EXPECT_EQ(result.tokens, MambaExpectedIds("greedy_tokens"));
  EXPECT_EQ(result.finish_reason, FinishReason::kLength);
  EXPECT_EQ(result.prompt_tokens, 11);
  EXPECT_EQ(result.text, tokenizer_->Decode(result.tokens, true));
}

TEST_F(GenerateTest, LogProbabilityIsOfThePlainSoftmax) {
  std::vector<int32_t> prompt = MambaExpectedIds("ids_a");
  prompt.resize(5);
  GenerationResult result = RunOne(Request(prompt, 1));
  ASSERT_EQ(result.tokens.size(), 1u);
  torch::Tensor logits = MambaExpected().Load("logits_a")[4];
  EXPECT_NEAR(result.logprob_sum, torch::log_softmax(logits.to(torch::kFloat64), 0)[result.tokens[0]].item<double>(),
              1e-3);
  EXPECT_LT(result.logprob_sum, 0.0);
}

TEST_F(GenerateTest, StreamedPiecesAddUpToTheText) {
  GenerationRequest request = Request(tokenizer_->Encode("def f(x):\n"), 40, 1.0f, 7);
  std::string streamed;
  int pieces = 0;
  request.on_text = [&](std::string_view piece) {
    streamed += piece;
    ++pieces;
  };
  GenerationResult result = RunOne(std::move(request));
  EXPECT_EQ(streamed, result.text);
  EXPECT_GT(pieces, 5);
  EXPECT_EQ(result.tokens.size(), 40u);
}

TEST_F(GenerateTest, BatchedRequestsMatchSeparateRuns) {
  // Five requests through three slots: some wait, slots are reused and compacted.
  std::vector<std::vector<int32_t>> prompts = {
      {5}, {10, 20, 30, 40, 50, 60, 70}, {300, 301}, {42, 43, 44, 45}, {7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7}};
  std::vector<int64_t> lengths = {12, 3, 20, 7, 15};
  auto make = [&](size_t i) { return Request(prompts[i], lengths[i], i % 2 ? 0.8f : 0.0f, 100 + i); };
  std::vector<GenerationRequest> batch;
  for (size_t i = 0; i < prompts.size(); ++i) batch.push_back(make(i));
  std::vector<GenerationResult> together = Generate(*model_, *tokenizer_, std::move(batch), 3);
  for (size_t i = 0; i < prompts.size(); ++i) {
    GenerationResult alone = RunOne(make(i));
    EXPECT_EQ(together[i].tokens, alone.tokens) << "request " << i;
    EXPECT_EQ(together[i].tokens.size(), static_cast<size_t>(lengths[i]));
  }
}

TEST_F(GenerateTest, SeedsReproduce) {
  GenerationResult a = RunOne(Request({1, 2, 3}, 30, 1.0f, 11));
  GenerationResult b = RunOne(Request({1, 2, 3}, 30, 1.0f, 11));
  GenerationResult c = RunOne(Request({1, 2, 3}, 30, 1.0f, 12));
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_NE(a.tokens, c.tokens);
}

TEST_F(GenerateTest, StopSequenceEndsTheTextBeforeIt) {
  GenerationResult free_run = RunOne(Request(MambaExpectedIds("greedy_prompt"), 16));
  ASSERT_GT(free_run.text.size(), 12u);
  const std::string stop = free_run.text.substr(6, 4);
  GenerationRequest request = Request(MambaExpectedIds("greedy_prompt"), 16);
  request.sampling.stop = {"never appears", stop};
  std::string streamed;
  request.on_text = [&](std::string_view piece) { streamed += piece; };
  GenerationResult result = RunOne(std::move(request));
  EXPECT_EQ(result.finish_reason, FinishReason::kStop);
  EXPECT_EQ(result.text, free_run.text.substr(0, free_run.text.find(stop)));
  EXPECT_EQ(streamed, result.text);  // the partial stop sequence was held back, never shown
}

TEST_F(GenerateTest, StopTokenIsNotPartOfTheOutput) {
  std::vector<int32_t> greedy = MambaExpectedIds("greedy_tokens");
  GenerationRequest request = Request(MambaExpectedIds("greedy_prompt"), 16);
  request.sampling.stop_tokens = {greedy[4]};
  GenerationResult result = RunOne(std::move(request));
  size_t first = std::find(greedy.begin(), greedy.end(), greedy[4]) - greedy.begin();
  EXPECT_EQ(result.finish_reason, FinishReason::kStop);
  EXPECT_EQ(result.tokens, std::vector<int32_t>(greedy.begin(), greedy.begin() + first));
}

TEST_F(GenerateTest, CancellationStopsBetweenTokens) {
  GenerationRequest request = Request({1, 2, 3}, 100);
  int tokens_seen = 0;
  request.on_text = [&](std::string_view) { ++tokens_seen; };
  request.cancelled = [&] { return tokens_seen >= 3; };
  GenerationResult result = RunOne(std::move(request));
  EXPECT_EQ(result.finish_reason, FinishReason::kCancelled);
  EXPECT_LT(result.tokens.size(), 10u);
}

TEST_F(GenerateTest, BadRequestsFinishWithErrors) {
  std::vector<GenerationRequest> requests;
  requests.push_back(Request({}, 5));
  requests.push_back(Request({1, 5000}, 5));
  GenerationRequest bad_top_p = Request({1}, 5, 1.0f);
  bad_top_p.sampling.top_p = 0.0f;
  requests.push_back(std::move(bad_top_p));
  requests.push_back(Request({1, 2}, 4));  // a good one among them
  requests.push_back(Request({1, 2}, 0));
  std::vector<GenerationResult> results = Generate(*model_, *tokenizer_, std::move(requests), 2);
  EXPECT_EQ(results[0].finish_reason, FinishReason::kError);
  EXPECT_NE(results[0].error.find("empty"), std::string::npos);
  EXPECT_EQ(results[1].finish_reason, FinishReason::kError);
  EXPECT_NE(results[1].error.find("5000"), std::string::npos) << results[1].error;
  EXPECT_EQ(results[2].finish_reason, FinishReason::kError);
  EXPECT_NE(results[2].error.find("top_p"), std::string::npos);
  EXPECT_EQ(results[3].finish_reason, FinishReason::kLength);
  EXPECT_EQ(results[3].tokens.size(), 4u);
  EXPECT_EQ(results[4].finish_reason, FinishReason::kLength);
  EXPECT_TRUE(results[4].tokens.empty());
}

TEST_F(GenerateTest, ContextLimitEndsGeneration) {
  Generator generator(*model_, *tokenizer_, 2, /*max_context=*/8);
  Generator::Id fits = generator.Add(Request({1, 2, 3}, 100));
  Generator::Id too_long = generator.Add(Request({1, 2, 3, 4, 5, 6, 7, 8}, 100));
  std::map<Generator::Id, GenerationResult> results;
  while (!generator.idle()) {
    for (auto& [id, result] : generator.Step()) results[id] = std::move(result);
  }
  EXPECT_EQ(results[fits].finish_reason, FinishReason::kLength);
  EXPECT_EQ(results[fits].tokens.size(), 5u);
  EXPECT_EQ(results[too_long].finish_reason, FinishReason::kError);
  EXPECT_NE(results[too_long].error.find("context limit is 8"), std::string::npos);
}

TEST(SamplerTest, GreedyTakesTheFirstLargest) {
  SamplingParams params;
  Sampler sampler(params);
  std::vector<float> logits = {0.5f, 3.0f, NAN, 3.0f, -1.0f};
  EXPECT_EQ(sampler.Sample(logits), 1);
}

TEST(SamplerTest, TemperatureFollowsTheSoftmax) {
  SamplingParams params;
  params.temperature = 1.0f;
  params.seed = 3;
  Sampler sampler(params);
  std::vector<float> logits = {0.0f, std::log(3.0f), -INFINITY};  // probabilities 1/4, 3/4, 0
  int ones = 0, draws = 20000;
  for (int i = 0; i < draws; ++i) {
    int32_t id = sampler.Sample(logits);
    ASSERT_NE(id, 2);
    ones += id == 1;
  }
  EXPECT_NEAR(static_cast<double>(ones) / draws, 0.75, 0.02);
}

TEST(SamplerTest, TopKAndTopPNarrowTheChoice) {
  std::vector<float> logits(1000);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = std::sin(static_cast<float>(i)) * 3.0f;
  std::vector<size_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return logits[a] > logits[b]; });

  SamplingParams top_k;
  top_k.temperature = 2.0f;
  top_k.top_k = 3;
  top_k.seed = 1;
  Sampler k_sampler(top_k);
  std::set<int32_t> seen;
  for (int i = 0; i < 500; ++i) seen.insert(k_sampler.Sample(logits));
  EXPECT_EQ(seen, (std::set<int32_t>{static_cast<int32_t>(order[0]), static_cast<int32_t>(order[1]),
                                     static_cast<int32_t>(order[2])}));

  SamplingParams top_p;
  top_p.temperature = 1.0f;
  top_p.top_p = 1e-6f;  // the nucleus is the single most likely token
  top_p.seed = 1;
  Sampler p_sampler(top_p);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(p_sampler.Sample(logits), static_cast<int32_t>(order[0]));

  // A wide nucleus (beyond the first 256 candidates) still samples only inside it.
  SamplingParams wide;
  wide.temperature = 50.0f;
  wide.top_p = 0.9f;
  wide.seed = 5;
  Sampler wide_sampler(wide);
  std::set<int32_t> wide_seen;
  for (int i = 0; i < 5000; ++i) wide_seen.insert(wide_sampler.Sample(logits));
  EXPECT_GT(wide_seen.size(), 256u);
  EXPECT_LT(wide_seen.size(), 950u);
}

TEST(SamplerTest, RejectsBadParameters) {
  SamplingParams params;
  params.temperature = -1.0f;
  EXPECT_THROW(Sampler{params}, std::invalid_argument);
  params = {};
  params.top_k = -2;
  EXPECT_THROW(Sampler{params}, std::invalid_argument);
  params = {};
  params.top_p = 1.5f;
  EXPECT_THROW(Sampler{params}, std::invalid_argument);
  params = {};
  params.stop = {""};
  EXPECT_THROW(Sampler{params}, std::invalid_argument);
}

}  // namespace
}  // namespace thalamus::models
