// Load for bench_router_overhead, for a warm-up and then a measured window,
// in one of two shapes:
// - closed loop (rate 0): N clients, each sending its next request as soon as
//   the previous answer arrives, so the server's speed sets the load;
// - open loop (rate R > 0): request k is due at start + k / R whatever the
//   server does, sent on one of N connections as soon as it is due and one is
//   idle (else as soon as one frees up). Its latency counts from the due time,
//   not the send time, so time queued in the client because the server fell
//   behind counts too (wrk2's correction for coordinated omission); and it
//   belongs to the window by its due time.
// Every answer is checked (the echoed prompt must come back whole); a wrong or
// missing answer is a failure, never a latency sample.
//
// All clients of one run share one thread (one epoll loop or one Asio
// io_context), so the load generator costs at most one core in every mode and
// the same way for the baseline and for Thalamus. Open-loop pacing waits on a
// timer (a timerfd in the epoll set, an Asio steady_timer), never spins.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace thalamus::bench {

using Clock = std::chrono::steady_clock;

struct LoadOptions {
  int concurrency = 1;  // clients; in the open loop, the connections requests go out on
  double rate = 0;      // open loop: requests per second over all connections; 0: closed loop
  double warmup_seconds = 1.0;
  double seconds = 5.0;
  size_t payload_bytes = 64;    // the prompt's length in every mode
  double drain_seconds = 10.0;  // after the window: how long answers in flight may take
};

struct LoadResult {
  // Good answers to requests sent and answered inside the window (closed
  // loop), or due inside the window and answered before the drain deadline
  // (open loop): one latency sample each.
  uint64_t completed = 0;
  uint64_t window_answers = 0;  // good answers that arrived inside the window, whenever sent
  uint64_t answered = 0;        // good answers over the whole run, warm-up and drain included
  uint64_t failures = 0;        // wrong, error or missing answers, warm-up and drain included
  std::string first_error;
  double window_seconds = 0;
  std::vector<double> latencies_us;  // one per completed request

  double RequestsPerSecond() const { return window_seconds > 0 ? completed / window_seconds : 0; }
  // What the server delivered in the window: the open loop's achieved rate.
  double AnswersPerSecond() const { return window_seconds > 0 ? window_answers / window_seconds : 0; }
  // Nearest-rank percentile, q in [0, 1]; 0 without samples.
  double PercentileUs(double q) const;
};

// Splits time into warm-up, window and drain, and books each answer.
class Recorder {
 public:
  explicit Recorder(const LoadOptions& options);
  // Whether a client may send another request now. The open loop stops with
  // the window too: requests still queued in the client then are never sent.
  bool Sending(Clock::time_point now) const { return now < window_end_; }
  Clock::time_point drain_deadline() const { return drain_deadline_; }
  // `start` is the send time (closed loop) or the due time (open loop).
  void Success(Clock::time_point start, Clock::time_point answered);
  void Failure(const std::string& error);
  // Sorts the samples; `lost` requests never got an answer.
  LoadResult Finish(uint64_t lost);

 private:
  Clock::time_point window_start_;
  Clock::time_point window_end_;
  Clock::time_point drain_deadline_;
  bool open_loop_;
  LoadResult result_;
};

// The open loop's schedule: request k is due at start + k / rate.
class Pacer {
 public:
  Pacer(Clock::time_point start, double rate) : start_(start), rate_(rate), next_due_(start) {}
  Clock::time_point next_due() const { return next_due_; }
  bool Due(Clock::time_point now) const { return next_due_ <= now; }
  // Hands out the next request's due time and moves on to the one after.
  Clock::time_point Take();

 private:
  Clock::time_point start_;
  double rate_;
  uint64_t taken_ = 0;
  Clock::time_point next_due_;
};

// The 64-byte (or `bytes`) prompt of a client's request `sequence`: printable
// ASCII without JSON escapes, distinct per client and request, so an answer
// meant for another request cannot pass the check.
constexpr size_t kMinPayloadBytes = 32;
std::string Prompt(int client, uint64_t sequence, size_t bytes);

enum class ZmqProtocol {
  kRawEcho,       // the baseline: [empty][prompt] through a ROUTER/DEALER proxy to REP workers
  kThalamusQuery  // the router's front end: one Envelope{Query} frame, an Envelope{QueryResult} back
};

// Clients are DEALER sockets connected to `endpoint`; closed or open loop by options.rate.
LoadResult RunZmqLoad(const std::string& endpoint, ZmqProtocol protocol, bool with_trace, const LoadOptions& options);

// Clients are keep-alive HTTP/1.1 connections to 127.0.0.1:port posting
// /v1/chat/completions; closed or open loop by options.rate.
LoadResult RunHttpLoad(int port, const LoadOptions& options);

}  // namespace thalamus::bench
