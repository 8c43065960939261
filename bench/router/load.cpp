#include "bench/router/load.h"

#include <algorithm>
#include <cmath>

namespace thalamus::bench {
namespace {

Clock::duration Seconds(double seconds) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

}  // namespace

double LoadResult::PercentileUs(double q) const {
  if (latencies_us.empty()) return 0;
  const size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(latencies_us.size())));
  return latencies_us[std::clamp<size_t>(rank, 1, latencies_us.size()) - 1];
}

Recorder::Recorder(const LoadOptions& options) : open_loop_(options.rate > 0) {
  window_start_ = Clock::now() + Seconds(options.warmup_seconds);
  window_end_ = window_start_ + Seconds(options.seconds);
  drain_deadline_ = window_end_ + Seconds(options.drain_seconds);
  result_.window_seconds = options.seconds;
  // Enough for ~100k answers/s without reallocating inside the window.
  result_.latencies_us.reserve(static_cast<size_t>(options.seconds * 100000));
}

void Recorder::Success(Clock::time_point start, Clock::time_point answered) {
  result_.answered++;
  if (answered >= window_start_ && answered <= window_end_) result_.window_answers++;
  if (start < window_start_) return;
  // The closed loop leaves out a request answered after the window, as its
  // client sent nothing in its place. The open loop keeps it: nothing is sent
  // after the window, so a request due at or after its start is due inside
  // it, and dropping the slow answers at the end would flatter the tail.
  if (!open_loop_ && answered > window_end_) return;
  result_.completed++;
  result_.latencies_us.push_back(std::chrono::duration<double, std::micro>(answered - start).count());
}

void Recorder::Failure(const std::string& error) {
  if (result_.failures++ == 0) result_.first_error = error;
}

LoadResult Recorder::Finish(uint64_t lost) {
  if (lost > 0) Failure(std::to_string(lost) + " request(s) got no answer within the drain time");
  result_.failures += lost > 0 ? lost - 1 : 0;
  std::sort(result_.latencies_us.begin(), result_.latencies_us.end());
  return std::move(result_);
}

Clock::time_point Pacer::Take() {
  const Clock::time_point due = next_due_;
  ++taken_;
  // From the start each time rather than adding 1/R, so rounding does not add up.
  next_due_ = start_ + Seconds(static_cast<double>(taken_) / rate_);
  return due;
}

std::string Prompt(int client, uint64_t sequence, size_t bytes) {
  std::string text = "client " + std::to_string(client) + " request " + std::to_string(sequence) + " ";
  static constexpr char kFill[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  while (text.size() < bytes) text += kFill[text.size() % (sizeof(kFill) - 1)];
  text.resize(bytes);  // the caller keeps bytes >= kMinPayloadBytes, so the tag survives
  return text;
}

}  // namespace thalamus::bench
