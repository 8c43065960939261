// experts: the expert kinds and the worker runtime that serves them.
//
// An Expert answers ExpertRequests. The worker runtime (worker.h) owns the
// ZeroMQ socket, heartbeats, the bounded queue and streaming, and calls
// Expert::Serve from Concurrency() threads at once; an expert that batches
// (several requests through one forward pass) gathers concurrent Serve calls
// itself. Errors: Serve reports failures in the reply's status and error;
// constructors throw std::runtime_error with a clear message (missing weights).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "config/config.h"
#include "messages/messages.h"

namespace thalamus::experts {

// One request being served. Thread-safe.
class Job {
 public:
  virtual ~Job() = default;
  virtual const wire::ExpertRequestT& request() const = 0;
  // True once the broker cancelled the request (deadline passed, client gone).
  // Long-running experts poll it between steps and stop early.
  virtual bool cancelled() const = 0;
  // Streams text produced so far; a no-op unless request().stream.
  virtual void EmitText(std::string_view text) = 0;
};

class Expert {
 public:
  virtual ~Expert() = default;
  // Serves one request and returns the final reply; request_id is filled in
  // by the runtime. Must not throw: report errors in status/error.
  virtual wire::ExpertReplyT Serve(Job& job) = 0;
  // What /v1/models shows, e.g. the checkpoint name.
  virtual std::string Model() const = 0;
  // True when Serve answers `request` at once and never blocks (echo without
  // a delay, on a prompt of bounded size): the runtime then serves it on its
  // socket thread, saving two thread hand-offs. Anything that can take long
  // must answer false, or it would hold back the worker's heartbeats.
  virtual bool ServesInline(const wire::ExpertRequestT& request) const {
    (void)request;
    return false;
  }
};

// Builds the expert that `expert_config.kind` names. Throws std::runtime_error
// when it cannot (unknown kind, missing weights, ...).
std::unique_ptr<Expert> MakeExpert(const config::ExpertConfig& expert_config);

}  // namespace thalamus::experts
