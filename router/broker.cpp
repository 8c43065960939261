#include "router/broker.h"

#include "security/curve_keys.h"

#include <algorithm>
#include <cstdio>
#include <deque>
#include <vector>

namespace thalamus::router {

struct Broker::Worker {
  std::string identity;
  std::string service;
  std::string label;  // hostname:pid
  std::string model;
  uint32_t capacity = 1;
  std::vector<uint64_t> in_flight;  // a handful; a vector spares a tree node per request
  Clock::time_point expiry;
  uint64_t last_dispatch = 0;  // breaks ties between equally loaded workers
  bool draining = false;       // leaving: out of its service's list, answers still taken
};

struct Broker::Service {
  std::string name;
  std::string kind;
  std::string description;
  std::deque<uint64_t> waiting;
  std::vector<Worker*> workers;    // live: what Pump chooses from
  std::vector<Worker*> draining;   // leaving, still answering what they hold
  int published_queue_depth = -1;  // Pump runs twice per request; the gauge changes far less often
};

struct Broker::Pending {
  std::string service;
  std::string encoded;  // the request as sent, reused on retry
  Clock::time_point submitted;
  DispatchCallbacks callbacks;
  std::string worker_identity;  // "" while waiting
  std::string worker_label;
  std::vector<std::string> tried;  // at most kMaxAttempts identities
  Clock::time_point deadline;
  uint32_t attempts = 0;
  bool streamed = false;
};

namespace {

constexpr uint32_t kMaxAttempts = 2;  // the first try and one retry on another worker

template <typename T>
bool Contains(const std::vector<T>& items, const T& item) {
  return std::find(items.begin(), items.end(), item) != items.end();
}

// What a worker may send to the broker.
bool IsWorkerMessage(wire::Body type) {
  return type == wire::Body::Ready || type == wire::Body::Heartbeat || type == wire::Body::Disconnect ||
         type == wire::Body::ExpertReply || type == wire::Body::Partial;
}

double MillisSince(Broker::Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Broker::Clock::now() - start).count();
}

}  // namespace

Broker::Broker(const config::Config& config, EventLoop& loop, Metrics& metrics)
    : config_(config),
      loop_(loop),
      metrics_(metrics),
      socket_(loop.context(), zmq::socket_type::router),
      heartbeat_(config.broker.heartbeat_ms) {
  socket_.set(zmq::sockopt::router_mandatory, 1);
  socket_.set(zmq::sockopt::linger, 0);
  socket_.set(zmq::sockopt::sndhwm, 100000);
  socket_.set(zmq::sockopt::rcvhwm, 100000);
  socket_.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(config.broker.max_message_bytes));
  if (config.broker.curve.enabled) {
    security::MakeCurveServer(socket_, security::ReadKeyPair(config.broker.curve.router_key), "backend");
  }
  socket_.bind(config.broker.backend);
  endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
  for (const config::ExpertConfig& expert : config.experts) {
    Service& service = ServiceNamed(expert.name);
    service.kind = config::Name(expert.kind);
    service.description = expert.description;
    metrics_.DeclareService(expert.name);
  }
  PublishSnapshot();
  loop_.AddSocket(socket_, [this] { OnBackendReadable(); });
  loop_.Every(heartbeat_, [this] { OnHeartbeatTick(); });
}

Broker::~Broker() = default;

Broker::Service& Broker::ServiceNamed(const std::string& name) {
  auto& slot = services_[name];
  if (!slot) {
    slot = std::make_unique<Service>();
    slot->name = name;
  }
  return *slot;
}

bool Broker::SendTo(const std::string& identity, const std::string& bytes) {
  loop_.RecheckSocket(socket_);
  try {
    // Identity first, then the payload; ROUTER_MANDATORY makes an unknown
    // identity an error (EHOSTUNREACH) rather than a silent drop.
    if (!socket_.send(zmq::buffer(identity), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) return false;
    return socket_.send(zmq::buffer(bytes), zmq::send_flags::dontwait).has_value();
  } catch (const zmq::error_t&) {
    return false;
  }
}

uint64_t Broker::Dispatch(const std::string& service_name, wire::ExpertRequestT request, Clock::time_point deadline,
                          DispatchCallbacks callbacks) {
  auto found = services_.find(service_name);
  if (found == services_.end()) {
    FailNow(service_name, wire::StatusCode::NOT_FOUND, "no expert service named '" + service_name + "'", 0, callbacks);
    return 0;
  }
  Service& service = *found->second;
  if (service.workers.empty()) {
    FailNow(service_name, wire::StatusCode::UNAVAILABLE, "no live worker for service '" + service_name + "'",
            config_.broker.retry_after_ms, callbacks);
    return 0;
  }
  if (service.waiting.size() >= static_cast<size_t>(config_.broker.queue_limit)) {
    FailNow(service_name, wire::StatusCode::OVERLOADED, "service '" + service_name + "' is at its queue limit",
            config_.broker.retry_after_ms, callbacks);
    return 0;
  }
  const uint64_t id = next_request_id_++;
  request.request_id = id;
  request.service = service_name;
  auto pending = std::make_unique<Pending>();
  pending->service = service_name;
  pending->submitted = Clock::now();
  pending->callbacks = std::move(callbacks);
  wire::EnvelopeT envelope;
  envelope.body.Set(std::move(request));
  pending->encoded = messages::Encode(envelope);
  pending_.emplace(id, std::move(pending));
  service.waiting.push_back(id);
  pending_.at(id)->deadline = deadline;
  deadlines_.emplace(deadline, id);
  ArmDeadlineTimer();
  Pump(service);
  return id;
}

// One loop timer for the earliest deadline rather than one per request:
// finished requests leave deadlines_, so nothing piles up in the loop's heap.
void Broker::ArmDeadlineTimer() {
  if (deadlines_.empty()) return;
  const Clock::time_point earliest = deadlines_.begin()->first;
  if (timer_armed_ && armed_for_ <= earliest) return;
  timer_armed_ = true;
  armed_for_ = earliest;
  loop_.RunAt(earliest, [this, earliest] {
    if (armed_for_ == earliest) timer_armed_ = false;  // else a later-armed, earlier timer owns the slot
    ExpireDeadlines();
  });
}

void Broker::ExpireDeadlines() {
  const auto now = Clock::now();
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    const uint64_t id = deadlines_.begin()->second;
    deadlines_.erase(deadlines_.begin());
    Finish(id, messages::ErrorReply(wire::StatusCode::DEADLINE_EXCEEDED, "deadline exceeded"));
  }
  ArmDeadlineTimer();
}

void Broker::FailNow(const std::string& service, wire::StatusCode code, const std::string& error,
                     uint32_t retry_after_ms, DispatchCallbacks& callbacks) {
  wire::ExpertReplyT reply = messages::ErrorReply(code, error);
  DispatchOutcome outcome;
  outcome.retry_after_ms = retry_after_ms;
  metrics_.ObserveExpert(service, messages::StatusName(code), 0.0);
  callbacks.on_reply(std::move(reply), outcome);
}

void Broker::Cancel(uint64_t request_id) {
  if (!pending_.count(request_id)) return;
  Finish(request_id, messages::ErrorReply(wire::StatusCode::CANCELLED, "cancelled"));
}

// Sends waiting requests to the least-loaded workers that have room.
void Broker::Pump(Service& service) {
  size_t skipped = 0;  // requests at the front that every free worker has already failed
  while (service.waiting.size() > skipped) {
    const uint64_t id = service.waiting[skipped];
    Pending& pending = *pending_.at(id);
    Worker* best = nullptr;
    for (Worker* worker : service.workers) {
      if (worker->in_flight.size() >= worker->capacity) continue;
      if (Contains(pending.tried, worker->identity) && pending.tried.size() < service.workers.size()) continue;
      if (!best || worker->in_flight.size() < best->in_flight.size() ||
          (worker->in_flight.size() == best->in_flight.size() && worker->last_dispatch < best->last_dispatch)) {
        best = worker;
      }
    }
    if (!best) {
      bool any_room = std::any_of(service.workers.begin(), service.workers.end(),
                                  [](Worker* w) { return w->in_flight.size() < w->capacity; });
      if (!any_room) break;
      ++skipped;  // only workers it already tried have room: let the next request go first
      continue;
    }
    service.waiting.erase(service.waiting.begin() + static_cast<long>(skipped));
    if (!SendTo(best->identity, pending.encoded)) {
      service.waiting.push_front(id);
      RemoveWorker(best->identity, "send failed");
      return;  // RemoveWorker pumps again
    }
    pending.worker_identity = best->identity;
    pending.worker_label = best->label;
    if (!Contains(pending.tried, best->identity)) pending.tried.push_back(best->identity);
    pending.attempts++;
    best->in_flight.push_back(id);
    best->last_dispatch = id;
  }
  const int depth = static_cast<int>(service.waiting.size());
  if (depth != service.published_queue_depth) {
    metrics_.SetQueueDepth(service.name, depth);
    service.published_queue_depth = depth;
  }
}

void Broker::Finish(uint64_t request_id, wire::ExpertReplyT reply) {
  auto node = pending_.extract(request_id);
  if (node.empty()) return;
  Pending& pending = *node.mapped();
  deadlines_.erase({pending.deadline, request_id});
  Service& service = *services_.at(pending.service);
  if (!pending.worker_identity.empty()) {
    auto worker = workers_.find(pending.worker_identity);
    if (worker != workers_.end()) {
      std::erase(worker->second->in_flight, request_id);
      if (reply.status == wire::StatusCode::DEADLINE_EXCEEDED || reply.status == wire::StatusCode::CANCELLED) {
        wire::CancelT cancel;
        cancel.request_id = request_id;
        SendTo(pending.worker_identity, messages::EncodeBody(std::move(cancel)));
      }
    }
  } else {
    auto& waiting = service.waiting;
    waiting.erase(std::remove(waiting.begin(), waiting.end(), request_id), waiting.end());
  }
  DispatchOutcome outcome;
  outcome.worker = pending.worker_label;
  outcome.attempts = pending.attempts;
  outcome.latency_ms = MillisSince(pending.submitted);
  if (reply.status == wire::StatusCode::UNAVAILABLE || reply.status == wire::StatusCode::OVERLOADED) {
    outcome.retry_after_ms = static_cast<uint32_t>(config_.broker.retry_after_ms);
  }
  reply.request_id = request_id;
  metrics_.ObserveExpert(pending.service, messages::StatusName(reply.status), outcome.latency_ms / 1000.0);
  if (reply.status != wire::StatusCode::OK)
    metrics_.CountExpertFailure(pending.service, messages::StatusName(reply.status));
  pending.callbacks.on_reply(std::move(reply), outcome);
  Pump(service);
}

void Broker::OnBackendReadable() {
  for (;;) {
    zmq::message_t identity;
    if (!socket_.recv(identity, zmq::recv_flags::dontwait)) return;
    std::vector<zmq::message_t> frames;
    while (socket_.get(zmq::sockopt::rcvmore)) {
      frames.emplace_back();
      (void)socket_.recv(frames.back(), zmq::recv_flags::none);
    }
    // A worker speaks in exactly one frame; anything else is not our protocol.
    if (frames.size() != 1) continue;
    OnFrame(identity.to_string(), frames[0]);
  }
}

void Broker::OnFrame(const std::string& identity, const zmq::message_t& payload) {
  std::string why;
  auto envelope = messages::Decode(payload.data(), payload.size(), &why);
  if (envelope && !IsWorkerMessage(envelope->body.type)) {
    why = std::string(wire::EnumNameBody(envelope->body.type)) + ", which workers do not send";
    envelope.reset();
  }
  if (!envelope) {
    metrics_.CountInvalidFrame("backend");
    if (workers_.count(identity)) {
      RemoveWorker(identity, "sent an invalid frame: " + why);
    } else {
      std::fprintf(stderr, "thalamus-router: dropped an invalid frame from an unregistered peer: %s\n", why.c_str());
    }
    return;
  }
  if (envelope->body.type == wire::Body::Ready) {
    OnReady(identity, std::move(*envelope->body.AsReady()));
    return;
  }
  auto found = workers_.find(identity);
  if (found == workers_.end()) {
    // Not registered (e.g. the router restarted): ask it to reconnect and announce itself.
    if (envelope->body.type != wire::Body::Disconnect) {
      wire::DisconnectT disconnect;
      disconnect.reason = "not registered; send READY";
      SendTo(identity, messages::EncodeBody(std::move(disconnect)));
    }
    return;
  }
  Worker& worker = *found->second;
  worker.expiry = Clock::now() + heartbeat_ * config_.broker.liveness;
  switch (envelope->body.type) {
    case wire::Body::ExpertReply: OnReply(worker, std::move(*envelope->body.AsExpertReply())); break;
    case wire::Body::Partial: OnPartial(worker, *envelope->body.AsPartial()); break;
    case wire::Body::Disconnect:
      RemoveWorker(identity, "disconnected: " + envelope->body.AsDisconnect()->reason);
      break;
    case wire::Body::Heartbeat:
      if (envelope->body.AsHeartbeat()->draining && !worker.draining) StartDraining(worker);
      break;
    default: break;
  }
}

// The worker is leaving: it gets nothing new (it leaves its service's list,
// so it no longer counts as live), while its requests in flight are still
// answered through it; its DISCONNECT or silence removes it for good.
void Broker::StartDraining(Worker& worker) {
  worker.draining = true;
  Service& service = *services_.at(worker.service);
  std::erase(service.workers, &worker);
  service.draining.push_back(&worker);
  std::fprintf(stderr, "thalamus-router: worker %s is draining from service '%s' (%zu in flight; %zu live)\n",
               worker.label.c_str(), worker.service.c_str(), worker.in_flight.size(), service.workers.size());
  PublishSnapshot();
}

// Why a READY is refused, or "": only configured services, within the caps.
std::string Broker::RefuseReady(const std::string& identity, const wire::ReadyT& ready) const {
  const auto found = services_.find(ready.service);
  if (found == services_.end()) return "no service named '" + ready.service + "' in " + config_.file;
  const bool again = workers_.count(identity) > 0;  // replaces itself: no new slot
  if (!again && found->second->workers.size() >= static_cast<size_t>(config_.broker.max_workers_per_service)) {
    return "service '" + ready.service + "' has its most workers (broker.max_workers_per_service " +
           std::to_string(config_.broker.max_workers_per_service) + ")";
  }
  if (!again && workers_.size() >= static_cast<size_t>(config_.broker.max_workers)) {
    return "the broker has its most workers (broker.max_workers " + std::to_string(config_.broker.max_workers) + ")";
  }
  return "";
}

void Broker::OnReady(const std::string& identity, wire::ReadyT ready) {
  if (const std::string why = RefuseReady(identity, ready); !why.empty()) {
    std::fprintf(stderr, "thalamus-router: refused worker %s:%u: %s\n", ready.hostname.c_str(), ready.pid, why.c_str());
    metrics_.CountRefusedWorker(services_.count(ready.service) ? ready.service : "");
    wire::DisconnectT disconnect;
    disconnect.reason = "refused: " + why;
    SendTo(identity, messages::EncodeBody(std::move(disconnect)));
    return;
  }
  if (workers_.count(identity)) RemoveWorker(identity, "announced itself again");
  auto worker = std::make_unique<Worker>();
  worker->identity = identity;
  worker->service = ready.service;
  worker->label = ready.hostname + ":" + std::to_string(ready.pid);
  worker->model = ready.model;
  worker->capacity = std::max<uint32_t>(1, ready.capacity);
  worker->expiry = Clock::now() + heartbeat_ * config_.broker.liveness;
  Service& service = *services_.at(ready.service);
  service.workers.push_back(worker.get());
  workers_.emplace(identity, std::move(worker));
  std::fprintf(stderr, "thalamus-router: worker %s joined service '%s' (%zu live)\n",
               workers_.at(identity)->label.c_str(), ready.service.c_str(), service.workers.size());
  PublishSnapshot();
  Pump(service);
}

void Broker::OnReply(Worker& worker, wire::ExpertReplyT reply) {
  auto found = pending_.find(reply.request_id);
  // A late answer to a request that timed out or moved to another worker.
  if (found == pending_.end() || found->second->worker_identity != worker.identity) return;
  Finish(reply.request_id, std::move(reply));
}

void Broker::OnPartial(Worker& worker, const wire::PartialT& partial) {
  auto found = pending_.find(partial.request_id);
  if (found == pending_.end() || found->second->worker_identity != worker.identity) return;
  found->second->streamed = true;
  if (found->second->callbacks.on_partial) found->second->callbacks.on_partial(partial);
}

void Broker::RemoveWorker(const std::string& identity, const std::string& why) {
  auto node = workers_.extract(identity);
  if (node.empty()) return;
  Worker& worker = *node.mapped();
  Service& service = *services_.at(worker.service);
  std::erase(service.workers, &worker);
  std::erase(service.draining, &worker);
  std::fprintf(stderr, "thalamus-router: worker %s left service '%s' (%s; %zu live)\n", worker.label.c_str(),
               worker.service.c_str(), why.c_str(), service.workers.size());
  // Its requests go back to the front of the queue for one more try, unless
  // part of the answer already reached the client.
  std::vector<uint64_t> orphans = worker.in_flight;
  std::sort(orphans.rbegin(), orphans.rend());  // newest first, so the oldest ends up at the front
  for (uint64_t id : orphans) {
    Pending& pending = *pending_.at(id);
    pending.worker_identity.clear();
    if (pending.attempts < kMaxAttempts && !pending.streamed && !service.workers.empty()) {
      metrics_.CountRetry(service.name);
      service.waiting.push_front(id);
      continue;
    }
    const wire::StatusCode code = pending.streamed ? wire::StatusCode::EXPERT_FAILED : wire::StatusCode::UNAVAILABLE;
    std::string error = "worker " + worker.label + " died (" + why + ")" +
                        (pending.streamed ? " after streaming began" : " and no other worker could take the request");
    service.waiting.push_front(id);  // Finish removes it from the queue
    Finish(id, messages::ErrorReply(code, std::move(error)));
  }
  PublishSnapshot();
  Pump(service);
}

void Broker::OnHeartbeatTick() {
  const auto now = Clock::now();
  std::vector<std::string> dead;
  const std::string beat = messages::EncodeBody(wire::HeartbeatT());
  for (auto& [identity, worker] : workers_) {
    if (now > worker->expiry || !SendTo(identity, beat)) dead.push_back(identity);
  }
  for (const std::string& identity : dead) RemoveWorker(identity, "missed heartbeats");
  PublishSnapshot();
}

void Broker::PublishSnapshot() {
  std::vector<ServiceInfo> snapshot;
  for (auto& [name, service] : services_) {
    ServiceInfo info;
    info.name = name;
    info.kind = service->kind;
    info.description = service->description;
    info.live_workers = static_cast<int>(service->workers.size());
    info.queued = static_cast<int>(service->waiting.size());
    for (Worker* worker : service->workers) {
      info.in_flight += static_cast<int>(worker->in_flight.size());
      if (info.model.empty()) info.model = worker->model;
    }
    for (Worker* worker : service->draining) info.in_flight += static_cast<int>(worker->in_flight.size());
    metrics_.SetLiveWorkers(name, info.live_workers);
    metrics_.SetQueueDepth(name, info.queued);
    service->published_queue_depth = info.queued;
    metrics_.SetInFlight(name, info.in_flight);
    snapshot.push_back(std::move(info));
  }
  std::lock_guard lock(snapshot_mutex_);
  snapshot_ = std::move(snapshot);
  ++snapshot_version_;
}

std::vector<ServiceInfo> Broker::Services() const {
  std::lock_guard lock(snapshot_mutex_);
  return snapshot_;
}

bool Broker::HasLiveWorker(const std::string& service) const {
  std::lock_guard lock(snapshot_mutex_);
  for (const ServiceInfo& info : snapshot_) {
    if (info.name == service) return info.live_workers > 0;
  }
  return false;
}

}  // namespace thalamus::router
