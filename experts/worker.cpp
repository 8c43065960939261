#include "experts/worker.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <functional>
#include <mutex>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <vector>

#include <zmq.hpp>

namespace thalamus::experts {
namespace {

using Clock = std::chrono::steady_clock;

std::string Hostname() {
  char name[256] = {0};
  if (gethostname(name, sizeof(name) - 1) != 0) return "unknown";
  return name;
}

}  // namespace

class Worker::Impl {
 public:
  Impl(WorkerOptions options, std::unique_ptr<Expert> expert)
      : options_(std::move(options)), expert_(std::move(expert)), wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (wake_fd_ < 0) throw std::runtime_error("eventfd failed");
  }
  ~Impl() { close(wake_fd_); }

  void Run(const std::atomic<bool>& stop);

  std::atomic<uint64_t> invalid_frames{0};
  std::atomic<uint64_t> reconnects{0};

 private:
  class ServedJob;

  // Queues an encoded envelope for the socket thread. A request served inline
  // runs on the socket thread, which flushes right after it returns, so no
  // wake-up is needed then (nor the two system calls it costs).
  void Post(std::string bytes) {
    {
      std::lock_guard lock(outbox_mutex_);
      outbox_.push_back(std::move(bytes));
    }
    if (std::this_thread::get_id() == socket_thread_) return;
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
  }

  void ComputeLoop();
  wire::ExpertReplyT ServeOne(ServedJob& job);
  bool Session(zmq::socket_t& socket, const std::atomic<bool>& stop);
  void HandleFrame(zmq::socket_t& socket, const zmq::message_t& frame, bool& disconnect);
  void Accept(zmq::socket_t& socket, wire::ExpertRequestT request);
  void Send(zmq::socket_t& socket, const std::string& bytes);
  // Both return whether they sent anything.
  bool FlushOutbox(zmq::socket_t& socket);
  bool SendOutbox(zmq::socket_t& socket);
  void SendReady(zmq::socket_t& socket);
  void SendHeartbeat(zmq::socket_t& socket);
  // Rewrites options_.health_file (write, then rename: a reader never sees half).
  void WriteHealth();
  // Cancels every job still waiting or running (the drain's grace ran out).
  void CancelAll();
  void Release(uint64_t request_id);
  size_t InFlight() {
    std::lock_guard lock(jobs_mutex_);
    return jobs_.size();
  }

  WorkerOptions options_;
  std::unique_ptr<Expert> expert_;
  std::thread::id socket_thread_;  // set by Run before any compute thread starts
  zmq::context_t context_{1};
  int wake_fd_;

  std::mutex outbox_mutex_;
  std::vector<std::string> outbox_;  // a vector: constructing an empty one allocates nothing

  std::mutex jobs_mutex_;
  std::condition_variable jobs_ready_;
  std::deque<std::shared_ptr<ServedJob>> waiting_;
  std::unordered_map<uint64_t, std::shared_ptr<ServedJob>> jobs_;  // waiting and running, by request id
  size_t cancelled_jobs_ = 0;  // entries of jobs_ that were cancelled but still hold a thread
  bool stopping_ = false;
  bool draining_ = false;    // socket thread only
  bool registered_ = false;  // this connection has heard the broker's heartbeat; socket thread only
  bool health_error_logged_ = false;
};

class Worker::Impl::ServedJob : public Job {
 public:
  ServedJob(Impl& owner, wire::ExpertRequestT request) : owner_(owner), request_(std::move(request)) {}
  const wire::ExpertRequestT& request() const override { return request_; }
  bool cancelled() const override { return cancelled_.load(std::memory_order_relaxed); }
  // True the first time only.
  bool Cancel() { return !cancelled_.exchange(true); }
  void EmitText(std::string_view text) override {
    if (!request_.stream || text.empty() || cancelled()) return;
    wire::PartialT partial;
    partial.request_id = request_.request_id;
    partial.seq = next_seq_++;
    partial.text = std::string(text);
    owner_.Post(messages::EncodeBody(std::move(partial)));
  }

 private:
  Impl& owner_;
  wire::ExpertRequestT request_;
  std::atomic<bool> cancelled_{false};
  std::atomic<uint32_t> next_seq_{0};
};

void Worker::Impl::Release(uint64_t request_id) {
  std::lock_guard lock(jobs_mutex_);
  auto it = jobs_.find(request_id);
  if (it == jobs_.end()) return;
  if (it->second->cancelled()) --cancelled_jobs_;
  jobs_.erase(it);
}

void Worker::Impl::ComputeLoop() {
  for (;;) {
    std::shared_ptr<ServedJob> job;
    {
      std::unique_lock lock(jobs_mutex_);
      jobs_ready_.wait(lock, [&] { return stopping_ || !waiting_.empty(); });
      if (waiting_.empty()) return;
      job = std::move(waiting_.front());
      waiting_.pop_front();
    }
    const uint64_t id = job->request().request_id;
    if (job->cancelled()) {
      Release(id);
      continue;
    }
    wire::ExpertReplyT reply = ServeOne(*job);
    // Leave the queue before answering: the broker sends the next request
    // as soon as it has the answer, and that one must find the slot free.
    Release(id);
    // A cancelled request's answer is no longer awaited: the broker has answered already.
    if (!job->cancelled()) Post(messages::EncodeBody(std::move(reply)));
  }
}

wire::ExpertReplyT Worker::Impl::ServeOne(ServedJob& job) {
  wire::ExpertReplyT reply;
  const auto start = Clock::now();
  try {
    reply = expert_->Serve(job);
  } catch (const std::exception& e) {
    reply = messages::ErrorReply(wire::StatusCode::INTERNAL, std::string("expert threw: ") + e.what());
  }
  reply.request_id = job.request().request_id;
  reply.compute_ms = std::chrono::duration<float, std::milli>(Clock::now() - start).count();
  if (reply.status != wire::StatusCode::OK && reply.finish_reason.empty()) reply.finish_reason = "error";
  return reply;
}

void Worker::Impl::Send(zmq::socket_t& socket, const std::string& bytes) {
  // Never block the socket thread: with no route the broker will retry elsewhere.
  auto sent = socket.send(zmq::buffer(bytes), zmq::send_flags::dontwait);
  if (!sent) std::fprintf(stderr, "[%s] backend send queue full, dropped a frame\n", options_.service.c_str());
}

void Worker::Impl::SendReady(zmq::socket_t& socket) {
  wire::ReadyT ready;
  ready.service = options_.service;
  ready.kind = options_.kind;
  ready.capacity = static_cast<uint32_t>(options_.concurrency + options_.queue_limit);
  ready.hostname = Hostname();
  ready.pid = static_cast<uint32_t>(getpid());
  ready.model = expert_->Model();
  Send(socket, messages::EncodeBody(std::move(ready)));
}

bool Worker::Impl::FlushOutbox(zmq::socket_t& socket) {
  uint64_t count;
  [[maybe_unused]] ssize_t n = read(wake_fd_, &count, sizeof(count));
  return SendOutbox(socket);
}

bool Worker::Impl::SendOutbox(zmq::socket_t& socket) {
  std::vector<std::string> batch;
  {
    std::lock_guard lock(outbox_mutex_);
    batch.swap(outbox_);
  }
  for (const std::string& bytes : batch) Send(socket, bytes);
  return !batch.empty();
}

void Worker::Impl::Accept(zmq::socket_t& socket, wire::ExpertRequestT request) {
  const uint64_t id = request.request_id;
  if (expert_->ServesInline(request)) {
    ServedJob job(*this, std::move(request));
    wire::ExpertReplyT reply = ServeOne(job);
    SendOutbox(socket);  // partials first
    Send(socket, messages::EncodeBody(std::move(reply)));
    return;
  }
  std::unique_lock lock(jobs_mutex_);
  if (jobs_.count(id)) return;  // a duplicate delivery
  if (jobs_.size() - cancelled_jobs_ >= static_cast<size_t>(options_.concurrency + options_.queue_limit)) {
    lock.unlock();
    wire::ExpertReplyT reply = messages::ErrorReply(wire::StatusCode::OVERLOADED, "worker queue full");
    reply.request_id = id;
    Send(socket, messages::EncodeBody(std::move(reply)));
    return;
  }
  auto job = std::make_shared<ServedJob>(*this, std::move(request));
  jobs_.emplace(id, job);
  waiting_.push_back(std::move(job));
  jobs_ready_.notify_one();
}

void Worker::Impl::HandleFrame(zmq::socket_t& socket, const zmq::message_t& frame, bool& disconnect) {
  std::string why;
  auto envelope = messages::Decode(frame.data(), frame.size(), &why);
  if (!envelope) {
    invalid_frames++;
    std::fprintf(stderr, "thalamus-expert: ignored an invalid frame from the router: %s\n", why.c_str());
    return;
  }
  switch (envelope->body.type) {
    case wire::Body::ExpertRequest: Accept(socket, std::move(*envelope->body.AsExpertRequest())); break;
    case wire::Body::Cancel: {
      std::lock_guard lock(jobs_mutex_);
      auto it = jobs_.find(envelope->body.AsCancel()->request_id);
      // The broker counts a cancelled request's slot as free at once; so do we,
      // though its thread may need a moment to notice.
      if (it != jobs_.end() && it->second->Cancel()) ++cancelled_jobs_;
      break;
    }
    case wire::Body::Disconnect: disconnect = true; break;
    case wire::Body::Heartbeat: registered_ = true; break;
    default:
      invalid_frames++;
      std::fprintf(stderr, "thalamus-expert: ignored a %s from the router\n", wire::EnumNameBody(envelope->body.type));
  }
}

// One connection to the broker. Returns when it should be re-established
// (broker silent or DISCONNECT) or when `stop` is set.
//
// Waits with poll() on the socket's ZMQ_FD and the wake-up eventfd rather than
// zmq::poll, which costs two poll() calls and a ZMQ_EVENTS look per socket
// each time; with an instant expert that wait is most of the socket thread's
// work. ZMQ_FD says "ZeroMQ has commands for this socket", not "a message is
// here": a receive that finds nothing takes the commands in and re-arms it,
// and so may a send, which is why the socket is looked at again after sends
// that follow the last receive.
bool Worker::Impl::Session(zmq::socket_t& socket, const std::atomic<bool>& stop) {
  const auto heartbeat = std::chrono::milliseconds(options_.heartbeat_ms);
  const auto silence_limit = heartbeat * options_.liveness;
  registered_ = false;
  SendReady(socket);
  WriteHealth();
  auto last_heard = Clock::now();
  auto next_heartbeat = Clock::now() + heartbeat;
  Clock::time_point drain_until;
  pollfd waits[] = {{socket.get(zmq::sockopt::fd), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  bool look_again = true;  // also before the first wait
  for (;;) {
    if (stop.load() && !draining_) {
      draining_ = true;
      drain_until = Clock::now() + std::chrono::milliseconds(options_.drain_grace_ms);
      SendHeartbeat(socket);  // says draining: the broker sends nothing new
      std::fprintf(stderr, "[%s] draining: %zu request(s) in flight, up to %d ms\n", options_.service.c_str(),
                   InFlight(), options_.drain_grace_ms);
    }
    if (draining_ && InFlight() == 0) return false;
    if (draining_ && Clock::now() >= drain_until) {
      std::fprintf(stderr, "[%s] drain grace over: cancelling %zu request(s)\n", options_.service.c_str(), InFlight());
      CancelAll();
      return false;
    }
    bool woken = false;
    if (!look_again) {
      const auto wait = std::chrono::ceil<std::chrono::milliseconds>(next_heartbeat - Clock::now());
      const int ready = poll(waits, 2, static_cast<int>(std::max<int64_t>(wait.count(), 0)));
      if (ready < 0 && errno != EINTR) throw std::system_error(errno, std::generic_category(), "poll");
      if (ready < 0) continue;  // a signal (SIGTERM sets `stop`): look at `stop` again
      woken = (waits[1].revents & POLLIN) != 0;
    }
    look_again = false;
    bool disconnect = false;
    zmq::message_t frame;
    while (socket.recv(frame, zmq::recv_flags::dontwait)) {
      last_heard = Clock::now();
      HandleFrame(socket, frame, disconnect);
    }
    if (woken) look_again |= FlushOutbox(socket);
    if (disconnect) return true;
    const auto now = Clock::now();
    if (now >= next_heartbeat) {
      SendHeartbeat(socket);
      next_heartbeat = now + heartbeat;
      look_again = true;
    }
    if (now - last_heard > silence_limit) {
      if (!draining_) return true;  // reconnect
      CancelAll();                  // leaving, and nobody is left to take the answers
      return false;
    }
  }
}

void Worker::Impl::WriteHealth() {
  if (options_.health_file.empty()) return;
  const char* state = draining_ ? "draining\n" : registered_ ? "ready\n" : "connecting\n";
  const std::string temporary = options_.health_file + ".tmp";
  if (FILE* file = std::fopen(temporary.c_str(), "w")) {
    const bool written = std::fputs(state, file) >= 0;
    if (std::fclose(file) == 0 && written && std::rename(temporary.c_str(), options_.health_file.c_str()) == 0) return;
  }
  if (!health_error_logged_) {  // once: it is rewritten every heartbeat
    std::fprintf(stderr, "[%s] cannot write the health file %s\n", options_.service.c_str(),
                 options_.health_file.c_str());
    health_error_logged_ = true;
  }
}

void Worker::Impl::SendHeartbeat(zmq::socket_t& socket) {
  WriteHealth();
  wire::HeartbeatT beat;
  beat.in_flight = static_cast<uint32_t>(InFlight());
  beat.draining = draining_;
  Send(socket, messages::EncodeBody(std::move(beat)));
}

void Worker::Impl::CancelAll() {
  std::lock_guard lock(jobs_mutex_);
  for (auto& [id, job] : jobs_) {
    if (job->Cancel()) ++cancelled_jobs_;
  }
}

void Worker::Impl::Run(const std::atomic<bool>& stop) {
  std::vector<std::thread> threads;
  auto finish_work = [&] {
    {
      std::lock_guard lock(jobs_mutex_);
      stopping_ = true;
    }
    jobs_ready_.notify_all();
    for (std::thread& thread : threads) thread.join();
    threads.clear();
  };
  // Joins the compute threads however Run ends, exceptions included.
  struct JoinOnExit {
    std::function<void()> join;
    ~JoinOnExit() { join(); }
  } join_on_exit{finish_work};

  socket_thread_ = std::this_thread::get_id();
  for (int i = 0; i < options_.concurrency; ++i) threads.emplace_back([this] { ComputeLoop(); });
  bool first = true;
  while (!stop.load()) {
    if (!first) {
      reconnects++;
      std::this_thread::sleep_for(std::chrono::milliseconds(options_.heartbeat_ms));
    }
    first = false;
    zmq::socket_t socket(context_, zmq::socket_type::dealer);
    socket.set(zmq::sockopt::linger, 0);
    socket.set(zmq::sockopt::maxmsgsize, options_.max_message_bytes);
    if (!options_.curve_server_key.empty()) {
      security::MakeCurveClient(socket, options_.curve_keys, options_.curve_server_key);
    }
    socket.connect(options_.backend);
    if (Session(socket, stop)) continue;
    // Stopping: finish the work in hand, deliver it, then say goodbye.
    finish_work();
    FlushOutbox(socket);
    wire::DisconnectT goodbye;
    goodbye.reason = "shutting down";
    Send(socket, messages::EncodeBody(std::move(goodbye)));
    socket.set(zmq::sockopt::linger, 1000);
  }
}

Worker::Worker(WorkerOptions options, std::unique_ptr<Expert> expert)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(expert))) {}
Worker::~Worker() = default;
void Worker::Run(const std::atomic<bool>& stop) { impl_->Run(stop); }
uint64_t Worker::invalid_frames() const { return impl_->invalid_frames.load(); }
uint64_t Worker::reconnects() const { return impl_->reconnects.load(); }

}  // namespace thalamus::experts
