// Worker: the runtime every expert process runs (the worker side of the
// Majordomo-style protocol in router/broker.h).
//
// It connects a DEALER socket to the router's backend endpoint, announces its
// service with READY, heartbeats, and serves ExpertRequests by calling
// Expert::Serve from `concurrency` threads, holding at most `queue_limit`
// more in a bounded queue (beyond that it answers OVERLOADED). Streaming text
// goes back as Partial messages. If the router goes silent for `liveness`
// heartbeats, or says DISCONNECT, the worker reconnects and announces itself
// again. Invalid frames are counted and dropped, never trusted.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "experts/expert.h"
#include "security/curve_keys.h"

namespace thalamus::experts {

struct WorkerOptions {
  std::string backend;  // router backend endpoint, e.g. tcp://10.0.0.5:5556
  std::string service;  // service name announced in READY
  std::string kind;
  int concurrency = 1;
  int queue_limit = 2;
  int heartbeat_ms = 250;
  int liveness = 3;
  int64_t max_message_bytes = 64 << 20;  // ZMQ_MAXMSGSIZE: a larger frame drops the connection
  // After `stop`: how long requests in flight may still take (broker.drain_grace_ms).
  int drain_grace_ms = 30000;
  // When set, rewritten every heartbeat with the worker's state: "ready"
  // (the broker has taken it: it heartbeats to it), "connecting" or
  // "draining". Its age says whether the socket thread is alive. For
  // container probes (`thalamus probe`); "" writes nothing.
  std::string health_file;
  // CURVE: the worker's own key pair and the router's public key; no
  // curve_server_key: plaintext.
  security::KeyPair curve_keys;
  std::string curve_server_key;
};

class Worker {
 public:
  Worker(WorkerOptions options, std::unique_ptr<Expert> expert);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Serves until `stop` becomes true (checked every heartbeat), then drains:
  // tells the broker it is leaving (a draining heartbeat: nothing new is sent
  // to it), keeps serving and answering what it holds for up to
  // drain_grace_ms, cancels what is still running then, says DISCONNECT (the
  // broker retries the cancelled requests elsewhere) and returns.
  void Run(const std::atomic<bool>& stop);

  // Counters, for tests and logs.
  uint64_t invalid_frames() const;
  uint64_t reconnects() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace thalamus::experts
