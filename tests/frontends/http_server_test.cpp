// HttpServer over real loopback sockets: the non-streamed endpoints.
#include <gtest/gtest.h>

#include "tests/frontends/http_test_util.h"

namespace thalamus::frontends::testing {
namespace {

using nlohmann::json;

TEST(HttpServerTest, ChatCompletionAnswersInOpenAIShape) {
  TestServer server;
  TestClient client(server.port());
  Response response = client.Post(
      "/v1/chat/completions",
      {{"messages", {{{"role", "system"}, {"content", "be brief"}}, {{"role", "user"}, {"content", "hello"}}}},
       {"max_tokens", 7},
       {"temperature", 0.5},
       {"stop", "\n"}});
  ASSERT_EQ(response.result_int(), 200) << response.body();
  EXPECT_EQ(response[http::field::content_type], "application/json");
  json body = Json(response);
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_EQ(body["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  EXPECT_EQ(body["model"], "thalamus");
  EXPECT_GT(body["created"].get<int64_t>(), 1'600'000'000);
  EXPECT_EQ(body["choices"][0]["index"], 0);
  EXPECT_EQ(body["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(body["choices"][0]["message"]["content"], "echo: hello");
  EXPECT_EQ(body["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(body["usage"]["prompt_tokens"], 5);
  EXPECT_EQ(body["usage"]["completion_tokens"], 11);
  EXPECT_EQ(body["usage"]["total_tokens"], 16);
  EXPECT_EQ(body["citations"][0]["source"], "manual.md");

  std::vector<wire::QueryT> seen = server.service.queries();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_TRUE(seen[0].experts.empty());  // "thalamus": the gate chooses
  ASSERT_EQ(seen[0].messages.size(), 2u);
  EXPECT_EQ(seen[0].messages[0]->role, "system");
  EXPECT_EQ(seen[0].params->max_tokens, 7);
  EXPECT_FLOAT_EQ(seen[0].params->temperature, 0.5f);
  EXPECT_EQ(seen[0].params->stop, std::vector<std::string>{"\n"});
  EXPECT_FALSE(seen[0].stream);
}

TEST(HttpServerTest, ModelNamesTheExpert) {
  TestServer server;
  TestClient client(server.port());
  Response response =
      client.Post("/v1/chat/completions", {{"model", "docs"}, {"messages", {{{"role", "user"}, {"content", "x"}}}}});
  ASSERT_EQ(response.result_int(), 200) << response.body();
  EXPECT_EQ(Json(response)["model"], "docs");
  EXPECT_EQ(server.service.queries().at(0).experts, std::vector<std::string>{"docs"});
}

TEST(HttpServerTest, CompletionsAnswerWithText) {
  TestServer server;
  TestClient client(server.port());
  Response response = client.Post("/v1/completions", {{"model", "echo"}, {"prompt", "once upon"}});
  ASSERT_EQ(response.result_int(), 200) << response.body();
  json body = Json(response);
  EXPECT_EQ(body["object"], "text_completion");
  EXPECT_EQ(body["id"].get<std::string>().rfind("cmpl-", 0), 0u);
  EXPECT_EQ(body["choices"][0]["text"], "echo: once upon");
  wire::QueryT seen = server.service.queries().at(0);
  EXPECT_EQ(seen.prompt, "once upon");
  EXPECT_EQ(seen.params->max_tokens, 16);  // OpenAI's default for completions
}

TEST(HttpServerTest, NativeQueryReturnsAnswerAndTrace) {
  TestServer server;
  TestClient client(server.port());
  Response response =
      client.Post("/v1/query", {{"prompt", "what is a thalamus"}, {"experts", {"echo"}}, {"deadline_ms", 500}});
  ASSERT_EQ(response.result_int(), 200) << response.body();
  json body = Json(response);
  EXPECT_EQ(body["answer"], "echo: what is a thalamus");
  EXPECT_EQ(body["finish_reason"], "stop");
  EXPECT_EQ(body["citations"][0]["score"], 0.3);
  EXPECT_EQ(body["citations"][0]["chunk_id"], 7);
  const json& trace = body["trace"];
  EXPECT_EQ(trace["gate"][0]["service"], "echo");
  EXPECT_EQ(trace["gate"][0]["probability"], 0.75);
  EXPECT_EQ(trace["chosen"], json::array({"echo"}));
  EXPECT_EQ(trace["plan"], "direct");
  EXPECT_EQ(trace["experts"][0]["worker"], "host:42");
  EXPECT_EQ(trace["experts"][0]["status"], "ok");
  EXPECT_EQ(trace["experts"][0]["latency_ms"], 1.5);
  EXPECT_EQ(trace["experts"][0]["attempts"], 1);
  EXPECT_EQ(trace["total_ms"], 2.5);
  wire::QueryT seen = server.service.queries().at(0);
  EXPECT_EQ(seen.deadline_ms, 500u);
  EXPECT_TRUE(seen.with_trace);
}

TEST(HttpServerTest, ModelsListsEveryService) {
  TestServer server;
  TestClient client(server.port());
  Response response = client.Get("/v1/models");
  ASSERT_EQ(response.result_int(), 200);
  json body = Json(response);
  EXPECT_EQ(body["object"], "list");
  ASSERT_EQ(body["data"].size(), 2u);
  EXPECT_EQ(body["data"][0]["id"], "echo");
  EXPECT_EQ(body["data"][0]["object"], "model");
  EXPECT_EQ(body["data"][0]["owned_by"], "thalamus");
  EXPECT_EQ(body["data"][0]["live_workers"], 2);
  EXPECT_EQ(body["data"][1]["id"], "docs");
  EXPECT_EQ(body["data"][1]["kind"], "rag");
  EXPECT_EQ(body["data"][1]["description"], "product manuals");
}

TEST(HttpServerTest, HealthAndReadiness) {
  TestServer server;
  TestClient client(server.port());
  Response health = client.Get("/healthz");
  EXPECT_EQ(health.result_int(), 200);
  EXPECT_EQ(Json(health)["status"], "ok");

  server.service.SetReady(false);
  Response not_ready = client.Get("/readyz");
  EXPECT_EQ(not_ready.result_int(), 503);
  EXPECT_EQ(Json(not_ready)["status"], "not_ready");
  EXPECT_EQ(Json(not_ready)["services"]["echo"]["live_workers"], 0);

  server.service.SetReady(true);
  Response ready = client.Get("/readyz");
  EXPECT_EQ(ready.result_int(), 200);
  EXPECT_EQ(Json(ready)["services"]["echo"]["live_workers"], 2);
  EXPECT_EQ(Json(ready)["services"]["docs"]["queued"], 3);
  EXPECT_EQ(client.Get("/healthz?verbose=1").result_int(), 200);  // a query string is no new route
}

TEST(HttpServerTest, MetricsCountRequestsByRouteAndStatus) {
  TestServer server;
  TestClient client(server.port());
  json chat = {{"messages", {{{"role", "user"}, {"content", "x"}}}}};
  ASSERT_EQ(client.Post("/v1/chat/completions", chat).result_int(), 200);
  ASSERT_EQ(client.Post("/v1/chat/completions", chat).result_int(), 200);
  ASSERT_EQ(client.Get("/nowhere/at/all").result_int(), 404);
  Response metrics = client.Get("/metrics");
  ASSERT_EQ(metrics.result_int(), 200);
  EXPECT_EQ(metrics[http::field::content_type], "text/plain; version=0.0.4; charset=utf-8");
  const std::string& text = metrics.body();
  EXPECT_NE(text.find(R"(thalamus_http_requests_total{endpoint="/v1/chat/completions",status="200"} 2)"),
            std::string::npos)
      << text;
  // Unknown paths share one label so clients cannot blow up the series count.
  EXPECT_NE(text.find(R"(thalamus_http_requests_total{endpoint="other",status="404"} 1)"), std::string::npos);
  EXPECT_NE(text.find(R"(thalamus_http_request_duration_seconds_count{endpoint="/v1/chat/completions"} 2)"),
            std::string::npos);
  EXPECT_EQ(text.find("nowhere"), std::string::npos);
}

TEST(HttpServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  TestServer server;
  TestClient client(server.port());
  for (int i = 0; i < 5; ++i) {
    Response chat =
        client.Post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", std::to_string(i)}}}}});
    ASSERT_EQ(chat.result_int(), 200);
    EXPECT_TRUE(chat.keep_alive());
    EXPECT_EQ(Json(chat)["choices"][0]["message"]["content"], "echo: " + std::to_string(i));
    ASSERT_EQ(client.Get("/v1/models").result_int(), 200);
    ASSERT_EQ(client.Post("/v1/chat/completions", json::object()).result_int(), 400);
  }
}

TEST(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  TestServer server;
  TestClient client(server.port());
  std::string body = R"({"prompt":"a"})";
  std::string one =
      "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  client.WriteRaw(one + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + one);
  EXPECT_EQ(Json(client.ReadResponse())["choices"][0]["text"], "echo: a");
  EXPECT_EQ(Json(client.ReadResponse())["status"], "ok");
  EXPECT_EQ(Json(client.ReadResponse())["choices"][0]["text"], "echo: a");
}

TEST(HttpServerTest, ExpectContinueGetsAnInterimAnswer) {
  TestServer server;
  TestClient client(server.port());
  std::string body = R"({"prompt":"later"})";
  client.WriteRaw(
      "POST /v1/completions HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
      "Content-Type: application/json\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n");
  http::response_parser<http::empty_body> interim;
  http::read_header(client.socket(), client.buffer(), interim);
  EXPECT_EQ(interim.get().result(), http::status::continue_);
  client.WriteRaw(body);
  Response response = client.ReadResponse();
  ASSERT_EQ(response.result_int(), 200);
  EXPECT_EQ(Json(response)["choices"][0]["text"], "echo: later");
}

TEST(HttpServerTest, ConnectionCloseIsHonoured) {
  TestServer server;
  TestClient client(server.port());
  client.WriteRaw("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  Response response = client.ReadResponse();
  EXPECT_EQ(response.result_int(), 200);
  EXPECT_FALSE(response.keep_alive());
  EXPECT_EQ(client.ReadUntilClosed(), "");
}

TEST(HttpServerTest, ManyClientsAtOnce) {
  TestServer server(1 << 20, /*threads=*/4);
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      TestClient client(server.port());
      for (int i = 0; i < 20; ++i) {
        std::string prompt = std::to_string(t) + "/" + std::to_string(i);
        Response response = client.Post("/v1/completions", {{"prompt", prompt}});
        if (response.result_int() == 200 && Json(response)["choices"][0]["text"] == "echo: " + prompt) ++ok;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(ok.load(), 160);
}

}  // namespace
}  // namespace thalamus::frontends::testing
