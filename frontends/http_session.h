// One HTTP connection of the HttpServer (private to frontends/): reads requests
// one at a time (HTTP/1.1 keep-alive), routes them, submits queries to the
// QueryService and writes answers, streamed ones as chunked server-sent events.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "config/config.h"
#include "router/metrics.h"
#include "router/query_service.h"
#include "security/api_keys.h"

namespace thalamus::frontends::http_internal {

// QueryService callbacks may outlive the server, and so may a closed
// connection's last handlers where the loop keeps running (http.threads: 0);
// what they do with the service or the metrics passes through this gate,
// which the server closes before it tears its connections down.
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

// An open connection, as the server sees it.
class Connection {
 public:
  virtual ~Connection() = default;
  // Closes the socket and cancels the connection's waits. On the
  // connection's executor only.
  virtual void Shutdown() = 0;
};

// The open connections of one server, so that Stop() can close them where
// their io_context keeps running (http.threads: 0). Thread-safe.
class ConnectionSet {
 public:
  void Add(const std::shared_ptr<Connection>& connection);
  void Remove(const Connection* connection);
  // Shuts down every connection; call on their executor's thread.
  void ShutdownAll();
  size_t size();

 private:
  std::mutex mu_;
  std::unordered_map<const Connection*, std::weak_ptr<Connection>> live_;
};

// What every session shares with the server.
struct ServerContext {
  config::HttpConfig config;
  router::QueryService& service;
  router::Metrics& metrics;
  int64_t started_unix = 0;  // "created" of /v1/models entries
  std::shared_ptr<CallbackGate> gate = std::make_shared<CallbackGate>();
  std::shared_ptr<ConnectionSet> connections = std::make_shared<ConnectionSet>();
  std::shared_ptr<security::ApiKeys> api_keys;  // null: no authentication
};

// A connection's socket, on its io_context's own executor type rather than
// the type-erased any_io_executor: every asynchronous operation copies and
// calls the executor, and the type erasure showed in perf under load.
using SessionSocket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, boost::asio::io_context::executor_type>;

// Starts serving one accepted connection; the session owns itself through
// its pending asynchronous operations. `socket`'s io_context must be run by
// one thread, so that the session's handlers run one at a time.
void StartSession(SessionSocket socket, std::shared_ptr<const ServerContext> context);

}  // namespace thalamus::frontends::http_internal
