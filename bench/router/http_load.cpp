// Closed-loop HTTP clients: keep-alive Boost.Beast connections driven by one io_context thread.
#include <memory>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "bench/router/load.h"

namespace thalamus::bench {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

struct Shared {
  Recorder recorder;
  int outstanding = 0;
  size_t payload_bytes;
  net::steady_timer drain_timer;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(net::io_context& io, Shared& shared, int index) : socket_(io), shared_(shared), index_(index) {}

  // Blocking connect before the load starts, so connecting is not measured.
  void Connect(int port) {
    socket_.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
    socket_.set_option(tcp::no_delay(true));
    request_.method(http::verb::post);
    request_.target("/v1/chat/completions");
    request_.version(11);
    request_.set(http::field::host, "127.0.0.1");
    request_.set(http::field::content_type, "application/json");
    request_.keep_alive(true);
  }

  void SendNext() {
    ++sequence_;
    prompt_ = Prompt(index_, sequence_, shared_.payload_bytes);
    request_.body() = R"({"messages":[{"role":"user","content":")" + prompt_ + R"("}]})";
    request_.prepare_payload();
    response_ = {};
    sent_ = Clock::now();
    shared_.outstanding++;
    http::async_write(socket_, request_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->Fail("write: " + ec.message());
      http::async_read(self->socket_, self->buffer_, self->response_,
                       [self](beast::error_code ec, size_t) { self->OnResponse(ec); });
    });
  }

  void Close() {
    beast::error_code ignored;
    socket_.close(ignored);
  }

 private:
  void OnResponse(beast::error_code ec) {
    const auto answered = Clock::now();
    if (ec) return Fail("read: " + ec.message());
    if (response_.result_int() != 200) return Fail("HTTP " + std::to_string(response_.result_int()) + ": " + response_.body());
    if (!response_.keep_alive()) return Fail("the router closed a keep-alive connection");
    try {
      const auto answer = nlohmann::json::parse(response_.body());
      if (answer.at("choices").at(0).at("message").at("content").get<std::string>() != prompt_) {
        return Fail("the answer is not the echoed prompt: " + response_.body());
      }
    } catch (const std::exception& e) {
      return Fail(std::string("bad answer body: ") + e.what());
    }
    shared_.recorder.Success(sent_, answered);
    Done();
    if (shared_.recorder.Sending(Clock::now())) SendNext();
  }

  // A broken connection stays broken: this client stops, the others go on.
  void Fail(const std::string& error) {
    shared_.recorder.Failure(error);
    Close();
    Done();
  }

  void Done() {
    if (--shared_.outstanding == 0 && !shared_.recorder.Sending(Clock::now())) shared_.drain_timer.cancel();
  }

  tcp::socket socket_;
  Shared& shared_;
  int index_;
  uint64_t sequence_ = 0;
  std::string prompt_;
  Clock::time_point sent_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
};

}  // namespace

LoadResult RunHttpLoad(int port, const LoadOptions& options) {
  net::io_context io(1);
  Shared shared{Recorder(options), 0, options.payload_bytes, net::steady_timer(io)};
  std::vector<std::shared_ptr<Connection>> connections;
  for (int i = 0; i < options.concurrency; ++i) {
    connections.push_back(std::make_shared<Connection>(io, shared, i));
    connections.back()->Connect(port);
  }
  // The recorder's clock started before connecting; connecting is part of the warm-up.
  for (auto& connection : connections) connection->SendNext();
  shared.drain_timer.expires_at(shared.recorder.drain_deadline());
  shared.drain_timer.async_wait([&](beast::error_code ec) {
    if (ec) return;  // cancelled: every answer is in
    for (auto& connection : connections) connection->Close();
  });
  io.run();
  // Closing at the drain deadline fails the reads still open; what is left
  // outstanding was never answered.
  const int lost = shared.outstanding;
  return shared.recorder.Finish(static_cast<uint64_t>(lost < 0 ? 0 : lost));
}

}  // namespace thalamus::bench
