#include "models/gpt_neox.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <vector>

#include <unistd.h>

#include "models/generate.h"
#include "models/safetensors.h"
#include "models/tokenizer.h"
#include "tests/models/safetensors_writer.h"

namespace thalamus::models {
namespace {

namespace fs = std::filesystem;

const std::string kDataDir = std::string(THALAMUS_TEST_DATA_DIR) + "/models";
const std::string kParallel = "gpt_neox-tiny-parallel";
const std::string kSequential = "gpt_neox-tiny-sequential";  // sharded, transformers' rope_parameters naming
const std::string kFp16 = "gpt_neox-tiny-fp16";

std::string Dir(const std::string& name) { return kDataDir + "/" + name; }

// Logits of transformers' GPTNeoXForCausalLM on the same weights
// (tools/fixtures/make_model_fixtures.py, fixture gpt_neox).
const SafeTensors& Expected(const std::string& name) {
  static std::map<std::string, SafeTensors> cache;
  auto it = cache.find(name);
  if (it == cache.end())
    it = cache.emplace(name, SafeTensors::Open(kDataDir + "/" + name + "-expected.safetensors")).first;
  return it->second;
}

std::vector<int32_t> Ids(const std::string& fixture, const std::string& name) {
  torch::Tensor ids = Expected(fixture).Load(name, torch::kInt32);
  return std::vector<int32_t>(ids.data_ptr<int32_t>(), ids.data_ptr<int32_t>() + ids.numel());
}

void ExpectClose(const torch::Tensor& actual, const torch::Tensor& expected, const std::string& what) {
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what;
  EXPECT_TRUE(torch::allclose(actual, expected, /*rtol=*/6e-4, /*atol=*/2e-3))
      << what << ": max abs difference " << (actual - expected).abs().max().item<float>();
}

class GptNeoxFidelityTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::unique_ptr<GptNeoxModel> Model() const { return GptNeoxModel::Load(Dir(GetParam())); }
  const SafeTensors& expected() const { return Expected(GetParam()); }
};

TEST_P(GptNeoxFidelityTest, PrefillLogitsMatchTransformers) {
  std::unique_ptr<GptNeoxModel> model = Model();
  EXPECT_EQ(model->VocabSize(), 1008);
  EXPECT_EQ(model->MaxContext(), 512);
  for (const char* which : {"a", "b"}) {
    std::vector<int32_t> ids = Ids(GetParam(), std::string("ids_") + which);
    torch::Tensor logits = expected().Load(std::string("logits_") + which);
    auto state = model->NewState(1);
    ExpectClose(model->Prefill(*state, 0, ids, true), logits, which);
    ExpectClose(model->Prefill(*state, 0, ids, false), logits.narrow(0, ids.size() - 1, 1), which);
  }
}

TEST_P(GptNeoxFidelityTest, LongPrefillAttendsAcrossQueryBlocks) {
  std::unique_ptr<GptNeoxModel> model = Model();
  std::vector<int32_t> ids = Ids(GetParam(), "ids_long");  // 300 tokens: two 256-query blocks
  torch::Tensor rows = expected().Load("long_rows", torch::kInt64);
  auto state = model->NewState(1);
  torch::Tensor logits = model->Prefill(*state, 0, ids, true);
  ExpectClose(logits.index_select(0, rows), expected().Load("logits_long_rows"), "long prefill");
}

TEST_P(GptNeoxFidelityTest, CachedDecodeMatchesFullRecompute) {
  std::unique_ptr<GptNeoxModel> model = Model();
  std::vector<int32_t> ids = Ids(GetParam(), "ids_a");
  torch::Tensor expected_logits = expected().Load("logits_a");
  for (size_t prompt : {size_t{1}, size_t{2}, size_t{9}}) {
    auto state = model->NewState(1);
    ExpectClose(model->Prefill(*state, 0, std::span(ids).first(prompt), false),
                expected_logits.narrow(0, prompt - 1, 1), "prefill");
    for (size_t t = prompt; t < ids.size(); ++t) {
      ExpectClose(model->Step(*state, std::span(ids).subspan(t, 1)), expected_logits.narrow(0, t, 1),
                  "step " + std::to_string(t));
    }
  }
}

TEST_P(GptNeoxFidelityTest, CacheGrowsPastItsFirstCapacity) {
  std::unique_ptr<GptNeoxModel> model = Model();
  std::vector<int32_t> ids = Ids(GetParam(), "ids_long");
  torch::Tensor rows = expected().Load("long_rows", torch::kInt64);
  torch::Tensor expected_rows = expected().Load("logits_long_rows");
  auto state = model->NewState(1);
  model->Prefill(*state, 0, std::span(ids).first(40), false);
  for (int64_t t = 40, next_row = 1; t < static_cast<int64_t>(ids.size()); ++t) {  // 64 -> 128 -> 256 -> 512 positions
    torch::Tensor logits = model->Step(*state, std::span(ids).subspan(t, 1));
    if (next_row < rows.size(0) && rows[next_row].item<int64_t>() == t) {
      ExpectClose(logits[0], expected_rows[next_row], "step " + std::to_string(t));
      ++next_row;
    }
  }
}

TEST_P(GptNeoxFidelityTest, GreedyGenerationMatchesTransformers) {
  std::unique_ptr<GptNeoxModel> model = Model();
  Tokenizer tokenizer = Tokenizer::FromFile(Dir(GetParam()) + "/tokenizer.json");
  GenerationRequest request;
  request.prompt = Ids(GetParam(), "greedy_prompt");
  request.sampling.max_tokens = 16;
  std::vector<GenerationRequest> requests;
  requests.push_back(std::move(request));
  GenerationResult result = Generate(*model, tokenizer, std::move(requests))[0];
  EXPECT_EQ(result.tokens, Ids(GetParam(), "greedy_tokens"));
  EXPECT_EQ(result.finish_reason, FinishReason::kLength);
}

INSTANTIATE_TEST_SUITE_P(Checkpoints, GptNeoxFidelityTest, ::testing::Values(kParallel, kSequential, kFp16),
                         [](const auto& info) {
                           return info.param == kParallel     ? std::string("parallel_residual")
                                  : info.param == kSequential ? std::string("sequential_residual_sharded")
                                                              : std::string("float16_weights");
                         });

TEST(GptNeoxTest, BatchedStepMatchesSingleSequences) {
  std::unique_ptr<GptNeoxModel> model = GptNeoxModel::Load(Dir(kParallel));
  std::vector<int32_t> a = Ids(kParallel, "ids_a"), b = Ids(kParallel, "ids_b"), l = Ids(kParallel, "ids_long");
  torch::Tensor expected_a = Expected(kParallel).Load("logits_a"), expected_b = Expected(kParallel).Load("logits_b");
  // Slot 2 holds a long sequence first, then a short one: stale cache rows must not leak in.
  auto state = model->NewState(3);
  model->Prefill(*state, 2, std::span(l).first(100), false);
  model->Prefill(*state, 0, std::span(a).first(10), false);
  model->Prefill(*state, 1, std::span(b).first(1), false);
  model->Prefill(*state, 2, std::span(a).first(3), false);
  for (int t = 0; t < 4; ++t) {
    std::vector<int32_t> tokens = {a[10 + t], b[1 + t], a[3 + t]};
    torch::Tensor logits = model->Step(*state, tokens);
    ExpectClose(logits[0], expected_a[10 + t], "a in slot 0");
    ExpectClose(logits[1], expected_b[1 + t], "b in slot 1");
    ExpectClose(logits[2], expected_a[3 + t], "a in slot 2");
  }
  // A step on a prefix of the slots leaves the others alone; CopySlot moves a history.
  ExpectClose(model->Step(*state, std::vector<int32_t>{a[14]})[0], expected_a[14], "a alone");
  model->CopySlot(*state, 1, 0);
  ExpectClose(model->Step(*state, std::vector<int32_t>{b[5], a[7]})[0], expected_b[5], "b after CopySlot");
}

TEST(GptNeoxTest, BatchedGenerationMatchesSeparateRuns) {
  std::unique_ptr<GptNeoxModel> model = GptNeoxModel::Load(Dir(kSequential));
  Tokenizer tokenizer = Tokenizer::FromFile(Dir(kSequential) + "/tokenizer.json");
  auto requests = [] {
    std::vector<GenerationRequest> list;
    for (std::vector<int32_t> prompt :
         {std::vector<int32_t>{5, 6, 7}, std::vector<int32_t>{900}, std::vector<int32_t>{1, 2, 3, 4, 5, 6, 7, 8}}) {
      GenerationRequest request;
      request.prompt = prompt;
      request.sampling.max_tokens = static_cast<int64_t>(4 + prompt.size());  // they finish at different steps
      list.push_back(std::move(request));
    }
    return list;
  };
  std::vector<GenerationResult> together = Generate(*model, tokenizer, requests(), 3);
  std::vector<GenerationRequest> each = requests();
  for (size_t i = 0; i < each.size(); ++i) {
    std::vector<GenerationRequest> one;
    one.push_back(std::move(each[i]));
    EXPECT_EQ(together[i].tokens, Generate(*model, tokenizer, std::move(one), 1)[0].tokens) << i;
  }
}

TEST(GptNeoxTest, ReadsBothRotaryNamings) {
  GptNeoxConfig pythia = GptNeoxConfig::FromFile(Dir(kParallel) + "/config.json");
  EXPECT_DOUBLE_EQ(pythia.rotary_pct, 0.25);
  EXPECT_DOUBLE_EQ(pythia.rotary_emb_base, 10000.0);
  EXPECT_EQ(pythia.rotary_dims(), 4);
  EXPECT_TRUE(pythia.use_parallel_residual);
  EXPECT_EQ(pythia.eos_token_id, 0);
  GptNeoxConfig transformers = GptNeoxConfig::FromFile(Dir(kSequential) + "/config.json");
  EXPECT_DOUBLE_EQ(transformers.rotary_pct, 0.5);
  EXPECT_DOUBLE_EQ(transformers.rotary_emb_base, 500.0);
  EXPECT_EQ(transformers.rotary_dims(), 8);
  EXPECT_FALSE(transformers.use_parallel_residual);
  EXPECT_EQ(transformers.head_size(), 16);
  EXPECT_EQ(transformers.intermediate_size, 256);
}

TEST(GptNeoxTest, Bfloat16RunsCloseToFloat32) {
  std::unique_ptr<GptNeoxModel> model = GptNeoxModel::Load(Dir(kParallel), torch::kBFloat16);
  std::vector<int32_t> ids = Ids(kParallel, "ids_b");
  auto state = model->NewState(1);
  torch::Tensor logits = model->Prefill(*state, 0, ids, true);
  EXPECT_EQ(logits.scalar_type(), torch::kFloat32);
  torch::Tensor expected = Expected(kParallel).Load("logits_b");
  float relative = ((logits - expected).norm() / expected.norm()).item<float>();
  EXPECT_LT(relative, 0.05f) << relative;
  EXPECT_GT(relative, 0.0f);  // it really ran in bfloat16
  torch::Tensor step = model->Step(*state, std::vector<int32_t>{5});
  EXPECT_TRUE(torch::isfinite(step).all().item<bool>());
}

// A scratch copy of a fixture whose files a test may change.
class ScratchCheckpoint {
 public:
  explicit ScratchCheckpoint(const std::string& fixture)
      : dir_(fs::temp_directory_path() / ("gpt_neox_test_" + std::to_string(getpid()) + "_" + fixture)) {
    fs::remove_all(dir_);
    fs::copy(Dir(fixture), dir_);
  }
  ~ScratchCheckpoint() { fs::remove_all(dir_); }
  std::string path() const { return dir_.string(); }

  // Rewrites model.safetensors with `drop` left out and `rename` applied.
  void RewriteWeights(const std::string& drop, const std::map<std::string, std::string>& rename = {}) const {
    SafeTensors tensors = SafeTensors::Open(path() + "/model.safetensors");
    std::vector<testing_support::RawTensor> kept;
    for (const std::string& name : tensors.Names()) {
      if (name == drop) continue;
      auto renamed = rename.find(name);
      kept.push_back({renamed == rename.end() ? name : renamed->second, "F32", tensors.Shape(name),
                      testing_support::Bytes(tensors.Load(name))});
    }
    std::ofstream(path() + "/model.safetensors", std::ios::binary | std::ios::trunc)
        << testing_support::Serialize(kept);
  }
  void WriteConfig(const std::string& from, const std::string& to) const {
    std::ifstream in(path() + "/config.json");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t at = text.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
    std::ofstream(path() + "/config.json", std::ios::trunc) << text;
  }

 private:
  fs::path dir_;
};

std::string LoadError(const std::string& dir) {
  try {
    GptNeoxModel::Load(dir);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(loaded)";
}

TEST(GptNeoxTest, MissingTensorIsNamedWithItsShape) {
  ScratchCheckpoint checkpoint(kParallel);
  checkpoint.RewriteWeights("gpt_neox.layers.1.mlp.dense_h_to_4h.weight");
  std::string error = LoadError(checkpoint.path());
  EXPECT_NE(error.find("missing tensor 'gpt_neox.layers.1.mlp.dense_h_to_4h.weight'"), std::string::npos) << error;
  EXPECT_NE(error.find("[256, 64]"), std::string::npos) << error;
  EXPECT_NE(error.find(checkpoint.path()), std::string::npos) << error;
}

TEST(GptNeoxTest, UnexpectedTensorAndBadConfigAreReported) {
  {
    ScratchCheckpoint checkpoint(kParallel);
    checkpoint.RewriteWeights("", {{"embed_out.weight", "lm_head.weight"}});
    std::string error = LoadError(checkpoint.path());
    EXPECT_NE(error.find("missing tensor 'embed_out.weight' (expected shape [1008, 64])"), std::string::npos) << error;
  }
  {
    ScratchCheckpoint checkpoint(kParallel);
    checkpoint.WriteConfig("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 1");
    std::string error = LoadError(checkpoint.path());
    EXPECT_NE(error.find("unexpected tensor 'gpt_neox.layers.1."), std::string::npos) << error;
  }
  {
    ScratchCheckpoint checkpoint(kParallel);
    checkpoint.WriteConfig("\"hidden_act\": \"gelu\"", "\"hidden_act\": \"relu\"");
    std::string error = LoadError(checkpoint.path());
    EXPECT_NE(error.find("hidden_act: \"relu\" is not supported"), std::string::npos) << error;
  }
  {
    ScratchCheckpoint checkpoint(kParallel);
    checkpoint.WriteConfig("\"num_attention_heads\": 4", "\"num_attention_heads\": 5");
    std::string error = LoadError(checkpoint.path());
    EXPECT_NE(error.find("not divisible by num_attention_heads 5"), std::string::npos) << error;
  }
}

TEST(GptNeoxTest, ContextLimitIsEnforced) {
  std::unique_ptr<GptNeoxModel> model = GptNeoxModel::Load(Dir(kParallel), torch::kFloat32, /*max_context=*/16);
  EXPECT_EQ(model->MaxContext(), 16);
  EXPECT_EQ(GptNeoxModel::Load(Dir(kParallel), torch::kFloat32, 4096)->MaxContext(), 512);  // the smaller one
  std::vector<int32_t> ids = Ids(kParallel, "ids_a");
  auto state = model->NewState(2);
  try {
    model->Prefill(*state, 0, std::span(ids).first(17), false);
    FAIL() << "17 tokens fit a 16-token context";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("17 tokens exceed the context limit of 16"), std::string::npos) << e.what();
  }
  model->Prefill(*state, 0, std::span(ids).first(15), false);
  model->Step(*state, std::vector<int32_t>{3});  // position 15, the last one
  EXPECT_THROW(model->Step(*state, std::vector<int32_t>{3}), std::invalid_argument);
  EXPECT_THROW(model->Prefill(*state, 1, std::vector<int32_t>{1008}, false),
               std::invalid_argument);  // outside the vocabulary
  EXPECT_THROW(model->Prefill(*state, 2, std::vector<int32_t>{1}, false), std::invalid_argument);  // no such slot
}

TEST(GptNeoxTest, ContextPolicyErrorsOrKeepsTheEndOfThePrompt) {
  std::unique_ptr<GptNeoxModel> model = GptNeoxModel::Load(Dir(kParallel), torch::kFloat32, 16);
  Tokenizer tokenizer = Tokenizer::FromFile(Dir(kParallel) + "/tokenizer.json");
  std::vector<int32_t> prompt = Ids(kParallel, "ids_a");  // 19 tokens
  auto generate = [&](std::vector<int32_t> ids) {
    GenerationRequest request;
    request.prompt = std::move(ids);
    request.sampling.max_tokens = 4;
    std::vector<GenerationRequest> requests;
    requests.push_back(std::move(request));
    return Generate(*model, tokenizer, std::move(requests))[0];
  };

  EXPECT_EQ(ContextPolicyFromName("error"), ContextPolicy::kError);
  EXPECT_THROW(ContextPolicyFromName("truncate"), std::invalid_argument);
  GenerationResult rejected = generate(FitPromptToContext(prompt, 16, 4, ContextPolicy::kError));
  EXPECT_EQ(rejected.finish_reason, FinishReason::kError);
  EXPECT_NE(rejected.error.find("context limit is 16"), std::string::npos) << rejected.error;

  std::vector<int32_t> fitted = FitPromptToContext(prompt, 16, 4, ContextPolicy::kTruncateLeft);
  ASSERT_EQ(fitted, std::vector<int32_t>(prompt.end() - 12, prompt.end()));  // room left for max_tokens
  GenerationResult truncated = generate(fitted);
  EXPECT_EQ(truncated.finish_reason, FinishReason::kLength);
  EXPECT_EQ(truncated.tokens.size(), 4u);
  // A huge max_tokens still leaves half the context to the prompt.
  EXPECT_EQ(FitPromptToContext(prompt, 16, 1000, ContextPolicy::kTruncateLeft).size(), 8u);
  EXPECT_EQ(FitPromptToContext(prompt, 0, 4, ContextPolicy::kTruncateLeft).size(), prompt.size());  // unbounded
}

}  // namespace
}  // namespace thalamus::models
