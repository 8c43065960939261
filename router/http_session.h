// One HTTP connection of the HttpServer (private to router/): reads requests
// one at a time (HTTP/1.1 keep-alive), routes them, submits queries to the
// QueryService and writes answers, streamed ones as chunked server-sent events.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <memory>
#include <mutex>

#include "config/config.h"
#include "router/metrics.h"
#include "router/query_service.h"

namespace thalamus::router::http_internal {

// QueryService callbacks may outlive the server; they pass through this gate,
// which the server closes before it tears its I/O context down.
class CallbackGate {
 public:
  // Runs fn() under the gate's lock unless the gate is closed.
  template <typename Fn>
  void IfOpen(Fn&& fn) {
    std::lock_guard<std::mutex> lock(mu_);
    if (open_) fn();
  }
  // Waits for callbacks inside IfOpen to finish; none runs afterwards.
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = false;
  }

 private:
  std::mutex mu_;
  bool open_ = true;
};

// What every session shares with the server.
struct ServerContext {
  config::HttpConfig config;
  QueryService& service;
  Metrics& metrics;
  int64_t started_unix = 0;  // "created" of /v1/models entries
  std::shared_ptr<CallbackGate> gate = std::make_shared<CallbackGate>();
};

// Starts serving one accepted connection; the session owns itself through
// its pending asynchronous operations. `socket`'s executor must run one
// handler at a time (an io_context run by one thread, or a strand).
void StartSession(boost::asio::ip::tcp::socket socket, std::shared_ptr<const ServerContext> context);

}  // namespace thalamus::router::http_internal
