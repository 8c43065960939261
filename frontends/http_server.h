// http_server: the router's HTTP front end (Boost.Beast, HTTP/1.1 keep-alive).
//
// Endpoints: the OpenAI-compatible POST /v1/chat/completions, POST
// /v1/completions and GET /v1/models; the native POST /v1/query (answer plus
// trace); GET /healthz, GET /readyz and GET /metrics. `stream: true` answers
// as server-sent events ending in `data: [DONE]`. Every request is counted in
// Metrics::ObserveHttp under its route. Bad requests get OpenAI-style JSON
// errors (400, 404, 405, 413, 415, ...); a failed query answers with the
// status its code maps to, plus Retry-After for OVERLOADED and UNAVAILABLE.
//
// Connections are served on http.threads I/O threads of the server's own, or
// with http.threads: 0 on the router's event loop thread (fewer thread
// hand-offs per request; a request's JSON is then parsed on that thread too).
//
// The server borrows the QueryService, Metrics and EventLoop, which must
// outlive it; with http.threads: 0 the loop must run until Stop() returns.
// QueryService callbacks may arrive on any thread, also after Stop(): they are
// dropped once the server stopped, so the service may outlive the server.
#pragma once

#include <memory>

#include "config/config.h"
#include "router/event_loop.h"
#include "router/metrics.h"
#include "router/query_service.h"

namespace thalamus::frontends {

class HttpServer {
 public:
  // `loop` may be null when config.threads >= 1. Reads config.api_keys
  // (throws security::KeyError naming the file for a bad one): then every
  // endpoint but the open ones answers 401 without `Authorization: Bearer
  // KEY`, and each key's rpm/tpm limits answer 429 with Retry-After.
  HttpServer(const config::HttpConfig& config, router::QueryService& service, router::Metrics& metrics,
             router::EventLoop* loop = nullptr);
  ~HttpServer();  // Stop()s
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds host:port (port 0: an ephemeral one) and starts `threads` I/O
  // threads. Throws std::runtime_error naming the address when it cannot
  // bind, std::invalid_argument for threads < 0 or threads == 0 without a
  // loop. Call once.
  void Start();
  // The bound port; valid after Start().
  int port() const;
  // Stops accepting, closes every connection (streams in flight end without
  // their [DONE]) and joins the I/O threads. Idempotent.
  void Stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace thalamus::frontends
