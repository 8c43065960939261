// HTTP clients: keep-alive connections driven by one io_context thread, in a
// closed loop or paced by a steady_timer in an open loop. Requests go out as
// prebuilt bytes; Boost.Beast parses the answers.
#include <memory>
#include <optional>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "bench/router/load.h"

namespace thalamus::bench {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

class Connection;

struct Shared {
  Shared(net::io_context& io, const LoadOptions& options)
      : recorder(options), payload_bytes(options.payload_bytes), drain_timer(io), pace_timer(io) {}

  Recorder recorder;
  int outstanding = 0;
  size_t payload_bytes;
  net::steady_timer drain_timer;
  // Open loop only: the schedule, the connections with no request in flight
  // (the last one reused first), and the wake-up for the next due request.
  std::optional<Pacer> pacer;
  std::vector<std::shared_ptr<Connection>> idle;
  net::steady_timer pace_timer;
  bool pace_timer_armed = false;
};

void Idle(Shared& shared, std::shared_ptr<Connection> connection);
void StopWhenDone(Shared& shared);

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(net::io_context& io, Shared& shared, int index) : socket_(io), shared_(shared), index_(index) {}

  // Blocking connect before the load starts, so connecting is not measured.
  void Connect(int port) {
    socket_.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
    socket_.set_option(tcp::no_delay(true));
  }

  // `start` is what latency counts from: now, or the open loop's due time.
  void Send(Clock::time_point start) {
    ++sequence_;
    prompt_ = Prompt(index_, sequence_, shared_.payload_bytes);
    // The request's bytes are written as they are, the way wrk or h2load send
    // theirs: Beast's serializer cost this thread, which shares the two cores
    // with the router, several thousand instructions per request.
    const std::string body = R"({"messages":[{"role":"user","content":")" + prompt_ + R"("}]})";
    request_ =
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Content-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body;
    response_ = {};
    start_ = start;
    shared_.outstanding++;
    net::async_write(socket_, net::buffer(request_), [self = shared_from_this()](beast::error_code ec, size_t) {
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
    if (response_.result_int() != 200)
      return Fail("HTTP " + std::to_string(response_.result_int()) + ": " + response_.body());
    if (!response_.keep_alive()) return Fail("the router closed a keep-alive connection");
    // The prompt is plain ASCII letters, digits and spaces, its own JSON
    // string: found as the message content, it is the echo. Parsing every
    // answer into a JSON tree here cost this thread twice the instructions of
    // all the rest of its work per request, CPU the router needs.
    const std::string& body = response_.body();
    const std::string_view content_key = R"("content":")";
    const size_t at = body.find(content_key);
    if (at == std::string::npos || body.compare(at + content_key.size(), prompt_.size(), prompt_) != 0 ||
        body.compare(at + content_key.size() + prompt_.size(), 1, "\"") != 0) {
      return Fail("the answer is not the echoed prompt: " + body);
    }
    shared_.recorder.Success(start_, answered);
    Done();
    Idle(shared_, shared_from_this());
  }

  // A broken connection stays broken: this client stops (it never goes back
  // to the open loop's idle connections), the others go on.
  void Fail(const std::string& error) {
    shared_.recorder.Failure(error);
    Close();
    Done();
  }

  void Done() {
    --shared_.outstanding;
    StopWhenDone(shared_);
  }

  tcp::socket socket_;
  Shared& shared_;
  int index_;
  uint64_t sequence_ = 0;
  std::string prompt_;
  Clock::time_point start_;
  beast::flat_buffer buffer_;
  std::string request_;  // the whole request, head and body
  http::response<http::string_body> response_;
};

void SendDue(Shared& shared);

// Open loop: wakes SendDue at the next due time, unless set for it already.
void ArmPaceTimer(Shared& shared) {
  const Clock::time_point due = shared.pacer->next_due();
  if (shared.pace_timer_armed && shared.pace_timer.expiry() == due) return;
  shared.pace_timer.expires_at(due);  // cancels the wait for an earlier setting
  shared.pace_timer_armed = true;
  shared.pace_timer.async_wait([&shared](beast::error_code ec) {
    if (ec) return;  // cancelled: set again, or the run is over
    shared.pace_timer_armed = false;
    SendDue(shared);
  });
}

// Open loop: sends every request due by now that has an idle connection,
// then sets the timer for the next one, unless no connection is idle: then an
// answer comes first.
void SendDue(Shared& shared) {
  const auto now = Clock::now();
  while (!shared.idle.empty() && shared.recorder.Sending(now) && shared.pacer->Due(now)) {
    std::shared_ptr<Connection> connection = std::move(shared.idle.back());
    shared.idle.pop_back();
    connection->Send(shared.pacer->Take());
  }
  if (!shared.idle.empty() && shared.recorder.Sending(now)) ArmPaceTimer(shared);
  StopWhenDone(shared);
}

// A connection's answer is in: the closed loop asks again at once, the open
// loop puts the connection back for the next due request.
void Idle(Shared& shared, std::shared_ptr<Connection> connection) {
  if (!shared.pacer) {
    if (shared.recorder.Sending(Clock::now())) connection->Send(Clock::now());
    return;
  }
  shared.idle.push_back(std::move(connection));
  SendDue(shared);
}

// Once the window is over and every answer in, lets io.run() return.
void StopWhenDone(Shared& shared) {
  if (shared.outstanding > 0 || shared.recorder.Sending(Clock::now())) return;
  shared.drain_timer.cancel();
  shared.pace_timer.cancel();
}

}  // namespace

LoadResult RunHttpLoad(int port, const LoadOptions& options) {
  net::io_context io(1);
  Shared shared(io, options);
  std::vector<std::shared_ptr<Connection>> connections;
  for (int i = 0; i < options.concurrency; ++i) {
    connections.push_back(std::make_shared<Connection>(io, shared, i));
    connections.back()->Connect(port);
  }
  // The recorder's clock started before connecting; connecting is part of the warm-up.
  if (options.rate > 0) {
    shared.pacer.emplace(Clock::now(), options.rate);
    shared.idle.assign(connections.rbegin(), connections.rend());
    SendDue(shared);
  } else {
    for (auto& connection : connections) connection->Send(Clock::now());
  }
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
