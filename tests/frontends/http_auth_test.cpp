// HTTP API keys: 401 without a valid bearer key, open endpoints as
// configured, per-key request limits answered 429 with Retry-After, metrics
// by key name and never the key.
#include <gtest/gtest.h>

#include "security/api_keys.h"
#include "tests/frontends/http_test_util.h"
#include "tests/support/process.h"

namespace thalamus::frontends::testing {
namespace {

using nlohmann::json;

class HttpAuthTest : public ::testing::Test {
 protected:
  HttpAuthTest()
      : key_(security::NewApiKey()),
        limited_(security::NewApiKey()),
        keys_file_(dir_.Write("api-keys", "# test keys\n" + security::ApiKeyLine("team-a", key_, 0, 0) +
                                              security::ApiKeyLine("batch", limited_, 1, 0))) {}

  std::unique_ptr<TestServer> Start(bool metrics_open) {
    return std::make_unique<TestServer>(1 << 20, DefaultHttpThreads(), [&](config::HttpConfig& config) {
      config.api_keys = keys_file_;
      config.open_metrics = metrics_open;
    });
  }

  thalamus::testing::TempDir dir_;
  std::string key_;
  std::string limited_;
  std::string keys_file_;
};

const json kChat = {{"messages", json::array({{{"role", "user"}, {"content", "hi"}}})}};

TEST_F(HttpAuthTest, QueriesNeedAValidBearerKey) {
  auto server = Start(/*metrics_open=*/true);
  TestClient client(server->port());
  Response none = client.Post("/v1/chat/completions", kChat);
  EXPECT_EQ(none.result_int(), 401);
  EXPECT_EQ(Json(none)["error"]["code"], "invalid_api_key");
  EXPECT_EQ(Json(none)["error"]["type"], "invalid_request_error");
  client.authorization = "Bearer " + key_ + "x";
  EXPECT_EQ(client.Post("/v1/chat/completions", kChat).result_int(), 401);
  client.authorization = "Basic " + key_;
  EXPECT_EQ(client.Get("/v1/models").result_int(), 401);
  client.authorization = "Bearer " + key_;
  EXPECT_EQ(client.Post("/v1/chat/completions", kChat).result_int(), 200);
  EXPECT_EQ(client.Get("/v1/models").result_int(), 200);
  client.authorization = "bearer " + key_;  // the scheme is case-insensitive
  EXPECT_EQ(client.Post("/v1/query", {{"prompt", "x"}}).result_int(), 200);

  client.authorization.clear();
  EXPECT_EQ(client.Get("/healthz").result_int(), 200);
  EXPECT_EQ(client.Get("/readyz").result_int(), 200);
  const std::string metrics = client.Get("/metrics").body();
  EXPECT_NE(metrics.find("thalamus_api_key_requests_total{key=\"team-a\",status=\"200\"} 3"), std::string::npos);
  EXPECT_NE(metrics.find("thalamus_auth_failures_total{endpoint=\"http\"} 3"), std::string::npos);
  EXPECT_EQ(metrics.find(key_), std::string::npos);
}

TEST_F(HttpAuthTest, ClosedEndpointsNeedAKeyToo) {
  auto server = Start(/*metrics_open=*/false);
  TestClient client(server->port());
  EXPECT_EQ(client.Get("/metrics").result_int(), 401);
  client.authorization = "Bearer " + key_;
  EXPECT_EQ(client.Get("/metrics").result_int(), 200);
}

TEST_F(HttpAuthTest, AKeyOverItsRequestsPerMinuteGets429WithRetryAfter) {
  auto server = Start(/*metrics_open=*/true);
  TestClient client(server->port());
  client.authorization = "Bearer " + limited_;
  EXPECT_EQ(client.Post("/v1/chat/completions", kChat).result_int(), 200);
  Response limited = client.Post("/v1/chat/completions", kChat);
  EXPECT_EQ(limited.result_int(), 429);
  EXPECT_EQ(Json(limited)["error"]["code"], "rate_limit_exceeded");
  const int retry_after = std::stoi(std::string(limited[http::field::retry_after]));
  EXPECT_GE(retry_after, 1);
  EXPECT_LE(retry_after, 60);
  client.authorization = "Bearer " + key_;  // other keys are not held back
  EXPECT_EQ(client.Post("/v1/chat/completions", kChat).result_int(), 200);
}

TEST(HttpAuthStart, ABadKeysFileStopsTheServerNamingIt) {
  thalamus::testing::TempDir dir;
  const std::string file = dir.Write("keys", "team-a sha256:nothex\n");
  try {
    TestServer server(1 << 20, DefaultHttpThreads(), [&](config::HttpConfig& config) { config.api_keys = file; });
    FAIL() << "a malformed keys file was accepted";
  } catch (const security::KeyError& e) {
    EXPECT_NE(std::string(e.what()).find(file + ":1:"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace thalamus::frontends::testing
