// Helpers for the HttpServer tests: a running server on an ephemeral loopback
// port in front of a ScriptedQueryService (scripted_query_service.h), and a
// synchronous Beast client.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "frontends/http_server.h"
#include "router/event_loop.h"
#include "router/metrics.h"
#include "router/query_service.h"
#include "tests/frontends/scripted_query_service.h"

namespace thalamus::frontends::testing {

namespace http = boost::beast::http;
using Response = http::response<http::string_body>;

// The HTTP I/O threads a TestServer gets by default: 2, or
// THALAMUS_TEST_HTTP_THREADS (CTest runs every HTTP test a second time with 0:
// connections served on an EventLoop's thread, as the router's default is).
int DefaultHttpThreads();

// A started HttpServer on 127.0.0.1 with an ephemeral port; with threads 0 it
// serves on `loop`, which only then runs.
struct TestServer {
  // `configure` changes the config before the server starts (API keys, ...).
  explicit TestServer(size_t max_body_bytes = 1 << 20, int threads = DefaultHttpThreads(),
                      const std::function<void(config::HttpConfig&)>& configure = {});
  ~TestServer();
  int port() const { return server->port(); }

  ScriptedQueryService service;
  router::Metrics metrics;
  router::EventLoop loop;
  std::unique_ptr<HttpServer> server;
};

// One blocking connection; every read times out after 10 s so that a broken
// server fails the test instead of hanging it.
class TestClient {
 public:
  explicit TestClient(int port);
  Response Request(http::verb method, const std::string& target, const std::string& body = {},
                   const std::string& content_type = "application/json");
  Response Post(const std::string& target, const nlohmann::json& body) {
    return Request(http::verb::post, target, body.dump());
  }
  Response Get(const std::string& target) { return Request(http::verb::get, target); }
  // Sent as the Authorization header of every request; "" sends none.
  std::string authorization;
  // Writes bytes as they are, and reads one response.
  void WriteRaw(const std::string& bytes);
  Response ReadResponse();
  // Reads everything until the server closes; "" when it closed at once.
  std::string ReadUntilClosed();
  boost::asio::ip::tcp::socket& socket() { return socket_; }
  boost::beast::flat_buffer& buffer() { return buffer_; }

 private:
  boost::asio::io_context io_;
  boost::asio::ip::tcp::socket socket_;
  boost::beast::flat_buffer buffer_;
};

// The JSON payloads of the "data: " events of a server-sent-event body, with
// the final "[DONE]" kept as the string "[DONE]".
std::vector<nlohmann::json> ParseEvents(const std::string& body);

nlohmann::json Json(const Response& response);

}  // namespace thalamus::frontends::testing
