// The model subcommands of the `thalamus` tool, run as a user would.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <string>

#include <sys/wait.h>

#include <nlohmann/json.hpp>

#include "models/safetensors.h"
#include "models/tokenizer.h"

namespace thalamus::models {
namespace {

const std::string kDataDir = std::string(THALAMUS_TEST_DATA_DIR) + "/models";

struct Output {
  int status = -1;
  std::string out;
};

// Runs the tool with a shell command line; stderr goes to /dev/null.
Output RunTool(const std::string& arguments) {
  Output result;
  std::string command = std::string(THALAMUS_CLI_BINARY) + " " + arguments + " 2>/dev/null";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) result.out.append(buffer.data(), n);
  int status = ::pclose(pipe);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::vector<int32_t> ExpectedIds(const std::string& name, const std::string& fixture = "mamba-tiny") {
  torch::Tensor ids = SafeTensors::Open(kDataDir + "/" + fixture + "-expected.safetensors").Load(name, torch::kInt32);
  return std::vector<int32_t>(ids.data_ptr<int32_t>(), ids.data_ptr<int32_t>() + ids.numel());
}

std::string Join(const std::vector<int32_t>& ids) {
  std::string text;
  for (int32_t id : ids) {
    if (!text.empty()) text.push_back(',');
    text.append(std::to_string(id));
  }
  return text;
}

TEST(CliTest, LogitsPrintsEveryPosition) {
  Output run = RunTool("logits --model " + kDataDir + "/mamba-tiny-ss --ids " + Join(ExpectedIds("ids_b")));
  ASSERT_EQ(run.status, 0);
  nlohmann::json out = nlohmann::json::parse(run.out);
  EXPECT_EQ(out["vocab_size"], 1008);
  torch::Tensor expected = SafeTensors::Open(kDataDir + "/mamba-tiny-expected.safetensors").Load("logits_b");
  ASSERT_EQ(out["logits"].size(), static_cast<size_t>(expected.size(0)));
  for (int64_t t = 0; t < expected.size(0); ++t) {
    torch::Tensor row = torch::tensor(out["logits"][t].get<std::vector<float>>());
    EXPECT_TRUE(torch::allclose(row, expected[t], 6e-4, 2e-3)) << "position " << t;
  }
}

// The same tool opens a GPT-NeoX checkpoint: config.json's model_type decides.
TEST(CliTest, LogitsAndGenerateTakeAGptNeoxCheckpoint) {
  const std::string model = kDataDir + "/gpt_neox-tiny-parallel";
  Output run = RunTool("logits --model " + model + " --ids " + Join(ExpectedIds("ids_b", "gpt_neox-tiny-parallel")));
  ASSERT_EQ(run.status, 0);
  nlohmann::json out = nlohmann::json::parse(run.out);
  torch::Tensor expected =
      SafeTensors::Open(kDataDir + "/gpt_neox-tiny-parallel-expected.safetensors").Load("logits_b");
  ASSERT_EQ(out["logits"].size(), static_cast<size_t>(expected.size(0)));
  for (int64_t t = 0; t < expected.size(0); ++t) {
    torch::Tensor row = torch::tensor(out["logits"][t].get<std::vector<float>>());
    EXPECT_TRUE(torch::allclose(row, expected[t], 6e-4, 2e-3)) << "position " << t;
  }
  Output generated = RunTool("generate --model " + model + " --max-tokens 5 --prompt hello");
  EXPECT_EQ(generated.status, 0);
  EXPECT_FALSE(generated.out.empty());
}

TEST(CliTest, TokenizeEncodesAndDecodes) {
  const std::string tokenizer = kDataDir + "/mamba-tiny-hf/tokenizer.json";
  Output encoded = RunTool("tokenize --tokenizer " + tokenizer + " --text 'def f(x):'");
  ASSERT_EQ(encoded.status, 0);
  std::vector<int32_t> ids = nlohmann::json::parse(encoded.out).get<std::vector<int32_t>>();
  EXPECT_EQ(ids, Tokenizer::FromFile(tokenizer).Encode("def f(x):"));
  Output decoded = RunTool("tokenize --tokenizer " + tokenizer + " --decode " + Join(ids));
  ASSERT_EQ(decoded.status, 0);
  EXPECT_EQ(nlohmann::json::parse(decoded.out), "def f(x):");
}

TEST(CliTest, GenerateStreamsTheGreedyContinuation) {
  Tokenizer tokenizer = Tokenizer::FromFile(kDataDir + "/mamba-tiny-hf/tokenizer.json");
  std::string prompt = tokenizer.Decode(ExpectedIds("greedy_prompt"));
  ASSERT_EQ(tokenizer.Encode(prompt), ExpectedIds("greedy_prompt"));
  Output run = RunTool("generate --model " + kDataDir +
                       "/mamba-tiny-hf --max-tokens 16 --prompt \"$(printf 'def f(x):\\n    return')\"");
  ASSERT_EQ(run.status, 0);
  EXPECT_EQ(run.out, tokenizer.Decode(ExpectedIds("greedy_tokens"), true) + "\n");
}

TEST(CliTest, BadArgumentsAreUsageErrors) {
  EXPECT_EQ(RunTool("logits --ids 1,2").status, 2);
  EXPECT_EQ(RunTool("generate --model x").status, 2);
  EXPECT_EQ(RunTool("tokenize --tokenizer x").status, 2);
  EXPECT_EQ(RunTool("logits --model " + kDataDir + "/mamba-tiny-hf --ids 1,x").status, 1);
  EXPECT_EQ(RunTool("logits --model " + kDataDir + "/mamba-tiny-hf --ids 1,99999").status, 1);
  EXPECT_EQ(RunTool("generate --model /nonexistent --prompt hi").status, 1);
  EXPECT_EQ(RunTool("logits --model " + kDataDir + " --ids 1").status, 1);  // no config.json
  EXPECT_EQ(RunTool("generate --model " + kDataDir + "/mamba-tiny-hf --prompt hi --top-p 2").status, 1);
}

}  // namespace
}  // namespace thalamus::models
