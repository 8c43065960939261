// ZmqFrontend: the ZeroMQ ROUTER front end. Clients (DEALER or REQ) send an
// Envelope holding a Query; the answer comes back as Envelopes holding
// Partials (when query.stream, request_id = client_request_id) and one final
// QueryResult, each prefixed with the client's own routing frames. REQ
// clients must not ask for streaming (REQ takes one reply). A frame that is
// not a valid Query (messages::Decode) gets a QueryResult with BAD_REQUEST
// naming what is wrong, and counts in thalamus_invalid_frames_total. Lives on the loop;
// borrows the loop, the service and the metrics, which must outlive it.
#pragma once

#include <string>
#include <unordered_map>

#include <zmq.hpp>

#include "router/event_loop.h"
#include "router/metrics.h"
#include "router/query_service.h"
#include "security/curve_keys.h"

namespace thalamus::frontends {

// Bounds that hold against clients that flood or never read.
struct ZmqFrontendOptions {
  std::string endpoint;
  int64_t max_message_bytes = 64 << 20;  // ZMQ_MAXMSGSIZE
  // Queries one client (one ZeroMQ identity) may have unanswered; more are
  // answered OVERLOADED with retry_after_ms at once.
  int max_in_flight_per_client = 64;
  uint32_t retry_after_ms = 1000;
  // Answer frames queued for one client that does not read (ZMQ_SNDHWM);
  // beyond it answers are dropped and counted, not buffered without end.
  int send_high_water_mark = 1000;
  const security::KeyPair* curve = nullptr;  // CURVE server keys, ZAP domain "frontend"; null: plaintext
};

class ZmqFrontend {
 public:
  // Binds options.endpoint now.
  ZmqFrontend(const ZmqFrontendOptions& options, router::EventLoop& loop, router::QueryService& service,
              router::Metrics& metrics);
  // The bound endpoint, with a wildcard port resolved.
  const std::string& endpoint() const { return endpoint_; }

 private:
  void OnReadable();
  void Reply(const std::vector<std::string>& route, const std::string& payload);

  ZmqFrontendOptions options_;
  std::unordered_map<std::string, int> in_flight_;  // per client identity; loop thread only
  router::EventLoop& loop_;
  router::QueryService& service_;
  router::Metrics& metrics_;
  zmq::socket_t socket_;
  std::string endpoint_;
};

}  // namespace thalamus::frontends
