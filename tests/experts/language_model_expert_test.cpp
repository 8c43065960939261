// The language-model expert kinds (experts/language_model_expert.cpp): mamba and
// transformer over the tiny checkpoints of tests/data/models.
#include "experts/language_model_expert.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <optional>
#include <thread>

#include "kernels/kernels.h"
#include "models/generate.h"
#include "models/gpt_neox.h"
#include "models/mamba.h"

namespace thalamus::experts {
namespace {

const std::string kModelDir = std::string(THALAMUS_TEST_DATA_DIR) + "/models/mamba-tiny-hf";

class TestJob : public Job {
 public:
  explicit TestJob(wire::ExpertRequestT request) : request_(std::move(request)) {}
  const wire::ExpertRequestT& request() const override { return request_; }
  bool cancelled() const override { return cancel_after_ >= 0 && pieces_seen_.load() >= cancel_after_; }
  void EmitText(std::string_view text) override {
    std::lock_guard lock(mutex_);
    if (request_.stream) streamed_ += text;
    ++pieces_seen_;
  }
  std::string streamed() const {
    std::lock_guard lock(mutex_);
    return streamed_;
  }
  void CancelAfter(int pieces) { cancel_after_ = pieces; }

 private:
  wire::ExpertRequestT request_;
  mutable std::mutex mutex_;
  std::string streamed_;
  std::atomic<int> pieces_seen_{0};
  std::atomic<int> cancel_after_{-1};
};

config::ExpertConfig MambaConfig() {
  config::ExpertConfig c;
  c.name = "tiny";
  c.kind = config::ExpertKind::kMamba;
  c.model = kModelDir;
  c.max_batch = 4;
  return c;
}

wire::ExpertRequestT Prompt(const std::string& prompt, int max_tokens, float temperature = 0.0f) {
  wire::ExpertRequestT request;
  request.prompt = prompt;
  request.params = std::make_unique<wire::GenerationParamsT>();
  request.params->max_tokens = max_tokens;
  request.params->temperature = temperature;
  return request;
}

std::unique_ptr<wire::ChatMessageT> Message(const std::string& role, const std::string& content) {
  auto message = std::make_unique<wire::ChatMessageT>();
  message->role = role;
  message->content = content;
  return message;
}

// What the models library gives for the same prompt, directly.
models::GenerationResult DirectGreedy(const models::CausalLM& model, std::optional<int32_t> eos, const std::string& dir,
                                      const std::string& prompt, int max_tokens) {
  models::Tokenizer tokenizer = models::Tokenizer::FromFile(dir + "/tokenizer.json");
  std::vector<models::GenerationRequest> requests(1);
  requests[0].prompt = tokenizer.Encode(prompt);
  requests[0].sampling.max_tokens = max_tokens;
  requests[0].sampling.stop_tokens = models::EndOfTextTokens(tokenizer, eos);
  return models::Generate(model, tokenizer, std::move(requests), 1)[0];
}

std::string DirectGreedy(const std::string& prompt, int max_tokens) {
  auto model = models::MambaModel::Load(kModelDir);
  return DirectGreedy(*model, model->config().eos_token_id, kModelDir, prompt, max_tokens).text;
}

TEST(MambaExpertTest, AnswersAndStreams) {
  auto expert = MakeExpert(MambaConfig());
  EXPECT_EQ(expert->Model(), "mamba-tiny-hf");
  wire::ExpertRequestT request = Prompt("def f(x):\n    return", 12);
  request.stream = true;
  TestJob job(std::move(request));
  wire::ExpertReplyT reply = expert->Serve(job);
  ASSERT_EQ(reply.status, wire::StatusCode::OK) << reply.error;
  EXPECT_EQ(reply.text, DirectGreedy("def f(x):\n    return", 12));
  EXPECT_EQ(job.streamed(), reply.text);
  EXPECT_EQ(reply.completion_tokens, 12u);
  EXPECT_EQ(reply.prompt_tokens, 11u);
  EXPECT_EQ(reply.finish_reason, "length");
  EXPECT_GT(reply.confidence, 0.0f);
  EXPECT_LE(reply.confidence, 1.0f);
}

TEST(MambaExpertTest, ConcurrentRequestsAreBatchedAndIndependent) {
  auto expert = MakeExpert(MambaConfig());
  const std::vector<std::string> prompts = {"import os\n", "class A:",  "def g(y):\n    if",
                                            "x = [",       "# comment", "print("};
  std::vector<wire::ExpertReplyT> replies(prompts.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < prompts.size(); ++i) {
    threads.emplace_back([&, i] {
      TestJob job(Prompt(prompts[i], 8));
      replies[i] = expert->Serve(job);
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (size_t i = 0; i < prompts.size(); ++i) {
    ASSERT_EQ(replies[i].status, wire::StatusCode::OK) << replies[i].error;
    EXPECT_EQ(replies[i].text, DirectGreedy(prompts[i], 8)) << prompts[i];
  }
}

TEST(MambaExpertTest, RendersChatsAndContextByTheTemplate) {
  wire::ExpertRequestT request;
  request.messages.push_back(Message("system", "Be brief."));
  request.messages.push_back(Message("user", "Hi"));
  request.messages.push_back(Message("assistant", "Hello."));
  request.messages.push_back(Message("user", "What is 2+2?"));
  auto passage = std::make_unique<wire::PassageT>();
  passage->text = "2+2 is 4.";
  passage->source = "math.txt";
  request.context.push_back(std::move(passage));
  EXPECT_EQ(RenderPrompt(request),
            "Context:\n[1] 2+2 is 4. (source: math.txt)\n\nBe brief.\n\nUser: Hi\nAssistant: Hello.\nUser: What is "
            "2+2?\nAssistant:");
  EXPECT_EQ(RenderPrompt(Prompt("plain", 1)), "plain");

  auto expert = MakeExpert(MambaConfig());
  request.params = std::make_unique<wire::GenerationParamsT>();
  request.params->max_tokens = 30;
  request.params->temperature = 0.0f;
  TestJob job(std::move(request));
  wire::ExpertReplyT reply = expert->Serve(job);
  ASSERT_EQ(reply.status, wire::StatusCode::OK) << reply.error;
  EXPECT_EQ(reply.text.find("\nUser:"), std::string::npos);
}

TEST(MambaExpertTest, CancelledJobsStopEarly) {
  auto expert = MakeExpert(MambaConfig());
  // Seeded: unseeded sampling drew, now and then, a run of tokens that are
  // parts of one UTF-8 character and so stream as fewer pieces than tokens.
  wire::ExpertRequestT request = Prompt("def", 500, 1.0f);
  request.params->seed = 7;
  TestJob job(std::move(request));
  job.CancelAfter(3);
  wire::ExpertReplyT reply = expert->Serve(job);
  EXPECT_EQ(reply.status, wire::StatusCode::CANCELLED);
  EXPECT_LT(reply.completion_tokens, 20u);
}

TEST(MambaExpertTest, BadRequestsAreClientErrors) {
  auto expert = MakeExpert(MambaConfig());
  wire::ExpertRequestT bad_top_p = Prompt("x", 5, 1.0f);
  bad_top_p.params->top_p = 0.0f;
  TestJob top_p_job(std::move(bad_top_p));
  EXPECT_EQ(expert->Serve(top_p_job).status, wire::StatusCode::BAD_REQUEST);

  TestJob utf8_job(Prompt("bad \xFF byte", 5));
  EXPECT_EQ(expert->Serve(utf8_job).status, wire::StatusCode::BAD_REQUEST);

  wire::ExpertRequestT tool;
  tool.messages.push_back(Message("tool", "{}"));
  TestJob role_job(std::move(tool));
  wire::ExpertReplyT reply = expert->Serve(role_job);
  EXPECT_EQ(reply.status, wire::StatusCode::BAD_REQUEST);
  EXPECT_NE(reply.error.find("'tool'"), std::string::npos);
}

TEST(MambaExpertTest, ContextPolicy) {
  config::ExpertConfig strict = MambaConfig();
  strict.max_context = 8;
  TestJob long_job(Prompt("one two three four five six seven eight nine ten", 4));
  wire::ExpertReplyT refused = MakeExpert(strict)->Serve(long_job);
  EXPECT_EQ(refused.status, wire::StatusCode::CONTEXT_TOO_LONG);
  EXPECT_NE(refused.error.find("context limit is 8"), std::string::npos);

  config::ExpertConfig lenient = strict;
  lenient.context_policy = config::ContextPolicy::kTruncateLeft;
  TestJob truncated_job(Prompt("one two three four five six seven eight nine ten", 4));
  wire::ExpertReplyT reply = MakeExpert(lenient)->Serve(truncated_job);
  ASSERT_EQ(reply.status, wire::StatusCode::OK) << reply.error;
  EXPECT_EQ(reply.prompt_tokens, 4u);  // 8 - 4 reserved for the completion
  EXPECT_EQ(reply.completion_tokens, 4u);
}

TEST(MambaExpertTest, MissingWeightsFailAtConstruction) {
  config::ExpertConfig missing = MambaConfig();
  missing.model = "/nonexistent/mamba-130m";
  try {
    MakeExpert(missing);
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("expert 'tiny'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("/nonexistent/mamba-130m"), std::string::npos) << e.what();
  }
  config::ExpertConfig no_model = MambaConfig();
  no_model.model.clear();
  EXPECT_THROW(MakeExpert(no_model), std::runtime_error);
  if (!kernels::CudaAvailable()) {
    config::ExpertConfig cuda = MambaConfig();
    cuda.device = {config::Device::Type::kCuda, -1};
    EXPECT_THROW(MakeExpert(cuda), std::runtime_error);
  }
}

config::ExpertConfig NeoxConfig() {
  config::ExpertConfig c;
  c.name = "neox";
  c.kind = config::ExpertKind::kTransformer;
  c.model = std::string(THALAMUS_TEST_DATA_DIR) + "/models/gpt_neox-tiny-parallel";
  c.max_batch = 2;
  return c;
}

TEST(TransformerExpertTest, AnswersLikeTheModelDirectly) {
  const config::ExpertConfig c = NeoxConfig();
  auto expert = MakeExpert(c);
  EXPECT_EQ(expert->Model(), "gpt_neox-tiny-parallel");
  TestJob job(Prompt("The quick brown fox", 6));
  wire::ExpertReplyT reply = expert->Serve(job);
  ASSERT_EQ(reply.status, wire::StatusCode::OK) << reply.error;

  auto model = models::GptNeoxModel::Load(c.model);
  const models::GenerationResult direct =
      DirectGreedy(*model, model->config().eos_token_id, c.model, "The quick brown fox", 6);
  EXPECT_EQ(reply.text, direct.text);
  EXPECT_EQ(reply.completion_tokens, direct.tokens.size());
}

TEST(TransformerExpertTest, ContextLimitFromConfigAndPolicy) {
  std::string words;
  for (int i = 0; i < 40; ++i) words += "word ";
  config::ExpertConfig strict = NeoxConfig();
  strict.max_context = 16;  // below the checkpoint's 512 positions
  TestJob refused_job(Prompt(words, 4));
  wire::ExpertReplyT refused = MakeExpert(strict)->Serve(refused_job);
  EXPECT_EQ(refused.status, wire::StatusCode::CONTEXT_TOO_LONG);
  EXPECT_NE(refused.error.find("context limit is 16"), std::string::npos) << refused.error;

  config::ExpertConfig lenient = strict;
  lenient.context_policy = config::ContextPolicy::kTruncateLeft;
  TestJob truncated_job(Prompt(words, 4));
  wire::ExpertReplyT reply = MakeExpert(lenient)->Serve(truncated_job);
  ASSERT_EQ(reply.status, wire::StatusCode::OK) << reply.error;
  EXPECT_EQ(reply.prompt_tokens, 12u);  // 16 - 4 reserved for the completion
  EXPECT_LE(reply.completion_tokens, 4u);
}

TEST(TransformerExpertTest, RunsOnTheCpuOnly) {
  config::ExpertConfig cuda = NeoxConfig();
  cuda.device = {config::Device::Type::kCuda, -1};
  try {
    MakeExpert(cuda);
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("expert 'neox'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace thalamus::experts
