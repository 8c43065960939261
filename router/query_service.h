// The router's core as the front ends see it: submit a query, get streamed
// text and one final result back. Implemented by the gate -> plan -> broker ->
// aggregate pipeline (query_pipeline.h); the HTTP and ZeroMQ front ends only translate.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "messages/messages.h"

namespace thalamus::router {

struct QueryCallbacks {
  // New text of a streamed answer (only when query.stream). May be empty.
  std::function<void(std::string_view text)> on_partial;
  // Called exactly once, last. status != OK carries error and, for
  // OVERLOADED/UNAVAILABLE, retry_after_ms.
  std::function<void(wire::QueryResultT result)> on_result;
};

struct ServiceInfo {
  std::string name;  // the service (expert) name; the OpenAI "model" id
  std::string kind;
  std::string description;
  std::string model;  // what a live worker reported serving
  int live_workers = 0;
  int queued = 0;
  int in_flight = 0;
};

class QueryService {
 public:
  virtual ~QueryService() = default;
  // Never blocks; callbacks run on the router's event loop thread and must
  // not block either (post the work to your own executor). Called on that
  // thread (the HTTP front end with http.threads: 0), Submit may run the
  // callbacks before it returns.
  virtual void Submit(wire::QueryT query, QueryCallbacks callbacks) = 0;
  // The same as Submit, for callers already on the loop thread (the ZeroMQ
  // front end): no check, no hand-off.
  virtual void SubmitInLoop(wire::QueryT query, QueryCallbacks callbacks) = 0;
  // Configured services with their live state.
  virtual std::vector<ServiceInfo> Services() const = 0;
  // Ready: every configured service has at least one live worker.
  virtual bool Ready() const = 0;
};

}  // namespace thalamus::router
