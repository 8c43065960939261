// HttpServer over real loopback sockets: every kind of bad request gets a
// clear answer, and nothing a client sends brings the server down.
#include <gtest/gtest.h>

#include <random>

#include "tests/frontends/http_test_util.h"

namespace thalamus::frontends::testing {
namespace {

using nlohmann::json;

void ExpectError(const Response& response, int status, const std::string& code, const std::string& message_part = {}) {
  EXPECT_EQ(response.result_int(), status) << response.body();
  EXPECT_EQ(response[http::field::content_type], "application/json");
  json body = Json(response);
  ASSERT_TRUE(body["error"].is_object()) << response.body();
  EXPECT_EQ(body["error"]["code"], code) << response.body();
  EXPECT_TRUE(body["error"]["type"].is_string());
  EXPECT_NE(body["error"]["message"].get<std::string>().find(message_part), std::string::npos)
      << body["error"]["message"];
}

TEST(HttpErrorsTest, BadJsonIs400) {
  TestServer server;
  TestClient client(server.port());
  ExpectError(client.Request(http::verb::post, "/v1/chat/completions", "{\"messages\": [}"), 400, "invalid_json",
              "invalid JSON body");
  ExpectError(client.Request(http::verb::post, "/v1/query", ""), 400, "invalid_json");
  ExpectError(client.Request(http::verb::post, "/v1/query", "[1,2]"), 400, "invalid_json", "must be a JSON object");
}

TEST(HttpErrorsTest, InvalidFieldsAre400NamingTheField) {
  TestServer server;
  TestClient client(server.port());
  Response response =
      client.Post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "x"}}}}, {"temperature", -1}});
  ExpectError(response, 400, "bad_request", "temperature");
  EXPECT_EQ(Json(response)["error"]["param"], "temperature");
  EXPECT_EQ(Json(response)["error"]["type"], "invalid_request_error");
  ExpectError(client.Post("/v1/chat/completions", {{"messages", {{{"role", "wizard"}, {"content", "x"}}}}}), 400,
              "bad_request", "messages[0].role");
  ExpectError(client.Post("/v1/completions", {{"prompt", "x"}, {"max_tokens", 0}}), 400, "bad_request", "max_tokens");
  EXPECT_TRUE(server.service.queries().empty()) << "invalid requests must not reach the service";
}

TEST(HttpErrorsTest, QueryFailuresMapToTheirStatus) {
  struct Case {
    wire::StatusCode code;
    int status;
    const char* retry_after;
  };
  const Case cases[] = {
      {wire::StatusCode::OVERLOADED, 429, "3"},       {wire::StatusCode::UNAVAILABLE, 503, "3"},
      {wire::StatusCode::DEADLINE_EXCEEDED, 504, ""}, {wire::StatusCode::NOT_FOUND, 404, ""},
      {wire::StatusCode::EXPERT_FAILED, 502, ""},     {wire::StatusCode::CONTEXT_TOO_LONG, 400, ""},
      {wire::StatusCode::INTERNAL, 500, ""},
  };
  TestServer server;
  TestClient client(server.port());
  for (const Case& c : cases) {
    server.service.SetScript({.status = c.code, .error = "scripted", .retry_after_ms = 2001});
    Response response = client.Post("/v1/completions", {{"prompt", "x"}});
    ExpectError(response, c.status, messages::StatusName(c.code), "scripted");
    EXPECT_EQ(response[http::field::retry_after], c.retry_after) << messages::StatusName(c.code);
  }
}

TEST(HttpErrorsTest, UnknownPathIs404) {
  TestServer server;
  TestClient client(server.port());
  ExpectError(client.Get("/v2/chat"), 404, "not_found", "/v2/chat");
  ExpectError(client.Request(http::verb::post, "/v1/chat/completions/", "{}"), 404, "not_found");
}

TEST(HttpErrorsTest, WrongMethodIs405WithAllow) {
  TestServer server;
  TestClient client(server.port());
  Response get_chat = client.Get("/v1/chat/completions");
  ExpectError(get_chat, 405, "method_not_allowed");
  EXPECT_EQ(get_chat[http::field::allow], "POST");
  Response post_health = client.Request(http::verb::post, "/healthz", "{}");
  ExpectError(post_health, 405, "method_not_allowed");
  EXPECT_EQ(post_health[http::field::allow], "GET");
  EXPECT_EQ(client.Request(http::verb::delete_, "/v1/models").result_int(), 405);
}

TEST(HttpErrorsTest, OversizedBodyIs413AndClosesTheConnection) {
  TestServer server(/*max_body_bytes=*/1024);
  {
    TestClient client(server.port());
    json request = {{"prompt", std::string(4000, 'x')}};
    Response response = client.Post("/v1/completions", request);
    ExpectError(response, 413, "body_too_large", "1024 bytes");
    EXPECT_FALSE(response.keep_alive());
    EXPECT_EQ(client.ReadUntilClosed(), "");
  }
  {
    // A chunked body announces no length; the limit applies as it arrives.
    TestClient client(server.port());
    std::string chunk(900, ' ');
    std::string hex = "384";  // 900
    client.WriteRaw(
        "POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        "Content-Type: application/json\r\n\r\n" +
        hex + "\r\n" + chunk + "\r\n" + hex + "\r\n" + chunk + "\r\n0\r\n\r\n");
    ExpectError(client.ReadResponse(), 413, "body_too_large");
  }
  TestClient client(server.port());
  EXPECT_EQ(client.Post("/v1/completions", {{"prompt", "small"}}).result_int(), 200);
}

TEST(HttpErrorsTest, OnlyJsonContentIsAccepted) {
  TestServer server;
  TestClient client(server.port());
  const std::string body = R"({"prompt":"x"})";
  ExpectError(client.Request(http::verb::post, "/v1/completions", body, "text/plain"), 415, "unsupported_media_type",
              "text/plain");
  ExpectError(client.Request(http::verb::post, "/v1/completions", body, "application/x-www-form-urlencoded"), 415,
              "unsupported_media_type");
  ExpectError(client.Request(http::verb::post, "/v1/completions", body, "application/json; charset=latin1"), 415,
              "unsupported_media_type");
  EXPECT_EQ(client.Request(http::verb::post, "/v1/completions", body, "application/json; charset=utf-8").result_int(),
            200);
  EXPECT_EQ(
      client.Request(http::verb::post, "/v1/completions", body, "Application/JSON;charset=\"UTF-8\"").result_int(),
      200);
}

TEST(HttpErrorsTest, MalformedHttpIs400) {
  TestServer server;
  TestClient client(server.port());
  client.WriteRaw("GARBAGE GARBAGE GARBAGE\r\n\r\n");
  Response response = client.ReadResponse();
  EXPECT_EQ(response.result_int(), 400);
  EXPECT_FALSE(response.keep_alive());
}

TEST(HttpErrorsTest, RandomBytesNeverBringTheServerDown) {
  TestServer server;
  std::mt19937 random(1234);
  const std::string prefixes[] = {"", "POST /v1/chat/completions HTTP/1.1\r\n",
                                  "POST /v1/query HTTP/1.1\r\nContent-Length: 40\r\n\r\n",
                                  "GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"};
  for (int i = 0; i < 200; ++i) {
    TestClient client(server.port());
    std::string bytes = prefixes[i % 4];
    int n = static_cast<int>(random() % 300);
    for (int j = 0; j < n; ++j) bytes.push_back(static_cast<char>(random() % 256));
    client.WriteRaw(bytes);
    client.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_send);
    client.ReadUntilClosed();  // whatever the answer, the server must close, not hang
  }
  TestClient client(server.port());
  EXPECT_EQ(client.Get("/healthz").result_int(), 200);
}

TEST(HttpErrorsTest, HostileJsonGets400) {
  TestServer server;
  TestClient client(server.port());
  std::string deep(100000, '[');
  ExpectError(client.Request(http::verb::post, "/v1/query", deep), 400, "invalid_json");
  ExpectError(client.Request(http::verb::post, "/v1/query", "{\"prompt\": \"\xff\xfe\"}"), 400, "invalid_json");
  ExpectError(client.Post("/v1/query", {{"prompt", "x"}, {"max_tokens", 1e300}}), 400, "bad_request", "max_tokens");
  EXPECT_EQ(client.Get("/healthz").result_int(), 200);
}

}  // namespace
}  // namespace thalamus::frontends::testing
