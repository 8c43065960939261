// ZeroMQ clients: one DEALER socket per client (closed loop) or connection
// (open loop), all watched by one thread through one epoll set.
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <system_error>

#include <zmq.hpp>

#include "bench/router/load.h"
#include "messages/messages.h"

namespace thalamus::bench {
namespace {

struct Client {
  explicit Client(zmq::socket_t s) : socket(std::move(s)) {}
  zmq::socket_t socket;
  uint64_t sequence = 0;
  std::string prompt;
  Clock::time_point start;  // what latency counts from: the send time, or the open loop's due time
  bool waiting = false;
};

void Send(Client& client, ZmqProtocol protocol, bool with_trace) {
  if (protocol == ZmqProtocol::kRawEcho) {
    // The empty delimiter makes the message look like a REQ's to the REP workers.
    (void)client.socket.send(zmq::message_t(), zmq::send_flags::sndmore);
    (void)client.socket.send(zmq::buffer(client.prompt), zmq::send_flags::none);
    return;
  }
  wire::QueryT query;
  query.client_request_id = client.sequence;
  query.prompt = client.prompt;
  query.with_trace = with_trace;
  (void)client.socket.send(zmq::buffer(messages::EncodeBody(std::move(query))), zmq::send_flags::none);
}

// Checks one whole answer; returns the error, or nullopt when it is the echo of the prompt.
std::optional<std::string> Check(const std::vector<zmq::message_t>& frames, const Client& client,
                                 ZmqProtocol protocol) {
  if (protocol == ZmqProtocol::kRawEcho) {
    if (frames.size() != 2 || frames[0].size() != 0) return "expected [empty][payload] from the proxy";
    if (frames[1].to_string_view() != client.prompt) return "the proxy echoed a different payload";
    return std::nullopt;
  }
  if (frames.size() != 1) return "expected one frame from the router, got " + std::to_string(frames.size());
  // Verified, then read in place: a load generator that unpacked every
  // answer (and its trace) into objects would spend the CPU it shares with
  // the router on itself, in this mode only.
  flatbuffers::Verifier verifier(frames[0].data<uint8_t>(), frames[0].size());
  if (!wire::VerifyEnvelopeBuffer(verifier)) return "not a valid Envelope";
  const wire::QueryResult* result = wire::GetEnvelope(frames[0].data())->body_as_QueryResult();
  if (!result) return "not an Envelope holding a QueryResult";
  if (result->status() != wire::StatusCode::OK) {
    return std::string("router answered ") + messages::StatusName(result->status()) + ": " +
           (result->error() ? result->error()->str() : "");
  }
  if (result->client_request_id() != client.sequence) return "answer for another request id";
  if (!result->answer() || result->answer()->string_view() != client.prompt)
    return "the answer is not the echoed prompt";
  return std::nullopt;
}

// Receives every whole message waiting on the client's socket.
void Receive(Client& client, ZmqProtocol protocol, Recorder& recorder, int& outstanding) {
  for (;;) {
    std::vector<zmq::message_t> frames(1);
    if (!client.socket.recv(frames[0], zmq::recv_flags::dontwait)) return;
    const auto answered = Clock::now();
    while (frames.back().more()) {
      frames.emplace_back();
      (void)client.socket.recv(frames.back(), zmq::recv_flags::none);
    }
    if (!client.waiting) {
      recorder.Failure("an answer nobody asked for");
      continue;
    }
    client.waiting = false;
    --outstanding;
    if (auto error = Check(frames, client, protocol)) {
      recorder.Failure(*error);
    } else {
      recorder.Success(client.start, answered);
    }
  }
}

// The open loop's wake-up for the next due request: a timerfd watched beside
// the sockets, as epoll_wait's own timeout has only millisecond resolution.
// Armed at an absolute CLOCK_MONOTONIC time, which is steady_clock's clock on
// Linux; once it expires it stays readable until Clear() reads it.
class PaceTimer {
 public:
  PaceTimer() : fd_(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) {
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "timerfd_create");
  }
  ~PaceTimer() { close(fd_); }
  PaceTimer(const PaceTimer&) = delete;
  PaceTimer& operator=(const PaceTimer&) = delete;

  int fd() const { return fd_; }

  // A time already past fires at once. Skips the system call when armed for it already.
  void ArmAt(Clock::time_point when) {
    if (armed_ == when) return;
    const auto since_boot = std::chrono::duration_cast<std::chrono::nanoseconds>(when.time_since_epoch()).count();
    itimerspec spec{};
    spec.it_value.tv_sec = static_cast<time_t>(since_boot / 1000000000);
    spec.it_value.tv_nsec = static_cast<long>(since_boot % 1000000000);
    if (timerfd_settime(fd_, TFD_TIMER_ABSTIME, &spec, nullptr) != 0) {
      throw std::system_error(errno, std::generic_category(), "timerfd_settime");
    }
    armed_ = when;
  }

  // After it polled readable: reads the expiry count, so that it stops.
  void Clear() {
    uint64_t expirations = 0;
    (void)read(fd_, &expirations, sizeof(expirations));
    armed_.reset();
  }

 private:
  int fd_;
  std::optional<Clock::time_point> armed_;
};

// One run: the clients' sockets, and in the open loop the schedule, the idle
// sockets and the pace timer.
//
// The sockets are watched through epoll on their ZMQ_FD, not with zmq::poll:
// zmq::poll asks every socket it is given for its events, a system call or
// two each, on every wake-up, so with 32 clients the load generator made
// twice the system calls per answer of a server that answers in fewer, larger
// bursts, and on two cores that CPU is taken from the server measured. ZMQ_FD
// signals only that a socket has commands to take in, so a socket is read
// until EAGAIN (which takes them in and re-arms the signal) after each
// wake-up, and once more after each send on it (a send can take them in).
class ZmqLoad {
 public:
  ZmqLoad(const std::string& endpoint, ZmqProtocol protocol, bool with_trace, const LoadOptions& options)
      : protocol_(protocol),
        with_trace_(with_trace),
        options_(options),
        context_(1),
        epoll_fd_(epoll_create1(EPOLL_CLOEXEC)) {
    if (epoll_fd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
    clients_.reserve(static_cast<size_t>(options.concurrency));
    for (int i = 0; i < options.concurrency; ++i) {
      clients_.emplace_back(zmq::socket_t(context_, zmq::socket_type::dealer));
      clients_.back().socket.set(zmq::sockopt::linger, 0);
      clients_.back().socket.connect(endpoint);
      Watch(clients_.back().socket.get(zmq::sockopt::fd), static_cast<uint64_t>(i));
    }
    Watch(pace_timer_.fd(), kPaceTimer);
  }
  ~ZmqLoad() { close(epoll_fd_); }
  ZmqLoad(const ZmqLoad&) = delete;
  ZmqLoad& operator=(const ZmqLoad&) = delete;

  LoadResult Run() {
    Recorder recorder(options_);
    recorder_ = &recorder;
    StartSending(Clock::now());
    std::vector<epoll_event> events(clients_.size() + 1);
    while (Busy(Clock::now())) {
      RecheckSent();
      const int ready = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), /*timeout_ms=*/100);
      if (ready < 0 && errno != EINTR) throw std::system_error(errno, std::generic_category(), "epoll_wait");
      bool paced = false;
      for (int e = 0; e < ready; ++e) {
        if (events[e].data.u64 == kPaceTimer) {
          paced = true;
          continue;
        }
        ReceiveOn(static_cast<size_t>(events[e].data.u64));
      }
      if (pacer_) {
        if (paced) pace_timer_.Clear();
        SendDue(Clock::now());
      }
    }
    return recorder.Finish(static_cast<uint64_t>(outstanding_));
  }

 private:
  static constexpr uint64_t kPaceTimer = UINT64_MAX;

  void Watch(int fd, uint64_t tag) {
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = tag;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0) {
      throw std::system_error(errno, std::generic_category(), "epoll_ctl");
    }
  }

  // Reads every answer waiting on client `index`; a client left with nothing
  // in flight asks again (closed loop) or goes back to the idle ones.
  void ReceiveOn(size_t index) {
    Client& client = clients_[index];
    const bool asked = client.waiting;  // if not, this read only takes the socket's commands in
    Receive(client, protocol_, *recorder_, outstanding_);
    if (asked && !client.waiting) Idle(index, Clock::now());
  }

  void RecheckSent() {
    while (!sent_.empty()) {
      const size_t index = sent_.back();
      sent_.pop_back();
      ReceiveOn(index);
    }
  }

  // Until the window is over and every answer in, or the drain deadline.
  bool Busy(Clock::time_point now) const {
    return (outstanding_ > 0 || recorder_->Sending(now)) && now < recorder_->drain_deadline();
  }

  void StartSending(Clock::time_point now) {
    if (options_.rate <= 0) {
      for (size_t i = 0; i < clients_.size(); ++i) SendRequest(i, now);
      return;
    }
    pacer_.emplace(now, options_.rate);
    for (size_t i = clients_.size(); i > 0; --i) idle_.push_back(i - 1);
    SendDue(now);
  }

  // A client's answer is in: the closed loop asks again at once, the open
  // loop puts the socket back for the next due request.
  void Idle(size_t index, Clock::time_point now) {
    if (!pacer_) {
      if (recorder_->Sending(now)) SendRequest(index, now);
      return;
    }
    idle_.push_back(index);
  }

  // Open loop: sends every request due by now that has an idle socket, then
  // sets the timer for the next one, unless no socket is idle: then an answer
  // wakes the loop first.
  void SendDue(Clock::time_point now) {
    while (!idle_.empty() && recorder_->Sending(now) && pacer_->Due(now)) {
      const size_t index = idle_.back();
      idle_.pop_back();
      SendRequest(index, pacer_->Take());
    }
    if (!idle_.empty() && recorder_->Sending(now)) pace_timer_.ArmAt(pacer_->next_due());
  }

  void SendRequest(size_t index, Clock::time_point start) {
    Client& client = clients_[index];
    client.sequence++;
    client.prompt = Prompt(static_cast<int>(index), client.sequence, options_.payload_bytes);
    client.start = start;
    client.waiting = true;
    ++outstanding_;
    Send(client, protocol_, with_trace_);
    sent_.push_back(index);
  }

  ZmqProtocol protocol_;
  bool with_trace_;
  LoadOptions options_;
  zmq::context_t context_;
  std::vector<Client> clients_;
  int epoll_fd_;
  std::vector<size_t> sent_;  // clients sent on since the last wait: read again before waiting
  Recorder* recorder_ = nullptr;
  int outstanding_ = 0;
  std::optional<Pacer> pacer_;
  std::vector<size_t> idle_;  // open loop: sockets with no request in flight, the last one reused first
  PaceTimer pace_timer_;
};

}  // namespace

LoadResult RunZmqLoad(const std::string& endpoint, ZmqProtocol protocol, bool with_trace, const LoadOptions& options) {
  return ZmqLoad(endpoint, protocol, with_trace, options).Run();
}

}  // namespace thalamus::bench
