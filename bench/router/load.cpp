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

Recorder::Recorder(const LoadOptions& options) {
  window_start_ = Clock::now() + Seconds(options.warmup_seconds);
  window_end_ = window_start_ + Seconds(options.seconds);
  drain_deadline_ = window_end_ + Seconds(options.drain_seconds);
  result_.window_seconds = options.seconds;
  // Enough for ~100k answers/s without reallocating inside the window.
  result_.latencies_us.reserve(static_cast<size_t>(options.seconds * 100000));
}

void Recorder::Success(Clock::time_point sent, Clock::time_point answered) {
  result_.answered++;
  if (sent < window_start_ || answered > window_end_) return;
  result_.completed++;
  result_.latencies_us.push_back(std::chrono::duration<double, std::micro>(answered - sent).count());
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

std::string Prompt(int client, uint64_t sequence, size_t bytes) {
  std::string text = "client " + std::to_string(client) + " request " + std::to_string(sequence) + " ";
  static constexpr char kFill[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  while (text.size() < bytes) text += kFill[text.size() % (sizeof(kFill) - 1)];
  text.resize(bytes);  // the caller keeps bytes >= kMinPayloadBytes, so the tag survives
  return text;
}

}  // namespace thalamus::bench
