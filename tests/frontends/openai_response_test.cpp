// openai_response: response, error and streamed-event JSON.
#include "frontends/openai_response.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace thalamus::frontends::openai {
namespace {

using nlohmann::json;

wire::QueryResultT Result(const std::string& answer) {
  wire::QueryResultT result;
  result.answer = answer;
  result.finish_reason = "length";
  result.prompt_tokens = 3;
  result.completion_tokens = 4;
  return result;
}

TEST(OpenAIApiTest, ResultJson) {
  ResponseIds ids{"chatcmpl-1", "echo", 1700000000};
  json chat = json::parse(ResultJson(Api::kChat, ids, Result("hi")));
  EXPECT_EQ(chat, json::parse(R"({"id":"chatcmpl-1","object":"chat.completion","created":1700000000,
      "model":"echo","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"logprobs":null,
      "finish_reason":"length"}],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}})"));

  wire::QueryResultT with_passage = Result("x");
  auto passage = std::make_unique<wire::PassageT>();
  passage->score = 0.1f;
  with_passage.citations.push_back(std::move(passage));
  json query = json::parse(ResultJson(Api::kQuery, ids, with_passage));
  EXPECT_EQ(query["citations"][0]["score"].dump(), "0.1");  // not 0.10000000149011612
  EXPECT_FALSE(query.contains("trace"));
  EXPECT_EQ(query["finish_reason"], "length");
}

TEST(OpenAIApiTest, CompletionResultJsonEscapesAndCarriesCitations) {
  wire::QueryResultT result = Result("a \"quoted\"\nline\t\x01 \\ end");
  result.finish_reason = "stop";
  auto passage = std::make_unique<wire::PassageT>();
  passage->text = "passage";
  passage->source = "docs/a.md";
  passage->score = 0.5f;
  result.citations.push_back(std::move(passage));
  json completion = json::parse(ResultJson(Api::kCompletion, {"cmpl-\"x", "m\\odel", 2}, result));
  EXPECT_EQ(completion["id"], "cmpl-\"x");
  EXPECT_EQ(completion["object"], "text_completion");
  EXPECT_EQ(completion["created"], 2);
  EXPECT_EQ(completion["model"], "m\\odel");
  EXPECT_EQ(completion["choices"][0]["text"], result.answer);
  EXPECT_EQ(completion["choices"][0]["finish_reason"], "stop");
  EXPECT_TRUE(completion["choices"][0]["logprobs"].is_null());
  EXPECT_EQ(completion["usage"]["total_tokens"], 7);
  ASSERT_EQ(completion["citations"].size(), 1u);
  EXPECT_EQ(completion["citations"][0]["source"], "docs/a.md");

  result.prompt_tokens = 4000000000u;
  result.completion_tokens = 4000000000u;
  json chat = json::parse(ResultJson(Api::kChat, {"id", "m", 1}, result));
  EXPECT_EQ(chat["choices"][0]["message"]["content"], result.answer);
  EXPECT_EQ(chat["usage"]["total_tokens"], 8000000000u);  // no 32-bit overflow
  EXPECT_EQ(chat["citations"][0]["text"], "passage");
}

TEST(OpenAIApiTest, InvalidUtf8InAnswersIsReplacedNotFatal) {
  json chat = json::parse(ResultJson(Api::kChat, {"id", "m", 1}, Result("bad \xff byte")));
  EXPECT_EQ(chat["choices"][0]["message"]["content"], "bad \xEF\xBF\xBD byte");
}

TEST(OpenAIApiTest, ErrorsAndRetryAfter) {
  wire::QueryResultT failed;
  failed.status = wire::StatusCode::OVERLOADED;
  failed.retry_after_ms = 1001;
  EXPECT_EQ(RetryAfterSeconds(failed), 2);
  failed.retry_after_ms = 0;
  EXPECT_EQ(RetryAfterSeconds(failed), 1);
  json body = json::parse(ErrorJson(failed));
  EXPECT_EQ(body["error"]["code"], "overloaded");
  EXPECT_EQ(body["error"]["type"], "rate_limit_error");
  EXPECT_EQ(body["error"]["message"], "overloaded");
  EXPECT_TRUE(body["error"]["param"].is_null());
  failed.status = wire::StatusCode::DEADLINE_EXCEEDED;
  failed.retry_after_ms = 5000;
  EXPECT_EQ(RetryAfterSeconds(failed), 0);

  json invalid = json::parse(ErrorJson(ApiError(400, "top_p: bad", "top_p")));
  EXPECT_EQ(invalid["error"]["param"], "top_p");
  EXPECT_EQ(invalid["error"]["code"], "bad_request");
  EXPECT_EQ(invalid["error"]["type"], "invalid_request_error");
}

TEST(OpenAIApiTest, StreamEncoderChat) {
  StreamEncoder encoder(Api::kChat, {"chatcmpl-9", "echo", 5}, /*include_usage=*/true);
  std::vector<std::string> first = encoder.Partial("Hel");
  ASSERT_EQ(first.size(), 1u);
  json event = json::parse(first[0]);
  EXPECT_EQ(event["choices"][0]["delta"], json::parse(R"({"role":"assistant","content":"Hel"})"));
  EXPECT_TRUE(encoder.Partial("").empty());
  EXPECT_EQ(json::parse(encoder.Partial("lo").at(0))["choices"][0]["delta"], json::parse(R"({"content":"lo"})"));
  // The final answer extends the streamed text: the rest is sent before the end.
  std::vector<std::string> end = encoder.Finish(Result("Hello!"));
  ASSERT_EQ(end.size(), 3u);
  EXPECT_EQ(json::parse(end[0])["choices"][0]["delta"]["content"], "!");
  EXPECT_EQ(json::parse(end[1])["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(json::parse(end[2])["usage"]["total_tokens"], 7);
}

TEST(OpenAIApiTest, StreamEncoderWithNothingStreamedSendsTheAnswer) {
  StreamEncoder encoder(Api::kChat, {"c", "m", 1}, false);
  std::vector<std::string> end = encoder.Finish(Result("whole"));
  ASSERT_EQ(end.size(), 2u);
  EXPECT_EQ(json::parse(end[0])["choices"][0]["delta"], json::parse(R"({"role":"assistant","content":"whole"})"));
  EXPECT_EQ(json::parse(end[1])["choices"][0]["delta"], json::object());
}

TEST(OpenAIApiTest, StreamEncoderHoldsSplitCharacters) {
  StreamEncoder encoder(Api::kCompletion, {"c", "m", 1}, false);
  EXPECT_EQ(json::parse(encoder.Partial("a\xE2\x82").at(0))["choices"][0]["text"], "a");
  EXPECT_TRUE(encoder.Partial("").empty());
  EXPECT_EQ(json::parse(encoder.Partial("\xAC").at(0))["choices"][0]["text"], "\xE2\x82\xAC");
  // A tail that never completes is flushed (replaced) at the end, not lost.
  EXPECT_TRUE(encoder.Partial("\xC3").empty());
  std::vector<std::string> end = encoder.Finish(Result("different answer"));
  ASSERT_EQ(end.size(), 2u);
  EXPECT_EQ(json::parse(end[0])["choices"][0]["text"], "\xEF\xBF\xBD");
}

TEST(OpenAIApiTest, CompleteUtf8Prefix) {
  EXPECT_EQ(CompleteUtf8Prefix(""), 0u);
  EXPECT_EQ(CompleteUtf8Prefix("abc"), 3u);
  EXPECT_EQ(CompleteUtf8Prefix("a\xC3"), 1u);
  EXPECT_EQ(CompleteUtf8Prefix("a\xC3\xA9"), 3u);
  EXPECT_EQ(CompleteUtf8Prefix("\xF0\x9F\x98"), 0u);
  EXPECT_EQ(CompleteUtf8Prefix("\xF0\x9F\x98\x80"), 4u);
  EXPECT_EQ(CompleteUtf8Prefix("\x80\x80\x80\x80\x80"), 5u);  // stray continuation bytes
  EXPECT_EQ(CompleteUtf8Prefix("a\xFF"), 2u);
}

TEST(OpenAIApiTest, ModelsAndReadiness) {
  std::vector<router::ServiceInfo> services = {{"echo", "echo", "test", "v1", 2, 0, 1}};
  json models = json::parse(ModelsJson(services, 123));
  EXPECT_EQ(models, json::parse(R"({"object":"list","data":[{"id":"echo","object":"model","created":123,
      "owned_by":"thalamus","kind":"echo","description":"test","served_model":"v1","live_workers":2}]})"));
  json ready = json::parse(ReadyJson(false, services));
  EXPECT_EQ(ready["status"], "not_ready");
  EXPECT_EQ(ready["services"]["echo"]["in_flight"], 1);
}

TEST(OpenAIApiTest, IdsAreUniqueAndPrefixed) {
  ResponseIds a = NewResponseIds(Api::kChat, "m");
  ResponseIds b = NewResponseIds(Api::kChat, "m");
  EXPECT_NE(a.id, b.id);
  EXPECT_EQ(a.id.rfind("chatcmpl-", 0), 0u);
  EXPECT_EQ(NewResponseIds(Api::kCompletion, "m").id.rfind("cmpl-", 0), 0u);
}

}  // namespace
}  // namespace thalamus::frontends::openai
