#include "tests/frontends/http_test_util.h"

#include <cstdlib>

#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <stdexcept>

namespace thalamus::frontends::testing {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

int DefaultHttpThreads() {
  const char* value = std::getenv("THALAMUS_TEST_HTTP_THREADS");
  return value && *value ? std::atoi(value) : 2;
}

TestServer::TestServer(size_t max_body_bytes, int threads, const std::function<void(config::HttpConfig&)>& configure) {
  config::HttpConfig config;
  config.host = "127.0.0.1";
  config.port = 0;
  config.threads = threads;
  config.max_body_bytes = max_body_bytes;
  if (configure) configure(config);
  if (threads == 0) loop.Start();
  server = std::make_unique<HttpServer>(config, service, metrics, threads == 0 ? &loop : nullptr);
  server->Start();
}

TestServer::~TestServer() {
  server.reset();
  loop.Stop();
}

TestClient::TestClient(int port) : socket_(io_) {
  socket_.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
  timeval timeout{10, 0};
  ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
}

Response TestClient::Request(http::verb method, const std::string& target, const std::string& body,
                             const std::string& content_type) {
  http::request<http::string_body> request(method, target, 11);
  request.set(http::field::host, "127.0.0.1");
  if (!authorization.empty()) request.set(http::field::authorization, authorization);
  if (!body.empty() || method == http::verb::post) {
    request.set(http::field::content_type, content_type);
    request.body() = body;
    request.prepare_payload();
  }
  http::write(socket_, request);
  return ReadResponse();
}

void TestClient::WriteRaw(const std::string& bytes) { net::write(socket_, net::buffer(bytes)); }

Response TestClient::ReadResponse() {
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 << 20);
  http::read(socket_, buffer_, parser);
  return parser.release();
}

std::string TestClient::ReadUntilClosed() {
  std::string out(static_cast<const char*>(buffer_.data().data()), buffer_.size());
  buffer_.consume(buffer_.size());
  char chunk[4096];
  while (true) {
    beast::error_code ec;
    size_t n = socket_.read_some(net::buffer(chunk), ec);
    if (ec == net::error::eof || ec == net::error::connection_reset) return out;
    if (ec) throw beast::system_error(ec);
    out.append(chunk, n);
  }
}

std::vector<nlohmann::json> ParseEvents(const std::string& body) {
  std::vector<nlohmann::json> events;
  size_t at = 0;
  while (at < body.size()) {
    size_t end = body.find("\n\n", at);
    if (end == std::string::npos) throw std::runtime_error("unterminated event: " + body.substr(at));
    std::string event = body.substr(at, end - at);
    at = end + 2;
    if (event.rfind("data: ", 0) != 0) throw std::runtime_error("not a data event: " + event);
    std::string payload = event.substr(6);
    events.push_back(payload == "[DONE]" ? nlohmann::json("[DONE]") : nlohmann::json::parse(payload));
  }
  return events;
}

nlohmann::json Json(const Response& response) { return nlohmann::json::parse(response.body()); }

}  // namespace thalamus::frontends::testing
