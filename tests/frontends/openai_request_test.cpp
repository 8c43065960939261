// openai_request: request validation and conversion to the wire types.
#include "frontends/openai_request.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace thalamus::frontends::openai {
namespace {

using nlohmann::json;

struct BadRequest {
  Api api;
  std::string body;
  std::string param;    // the field the error names
  std::string message;  // a part of the message
};

std::ostream& operator<<(std::ostream& out, const BadRequest& c) { return out << c.body; }

class BadRequestTest : public ::testing::TestWithParam<BadRequest> {};

TEST_P(BadRequestTest, IsRejectedNamingTheField) {
  const BadRequest& c = GetParam();
  try {
    ParseRequest(c.api, c.body);
    FAIL() << "accepted " << c.body;
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400);
    EXPECT_EQ(e.param(), c.param) << e.what();
    EXPECT_NE(std::string(e.what()).find(c.message), std::string::npos) << e.what();
    if (!c.param.empty()) {
      EXPECT_EQ(std::string(e.what()).rfind(c.param + ":", 0), 0u) << e.what();
    }
  }
}

const std::string kMsgs = R"("messages":[{"role":"user","content":"hi"}])";

INSTANTIATE_TEST_SUITE_P(
    Table, BadRequestTest,
    ::testing::Values(
        BadRequest{Api::kChat, "", "", "invalid JSON"}, BadRequest{Api::kChat, "{", "", "invalid JSON"},
        BadRequest{Api::kChat, "null", "", "must be a JSON object"},
        BadRequest{Api::kChat, "\"text\"", "", "must be a JSON object"},
        BadRequest{Api::kChat, "{}", "messages", "is required"},
        BadRequest{Api::kChat, R"({"messages":"hi"})", "messages", "must be an array"},
        BadRequest{Api::kChat, R"({"messages":[]})", "messages", "must not be empty"},
        BadRequest{Api::kChat, R"({"messages":["hi"]})", "messages[0]", "must be an object"},
        BadRequest{Api::kChat, R"({"messages":[{"content":"hi"}]})", "messages[0].role", "is required"},
        BadRequest{Api::kChat, R"({"messages":[{"role":7,"content":"hi"}]})", "messages[0].role", "must be a string"},
        BadRequest{Api::kChat, R"({"messages":[{"role":"user","content":"a"},{"role":"tool","content":"b"}]})",
                   "messages[1].role", "must be one of"},
        BadRequest{Api::kChat, R"({"messages":[{"role":"user"}]})", "messages[0].content", "is required"},
        BadRequest{Api::kChat, R"({"messages":[{"role":"user","content":5}]})", "messages[0].content",
                   "must be a string"},
        BadRequest{Api::kChat, R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})",
                   "messages[0].content[0].type", "only \"text\""},
        BadRequest{Api::kChat, "{" + kMsgs + R"(,"temperature":-0.1})", "temperature", ">= 0"},
        BadRequest{Api::kChat, "{" + kMsgs + R"(,"temperature":"hot"})", "temperature", "got a string"},
        BadRequest{Api::kChat, "{" + kMsgs + R"(,"temperature":1000})", "temperature", "<= 100"},
        BadRequest{Api::kChat, "{" + kMsgs + R"(,"top_p":0})", "top_p", "> 0"},
        BadRequest{Api::kChat, "{" + kMsgs + R"(,"top_p":1.5})", "top_p", "<= 1"},
        BadRequest{Api::kChat, "{" + kMsgs + R"(,"top_k":-2})", "top_k", "from -1"},
        BadRequest{Api::kChat, "{" + kMsgs + R"(,"max_tokens":0})", "max_tokens", "from 1 to 1048576"},
        BadRequest{Api::kChat, "{" + kMsgs + R"(,"max_tokens":100000000000})", "max_tokens", "got 100000000000"},
        BadRequest{Api::kChat, "{" + kMsgs + R"(,"max_tokens":12.5})", "max_tokens", "non-integral"},
        BadRequest{Api::kChat, "{" + kMsgs + R"(,"max_completion_tokens":-1})", "max_completion_tokens", "from 1"},
        BadRequest{Api::kChat, "{" + kMsgs + R"(,"stop":""})", "stop", "must not be empty"},
        BadRequest{Api::kChat, "{" + kMsgs + R"(,"stop":[1]})", "stop[0]", "must be a string"},
        BadRequest{Api::kChat, "{" + kMsgs + R"(,"stop":{}})", "stop", "string or an array"},
        BadRequest{Api::kChat,
                   "{" + kMsgs + R"(,"stop":["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q"]})",
                   "stop", "at most 16"},
        BadRequest{Api::kChat, "{" + kMsgs + R"(,"seed":0})", "seed", "from 1"},
        BadRequest{Api::kChat, "{" + kMsgs + R"(,"seed":-5})", "seed", "from 1"},
        BadRequest{Api::kChat, "{" + kMsgs + R"(,"stream":"yes"})", "stream", "must be a boolean"},
        BadRequest{Api::kChat, "{" + kMsgs + R"(,"stream_options":{"include_usage":1}})",
                   "stream_options.include_usage", "must be a boolean"},
        BadRequest{Api::kChat, "{" + kMsgs + R"(,"model":42})", "model", "must be a string"},
        BadRequest{Api::kChat, "{" + kMsgs + R"(,"model":""})", "model", "must not be empty"},
        BadRequest{Api::kChat, "{" + kMsgs + R"(,"n":2})", "n", "only n = 1"},
        BadRequest{Api::kChat, "{" + kMsgs + R"(,"tools":[{"type":"function"}]})", "tools", "not supported"},
        BadRequest{Api::kChat, "{" + kMsgs + R"(,"logprobs":true})", "logprobs", "not supported"},
        BadRequest{Api::kChat, "{" + kMsgs + R"(,"response_format":{"type":"json_object"}})", "response_format",
                   "only"},
        BadRequest{Api::kCompletion, "{}", "prompt", "is required"},
        BadRequest{Api::kCompletion, R"({"prompt":[1,2,3]})", "prompt", "must be a string"},
        BadRequest{Api::kCompletion, R"({"prompt":["a","b"]})", "prompt", "exactly one"},
        BadRequest{Api::kCompletion, R"({"prompt":"a","echo":true})", "echo", "not supported"},
        BadRequest{Api::kCompletion, R"({"prompt":"a","best_of":3})", "best_of", "best_of = 1"},
        BadRequest{Api::kQuery, "{}", "prompt", "exactly one of prompt and messages"},
        BadRequest{Api::kQuery, R"({"prompt":"a",)" + kMsgs + "}", "prompt", "exactly one"},
        BadRequest{Api::kQuery, R"({"prompt":["a"]})", "prompt", "must be a string"},
        BadRequest{Api::kQuery, R"({"prompt":"a","experts":"echo"})", "experts", "must be an array"},
        BadRequest{Api::kQuery, R"({"prompt":"a","experts":["echo",""]})", "experts[1]", "must not be empty"},
        BadRequest{Api::kQuery, R"({"prompt":"a","deadline_ms":-1})", "deadline_ms", "from 0"},
        BadRequest{Api::kQuery, R"({"prompt":"a","deadline_ms":99999999999})", "deadline_ms", "to 86400000"},
        BadRequest{Api::kQuery, R"({"prompt":"a","with_trace":"no"})", "with_trace", "must be a boolean"}));

TEST(OpenAIApiTest, ChatRequestBecomesAQuery) {
  ParsedRequest parsed = ParseRequest(Api::kChat, R"({
      "model": "mamba", "stream": true, "stream_options": {"include_usage": true},
      "messages": [{"role": "developer", "content": "be brief"},
                   {"role": "user", "content": [{"type": "text", "text": "hel"}, {"type": "text", "text": "lo"}]},
                   {"role": "assistant", "content": "hi", "name": "bot"}],
      "max_completion_tokens": 9, "max_tokens": 1000, "temperature": 0, "top_p": 0.9, "top_k": -1,
      "stop": ["###", "\n\n"], "seed": 42, "user": "someone", "presence_penalty": 0.5, "n": 1,
      "tools": [], "logprobs": false, "response_format": {"type": "text"}})");
  EXPECT_EQ(parsed.model, "mamba");
  EXPECT_TRUE(parsed.stream);
  EXPECT_TRUE(parsed.include_usage);
  const wire::QueryT& q = parsed.query;
  EXPECT_TRUE(q.stream);
  EXPECT_FALSE(q.with_trace);
  EXPECT_EQ(q.experts, std::vector<std::string>{"mamba"});
  ASSERT_EQ(q.messages.size(), 3u);
  EXPECT_EQ(q.messages[0]->role, "system");
  EXPECT_EQ(q.messages[1]->content, "hello");
  EXPECT_EQ(q.messages[2]->role, "assistant");
  EXPECT_EQ(q.params->max_tokens, 9);  // max_completion_tokens wins
  EXPECT_EQ(q.params->temperature, 0.0f);
  EXPECT_FLOAT_EQ(q.params->top_p, 0.9f);
  EXPECT_EQ(q.params->top_k, 0);
  EXPECT_EQ(q.params->stop, (std::vector<std::string>{"###", "\n\n"}));
  EXPECT_EQ(q.params->seed, 42u);
}

TEST(OpenAIApiTest, DefaultsAndNulls) {
  ParsedRequest chat = ParseRequest(Api::kChat, R"({"messages":[{"role":"user","content":"x"}],
                                                    "model":null,"stop":null,"temperature":null})");
  EXPECT_EQ(chat.model, "thalamus");
  EXPECT_TRUE(chat.query.experts.empty());
  EXPECT_EQ(chat.query.params->max_tokens, wire::GenerationParamsT().max_tokens);
  EXPECT_EQ(chat.query.params->temperature, 1.0f);
  EXPECT_TRUE(chat.query.params->stop.empty());
  EXPECT_FALSE(chat.stream);

  ParsedRequest router = ParseRequest(Api::kChat, R"({"messages":[{"role":"user","content":"x"}],"model":"thalamus"})");
  EXPECT_TRUE(router.query.experts.empty());

  ParsedRequest completion = ParseRequest(Api::kCompletion, R"({"prompt":["only"],"stop":"END"})");
  EXPECT_EQ(completion.query.prompt, "only");
  EXPECT_EQ(completion.query.params->max_tokens, 16);
  EXPECT_EQ(completion.query.params->stop, std::vector<std::string>{"END"});
}

TEST(OpenAIApiTest, NativeQuery) {
  ParsedRequest parsed = ParseRequest(Api::kQuery, R"({"messages":[{"role":"user","content":"q"}],
      "experts":["docs","mamba"],"deadline_ms":2500,"with_trace":false,"stream":true,"max_tokens":3,
      "seed":9223372036854775807})");
  EXPECT_EQ(parsed.query.experts, (std::vector<std::string>{"docs", "mamba"}));
  EXPECT_EQ(parsed.query.deadline_ms, 2500u);
  EXPECT_FALSE(parsed.query.with_trace);
  EXPECT_TRUE(parsed.query.stream);
  EXPECT_EQ(parsed.query.params->max_tokens, 3);
  EXPECT_EQ(parsed.query.messages.at(0)->content, "q");
  EXPECT_EQ(parsed.query.params->seed, 9223372036854775807u);
  EXPECT_THROW(ParseRequest(Api::kQuery, R"({"prompt":"a","seed":9223372036854775808})"), ApiError);
}

}  // namespace
}  // namespace thalamus::frontends::openai
