// Closed-loop load for bench_router_overhead: N clients, each sending its next
// request as soon as the previous answer arrives, for a warm-up and then a
// measured window. Every answer is checked (the echoed prompt must come back
// whole); a wrong or missing answer is a failure, never a latency sample.
//
// All clients of one run share one thread (one zmq::poll loop or one Asio
// io_context), so the load generator costs at most one core in every mode and
// the same way for the baseline and for Thalamus.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace thalamus::bench {

using Clock = std::chrono::steady_clock;

struct LoadOptions {
  int concurrency = 1;
  double warmup_seconds = 1.0;
  double seconds = 5.0;
  size_t payload_bytes = 64;       // the prompt's length in every mode
  double drain_seconds = 10.0;     // after the window: how long answers in flight may take
};

struct LoadResult {
  uint64_t completed = 0;          // good answers to requests sent and answered inside the window
  uint64_t answered = 0;           // good answers over the whole run, warm-up and drain included
  uint64_t failures = 0;           // wrong, error or missing answers, warm-up and drain included
  std::string first_error;
  double window_seconds = 0;
  std::vector<double> latencies_us;  // one per completed request

  double RequestsPerSecond() const { return window_seconds > 0 ? completed / window_seconds : 0; }
  // Nearest-rank percentile, q in [0, 1]; 0 without samples.
  double PercentileUs(double q) const;
};

// Splits time into warm-up, window and drain, and books each answer.
class Recorder {
 public:
  explicit Recorder(const LoadOptions& options);
  // Whether a client may send another request now.
  bool Sending(Clock::time_point now) const { return now < window_end_; }
  Clock::time_point drain_deadline() const { return drain_deadline_; }
  void Success(Clock::time_point sent, Clock::time_point answered);
  void Failure(const std::string& error);
  // Sorts the samples; `lost` requests never got an answer.
  LoadResult Finish(uint64_t lost);

 private:
  Clock::time_point window_start_;
  Clock::time_point window_end_;
  Clock::time_point drain_deadline_;
  LoadResult result_;
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

// Clients are DEALER sockets connected to `endpoint`.
LoadResult RunZmqLoad(const std::string& endpoint, ZmqProtocol protocol, bool with_trace, const LoadOptions& options);

// Clients are keep-alive HTTP/1.1 connections to 127.0.0.1:port posting
// /v1/chat/completions.
LoadResult RunHttpLoad(int port, const LoadOptions& options);

}  // namespace thalamus::bench
