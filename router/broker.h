// Broker: the router's side of the Majordomo-style expert protocol (after
// ZeroMQ RFC 7/18, with FlatBuffers frames instead of MDP's text frames).
//
// Experts connect a DEALER to the backend ROUTER socket and say READY with
// their service, which must be one the config names, within
// broker.max_workers_per_service and broker.max_workers (else the peer is told
// DISCONNECT with the reason, logged and counted). A frame messages::Decode
// refuses, or one workers do not send, drops the worker that sent it. The
// broker keeps, per service, the live workers and a
// bounded queue of waiting requests; it sends each request to the live
// worker with the fewest in flight (under its announced capacity), enforces
// each request's deadline (sending CANCEL to the worker), and when a worker
// dies (DISCONNECT, send failure, or `liveness` missed heartbeats) retries its
// requests once on another worker, unless their answer was already being
// streamed. A worker that says it is draining (its heartbeat, on SIGTERM)
// gets nothing new and stops counting as live, while the answers to what it
// holds still come through it. A full queue answers OVERLOADED and a service with no live worker
// UNAVAILABLE, both with retry_after_ms: nothing queues without bound.
// ROUTER_MANDATORY is on, so no message to a vanished worker is lost silently.
//
// Lives on an EventLoop: Dispatch and callbacks run on the loop thread only.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <zmq.hpp>

#include "config/config.h"
#include "messages/messages.h"
#include "router/dispatcher.h"
#include "router/event_loop.h"
#include "router/metrics.h"

namespace thalamus::router {

class Broker : public Dispatcher {
 public:
  // Binds the backend socket now (so its port is known), serving on `loop`;
  // with broker.curve as a CURVE server whose clients the ZAP handler of the
  // loop's context checks under the domain "backend" (throws
  // security::KeyError for a bad key file). Borrows `config`, `loop` and
  // `metrics`, which must outlive the broker.
  Broker(const config::Config& config, EventLoop& loop, Metrics& metrics);
  ~Broker();

  // The bound backend endpoint, with a wildcard port resolved.
  const std::string& endpoint() const { return endpoint_; }

  // Dispatcher (dispatcher.h): Cancel tells the worker to cancel.
  uint64_t Dispatch(const std::string& service, wire::ExpertRequestT request, Clock::time_point deadline,
                    DispatchCallbacks callbacks) override;
  void Cancel(uint64_t request_id) override;
  std::vector<ServiceInfo> Services() const override;
  bool HasLiveWorker(const std::string& service) const override;
  const std::vector<ServiceInfo>& ServicesInLoop() const override { return snapshot_; }
  uint64_t snapshot_version() const override { return snapshot_version_; }

 private:
  struct Worker;
  struct Service;
  struct Pending;

  void OnBackendReadable();
  void OnFrame(const std::string& identity, const zmq::message_t& payload);
  std::string RefuseReady(const std::string& identity, const wire::ReadyT& ready) const;
  void OnReady(const std::string& identity, wire::ReadyT ready);
  void OnReply(Worker& worker, wire::ExpertReplyT reply);
  void OnPartial(Worker& worker, const wire::PartialT& partial);
  void StartDraining(Worker& worker);
  void OnHeartbeatTick();
  void RemoveWorker(const std::string& identity, const std::string& why);
  void Pump(Service& service);
  bool SendTo(const std::string& identity, const std::string& bytes);
  void Finish(uint64_t request_id, wire::ExpertReplyT reply);
  void FailNow(const std::string& service, wire::StatusCode code, const std::string& error, uint32_t retry_after_ms,
               DispatchCallbacks& callbacks);
  Service& ServiceNamed(const std::string& name);
  void PublishSnapshot();
  void ArmDeadlineTimer();
  void ExpireDeadlines();

  const config::Config& config_;
  EventLoop& loop_;
  Metrics& metrics_;
  zmq::socket_t socket_;
  std::string endpoint_;
  std::chrono::milliseconds heartbeat_;
  uint64_t next_request_id_ = 1;

  std::map<std::string, std::unique_ptr<Service>> services_;
  std::unordered_map<std::string, std::unique_ptr<Worker>> workers_;  // by ZeroMQ identity
  std::unordered_map<uint64_t, std::unique_ptr<Pending>> pending_;
  std::set<std::pair<Clock::time_point, uint64_t>> deadlines_;  // of pending_
  bool timer_armed_ = false;
  Clock::time_point armed_for_;

  mutable std::mutex snapshot_mutex_;  // written on the loop thread only, under the lock
  std::vector<ServiceInfo> snapshot_;
  uint64_t snapshot_version_ = 0;
};

}  // namespace thalamus::router
