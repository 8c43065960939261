// HttpServer over real loopback sockets: `stream: true` as server-sent events.
#include <gtest/gtest.h>

#include <boost/beast/core.hpp>

#include "tests/frontends/http_test_util.h"

namespace thalamus::frontends::testing {
namespace {

using nlohmann::json;

json ChatRequest(const std::string& content, bool stream = true) {
  return {{"messages", {{{"role", "user"}, {"content", content}}}}, {"stream", stream}};
}

std::string ChatContent(const std::vector<json>& events) {
  std::string text;
  for (const json& event : events) {
    if (event.is_object() && event.contains("choices") && !event["choices"].empty()) {
      text += event["choices"][0]["delta"].value("content", "");
    }
  }
  return text;
}

using Parser = http::response_parser<http::string_body>;

// Sends `request` and reads the answer's header and body up to the first
// complete event; the rest stays unread on the socket.
void ReadFirstEvent(TestClient& client, const json& request, Parser& parser) {
  std::string body = request.dump();
  client.WriteRaw(
      "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body);
  http::read_header(client.socket(), client.buffer(), parser);
  while (parser.get().body().find("\n\n") == std::string::npos) {
    http::read_some(client.socket(), client.buffer(), parser);
  }
}

TEST(HttpStreamTest, ChatStreamSendsChunksEndingInDone) {
  TestServer server;
  server.service.SetScript({.partials = 3});
  TestClient client(server.port());
  Response response = client.Post("/v1/chat/completions", ChatRequest("stream me"));
  ASSERT_EQ(response.result_int(), 200) << response.body();
  EXPECT_EQ(response[http::field::content_type], "text/event-stream");
  EXPECT_TRUE(response.chunked());
  std::vector<json> events = ParseEvents(response.body());
  ASSERT_EQ(events.size(), 5u);  // 3 deltas, the finish chunk, [DONE]
  EXPECT_EQ(events[0]["object"], "chat.completion.chunk");
  EXPECT_EQ(events[0]["choices"][0]["delta"]["role"], "assistant");
  EXPECT_FALSE(events[1]["choices"][0]["delta"].contains("role"));
  EXPECT_TRUE(events[0]["choices"][0]["finish_reason"].is_null());
  EXPECT_EQ(events[0]["id"], events[3]["id"]);
  EXPECT_EQ(events[3]["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(events[4], "[DONE]");
  EXPECT_EQ(ChatContent(events), "echo: stream me");
  EXPECT_TRUE(server.service.queries().at(0).stream);
}

TEST(HttpStreamTest, UsageChunkWhenAsked) {
  TestServer server;
  TestClient client(server.port());
  json request = ChatRequest("count");
  request["stream_options"] = {{"include_usage", true}};
  std::vector<json> events = ParseEvents(client.Post("/v1/chat/completions", request).body());
  ASSERT_GE(events.size(), 3u);
  const json& usage = events[events.size() - 2];
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["total_tokens"], 5 + 11);  // "count", "echo: count"
}

TEST(HttpStreamTest, CompletionsStreamText) {
  TestServer server;
  server.service.SetScript({.partials = 2});
  TestClient client(server.port());
  std::vector<json> events = ParseEvents(client.Post("/v1/completions", {{"prompt", "abc"}, {"stream", true}}).body());
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0]["object"], "text_completion");
  EXPECT_EQ(events[0]["choices"][0]["text"].get<std::string>() + events[1]["choices"][0]["text"].get<std::string>(),
            "echo: abc");
  EXPECT_EQ(events[2]["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(events[3], "[DONE]");
}

TEST(HttpStreamTest, NativeQueryStreamsDeltasThenTheResult) {
  TestServer server;
  server.service.SetScript({.partials = 2});
  TestClient client(server.port());
  std::vector<json> events = ParseEvents(client.Post("/v1/query", {{"prompt", "q"}, {"stream", true}}).body());
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0]["object"], "thalamus.query.delta");
  EXPECT_EQ(events[0]["delta"].get<std::string>() + events[1]["delta"].get<std::string>(), "echo: q");
  EXPECT_EQ(events[2]["object"], "thalamus.query.result");
  EXPECT_EQ(events[2]["answer"], "echo: q");
  EXPECT_EQ(events[2]["trace"]["chosen"][0], "echo");
  EXPECT_EQ(events[3], "[DONE]");
}

TEST(HttpStreamTest, EachPartialIsSentAsItArrives) {
  TestServer server;
  server.service.SetScript({.partials = 3, .hold_after_first_partial = true});
  TestClient client(server.port());
  // The service is holding after its first partial: that event must already
  // be on the wire.
  Parser parser;
  ReadFirstEvent(client, ChatRequest("abcdefghi"), parser);
  std::vector<json> first = ParseEvents(parser.get().body());
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0]["choices"][0]["delta"]["content"], "echo:");
  server.service.Release();
  http::read(client.socket(), client.buffer(), parser);
  std::vector<json> events = ParseEvents(parser.get().body());
  EXPECT_EQ(ChatContent(events), "echo: abcdefghi");
  EXPECT_EQ(events.back(), "[DONE]");
}

TEST(HttpStreamTest, SplitCharactersAreReassembled) {
  TestServer server;
  // "é" is C3 A9 and "€" is E2 82 AC; the partials cut both in half.
  server.service.SetScript({.answer = "caf\xC3\xA9 \xE2\x82\xAC", .pieces = {"caf\xC3", "\xA9 \xE2\x82", "\xAC"}});
  TestClient client(server.port());
  std::vector<json> events = ParseEvents(client.Post("/v1/chat/completions", ChatRequest("x")).body());
  std::string text;
  for (const json& event : events) {
    if (!event.is_object()) continue;
    std::string piece = event["choices"][0]["delta"].value("content", "");
    EXPECT_EQ(piece.find("\xEF\xBF\xBD"), std::string::npos) << "a replacement character in " << piece;
    text += piece;
  }
  EXPECT_EQ(text, "caf\xC3\xA9 \xE2\x82\xAC");
}

TEST(HttpStreamTest, FailureBeforeAnyPartialIsAPlainError) {
  TestServer server;
  server.service.SetScript(
      {.status = wire::StatusCode::UNAVAILABLE, .error = "no live worker for echo", .retry_after_ms = 1500});
  TestClient client(server.port());
  Response response = client.Post("/v1/chat/completions", ChatRequest("x"));
  EXPECT_EQ(response.result_int(), 503);
  EXPECT_EQ(response[http::field::retry_after], "2");
  EXPECT_EQ(response[http::field::content_type], "application/json");
  EXPECT_EQ(Json(response)["error"]["code"], "unavailable");
  EXPECT_EQ(Json(response)["error"]["message"], "no live worker for echo");
}

TEST(HttpStreamTest, FailureAfterPartialsIsAnErrorEvent) {
  TestServer server;
  server.service.SetScript(
      {.partials = 2, .status = wire::StatusCode::EXPERT_FAILED, .error = "worker died", .fail_after_partials = true});
  TestClient client(server.port());
  Response response = client.Post("/v1/chat/completions", ChatRequest("abc"));
  ASSERT_EQ(response.result_int(), 200);  // the status line left before the failure
  std::vector<json> events = ParseEvents(response.body());
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[2]["error"]["code"], "expert_failed");
  EXPECT_EQ(events[2]["error"]["message"], "worker died");
  EXPECT_EQ(events[2]["error"]["type"], "server_error");
  EXPECT_EQ(events[3], "[DONE]");
  // The metrics record what happened, not the 200 already sent. The session
  // counts a request before it reads the next one on the connection.
  ASSERT_EQ(client.Get("/healthz").result_int(), 200);
  EXPECT_NE(server.metrics.Serialize().find(
                R"(thalamus_http_requests_total{endpoint="/v1/chat/completions",status="502"} 1)"),
            std::string::npos);
}

TEST(HttpStreamTest, ConnectionKeepsServingAfterAStream) {
  TestServer server;
  TestClient client(server.port());
  for (int i = 0; i < 3; ++i) {
    Response stream = client.Post("/v1/chat/completions", ChatRequest("s" + std::to_string(i)));
    ASSERT_EQ(stream.result_int(), 200);
    EXPECT_EQ(ChatContent(ParseEvents(stream.body())), "echo: s" + std::to_string(i));
    Response plain = client.Post("/v1/chat/completions", ChatRequest("p", false));
    EXPECT_EQ(Json(plain)["choices"][0]["message"]["content"], "echo: p");
  }
}

TEST(HttpStreamTest, Http10ClientsGetAStreamEndedByClose) {
  TestServer server;
  TestClient client(server.port());
  std::string body = ChatRequest("old").dump();
  client.WriteRaw(
      "POST /v1/chat/completions HTTP/1.0\r\nContent-Type: application/json\r\n"
      "Content-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body);
  std::string raw = client.ReadUntilClosed();
  size_t head_end = raw.find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos) << raw;
  std::string head = raw.substr(0, head_end);
  EXPECT_EQ(head.rfind("HTTP/1.0 200", 0), 0u) << head;
  EXPECT_EQ(head.find("chunked"), std::string::npos) << head;
  std::vector<json> events = ParseEvents(raw.substr(head_end + 4));
  EXPECT_EQ(ChatContent(events), "echo: old");
  EXPECT_EQ(events.back(), "[DONE]");
}

TEST(HttpStreamTest, ClientClosingMidStreamIsHarmless) {
  TestServer server;
  server.service.SetScript({.partials = 200, .delay = std::chrono::milliseconds(2)});
  std::string long_prompt(400, 'z');
  for (int i = 0; i < 3; ++i) {
    TestClient client(server.port());
    Parser parser;
    ReadFirstEvent(client, ChatRequest(long_prompt), parser);
    client.socket().close();
  }
  ASSERT_TRUE(server.service.WaitIdle());
  TestClient client(server.port());
  EXPECT_EQ(client.Get("/healthz").result_int(), 200);
  std::string metrics = server.metrics.Serialize();
  EXPECT_NE(metrics.find(R"(thalamus_http_requests_total{endpoint="/v1/chat/completions",status="499"} 3)"),
            std::string::npos)
      << metrics;
}

TEST(HttpStreamTest, StopEndsStreamsInFlight) {
  TestServer server;
  server.service.SetScript({.partials = 3, .hold_after_first_partial = true});
  TestClient client(server.port());
  Parser parser;
  ReadFirstEvent(client, ChatRequest("abcdef"), parser);
  server.server->Stop();
  boost::beast::error_code ec;
  http::read(client.socket(), client.buffer(), parser, ec);
  EXPECT_TRUE(ec) << "the stream should end with the server";
  EXPECT_EQ(parser.get().body().find("[DONE]"), std::string::npos);
  // The query finishes after the server stopped; its callbacks are dropped.
  server.service.Release();
  EXPECT_TRUE(server.service.WaitIdle());
  server.server.reset();
}

TEST(HttpStreamTest, ServiceMayAnswerAfterTheServerIsGone) {
  ScriptedQueryService service;
  service.SetScript({.partials = 3, .hold_after_first_partial = true});
  {
    router::EventLoop loop;
    loop.Start();
    router::Metrics metrics;
    config::HttpConfig config;
    config.port = 0;
    config.threads = DefaultHttpThreads();
    HttpServer server(config, service, metrics, &loop);
    server.Start();
    TestClient client(server.port());
    Parser parser;
    ReadFirstEvent(client, ChatRequest("abcdef"), parser);
  }  // server, metrics and loop destroyed while the query still runs
  service.Release();
  EXPECT_TRUE(service.WaitIdle());
}

}  // namespace
}  // namespace thalamus::frontends::testing
