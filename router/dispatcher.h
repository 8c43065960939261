// Dispatcher: how the query pipeline reaches the experts. The broker
// (broker.h) implements it over ZeroMQ; tests of the pipeline implement it
// with fakes, so the pipeline is tested without sockets or processes.
//
// Threading: Dispatch, Cancel, ServicesInLoop and snapshot_version run on
// the event loop thread only; Services and HasLiveWorker on any thread.
// Errors are replies, never exceptions: on_reply gets a status code
// (OVERLOADED and UNAVAILABLE with retry_after_ms, DEADLINE_EXCEEDED,
// CANCELLED, ...).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "messages/messages.h"
#include "router/event_loop.h"
#include "router/query_service.h"

namespace thalamus::router {

struct DispatchOutcome {
  std::string worker;  // hostname:pid of the worker that answered ("" if none)
  uint32_t attempts = 0;
  double latency_ms = 0;
  uint32_t retry_after_ms = 0;  // for OVERLOADED / UNAVAILABLE
};

struct DispatchCallbacks {
  std::function<void(const wire::PartialT& partial)> on_partial;                           // optional
  std::function<void(wire::ExpertReplyT reply, const DispatchOutcome& outcome)> on_reply;  // exactly once
};

class Dispatcher {
 public:
  using Clock = EventLoop::Clock;

  virtual ~Dispatcher() = default;

  // Sends `request` to `service`, answered by the deadline; returns the
  // request id assigned here. on_reply runs exactly once, and may run
  // before Dispatch returns (immediate errors such as OVERLOADED).
  virtual uint64_t Dispatch(const std::string& service, wire::ExpertRequestT request, Clock::time_point deadline,
                            DispatchCallbacks callbacks) = 0;
  // Abandons a request: on_reply is called with CANCELLED (unless it already
  // ran; then this does nothing).
  virtual void Cancel(uint64_t request_id) = 0;

  // A snapshot of every known service, with its live state.
  virtual std::vector<ServiceInfo> Services() const = 0;
  virtual bool HasLiveWorker(const std::string& service) const = 0;
  // The same snapshot without a copy or a lock, and a count that changes
  // whenever the snapshot does.
  virtual const std::vector<ServiceInfo>& ServicesInLoop() const = 0;
  virtual uint64_t snapshot_version() const = 0;
};

}  // namespace thalamus::router
