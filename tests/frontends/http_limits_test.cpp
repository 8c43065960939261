// HttpServer bounds against clients that hold connections: http.max_connections
// (a 503 and a close beyond it) and http.read_timeout_ms (a request that does
// not arrive in time closes its connection).
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/frontends/http_test_util.h"

namespace thalamus::frontends::testing {
namespace {

using namespace std::chrono_literals;

TEST(HttpLimitsTest, ConnectionsBeyondTheCapGet503AndAClose) {
  TestServer server(1 << 20, DefaultHttpThreads(), [](config::HttpConfig& config) { config.max_connections = 2; });
  std::vector<std::unique_ptr<TestClient>> held;
  for (int i = 0; i < 2; ++i) {
    held.push_back(std::make_unique<TestClient>(server.port()));
    EXPECT_EQ(held.back()->Get("/healthz").result_int(), 200);  // answered: the session is counted
  }
  TestClient refused(server.port());
  const std::string answer = refused.ReadUntilClosed();
  EXPECT_NE(answer.find("HTTP/1.1 503"), std::string::npos) << answer;
  EXPECT_NE(answer.find("too_many_connections"), std::string::npos) << answer;
  EXPECT_NE(answer.find("Retry-After: 1"), std::string::npos) << answer;
  EXPECT_EQ(held[0]->Get("/healthz").result_int(), 200);  // those in keep serving

  held.pop_back();  // one leaves: a new connection is served again
  bool served = false;
  for (int attempt = 0; attempt < 100 && !served; ++attempt) {
    TestClient next(server.port());
    try {
      served = next.Get("/healthz").result_int() == 200;
    } catch (const std::exception&) {
    }
    // Refused (a 503, or closed at once): the server had not seen the close
    // yet. Wait before the next try, also after a 503, so that a loaded
    // machine gets a second rather than 100 back-to-back tries.
    if (!served) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(served);
  EXPECT_NE(server.metrics.Serialize().find("endpoint=\"connection_limit\",status=\"503\""), std::string::npos);
}

TEST(HttpLimitsTest, ARequestThatDoesNotArriveInTimeClosesTheConnection) {
  TestServer server(1 << 20, DefaultHttpThreads(), [](config::HttpConfig& config) { config.read_timeout_ms = 300; });
  TestClient slow(server.port());
  const auto start = std::chrono::steady_clock::now();
  slow.WriteRaw("POST /v1/query HTTP/1.1\r\nHost: x\r\n");  // the rest never comes
  EXPECT_EQ(slow.ReadUntilClosed(), "");
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, 250ms);
  EXPECT_LT(waited, 5s);

  TestClient idle(server.port());  // keep-alive idle time counts too
  EXPECT_EQ(idle.Get("/healthz").result_int(), 200);
  std::this_thread::sleep_for(600ms);
  EXPECT_EQ(idle.ReadUntilClosed(), "");
}

}  // namespace
}  // namespace thalamus::frontends::testing
