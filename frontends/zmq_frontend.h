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

#include <zmq.hpp>

#include "router/event_loop.h"
#include "router/metrics.h"
#include "router/query_service.h"
#include "security/curve_keys.h"

namespace thalamus::frontends {

class ZmqFrontend {
 public:
  // Binds `endpoint` now.
  // With `curve`, a CURVE server whose clients the ZAP handler checks under
  // the domain "frontend".
  ZmqFrontend(const std::string& endpoint, int64_t max_message_bytes, const security::KeyPair* curve,
              router::EventLoop& loop, router::QueryService& service, router::Metrics& metrics);
  // The bound endpoint, with a wildcard port resolved.
  const std::string& endpoint() const { return endpoint_; }

 private:
  void OnReadable();
  void Reply(const std::vector<std::string>& route, const std::string& payload);

  router::EventLoop& loop_;
  router::QueryService& service_;
  router::Metrics& metrics_;
  zmq::socket_t socket_;
  std::string endpoint_;
};

}  // namespace thalamus::frontends
