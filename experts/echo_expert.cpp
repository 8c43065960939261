#include "experts/echo_expert.h"

#include <chrono>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

namespace thalamus::experts {
namespace {

// Echoing copies the prompt about three times (words, answer, frame), so its
// time grows with the prompt. Beyond this size the socket thread hands the
// request to a compute thread, so that a 100 MB prompt cannot delay
// heartbeats until the broker drops the worker.
constexpr size_t kMaxInlinePromptBytes = 64 * 1024;

size_t PromptBytes(const wire::ExpertRequestT& request) {
  size_t bytes = request.prompt.size();
  for (const auto& message : request.messages) bytes += message->content.size();
  return bytes;
}

std::string PromptText(const wire::ExpertRequestT& request) {
  for (auto it = request.messages.rbegin(); it != request.messages.rend(); ++it) {
    if ((*it)->role == "user") return (*it)->content;
  }
  return request.prompt;
}

// Splits after each run of spaces so the pieces concatenate back to `text`.
std::vector<std::string> Words(const std::string& text) {
  std::vector<std::string> words;
  std::string current;
  for (size_t i = 0; i < text.size(); ++i) {
    current += text[i];
    if (text[i] == ' ' && (i + 1 == text.size() || text[i + 1] != ' '))
      words.push_back(std::move(current)), current.clear();
  }
  if (!current.empty()) words.push_back(std::move(current));
  return words;
}

class EchoExpert : public Expert {
 public:
  explicit EchoExpert(const config::ExpertConfig& c)
      : prefix_(c.prefix), delay_(c.delay_ms), failure_rate_(c.failure_rate), rng_(std::random_device{}()) {}

  std::string Model() const override { return "echo"; }
  bool ServesInline(const wire::ExpertRequestT& request) const override {
    return delay_.count() == 0 && PromptBytes(request) <= kMaxInlinePromptBytes;
  }

  wire::ExpertReplyT Serve(Job& job) override {
    wire::ExpertReplyT reply;
    if (ShouldFail()) {
      SleepUnlessCancelled(job, delay_);
      return messages::ErrorReply(wire::StatusCode::EXPERT_FAILED, "echo: injected failure (failure_rate)");
    }
    const std::string text = prefix_ + PromptText(job.request());
    const std::vector<std::string> words = Words(text);
    const auto per_word = words.empty() ? delay_ : delay_ / static_cast<int>(words.size());
    int max_words = job.request().params ? job.request().params->max_tokens : 128;
    std::string answer;
    int emitted = 0;
    for (const std::string& word : words) {
      if (emitted == max_words) break;
      SleepUnlessCancelled(job, per_word);
      if (job.cancelled()) break;
      job.EmitText(word);
      answer += word;
      ++emitted;
    }
    if (words.empty()) SleepUnlessCancelled(job, delay_);
    reply.text = std::move(answer);
    reply.prompt_tokens = static_cast<uint32_t>(words.size());
    reply.completion_tokens = static_cast<uint32_t>(emitted);
    reply.finish_reason = emitted < static_cast<int>(words.size()) ? "length" : "stop";
    reply.confidence = 1.0f;
    return reply;
  }

 private:
  bool ShouldFail() {
    if (failure_rate_ <= 0) return false;
    std::lock_guard lock(rng_mutex_);
    return std::uniform_real_distribution<double>(0, 1)(rng_) < failure_rate_;
  }

  static void SleepUnlessCancelled(Job& job, std::chrono::milliseconds duration) {
    // With no delay (the benchmark's setting) this must not read the clock:
    // clock reads are a visible share of a zero-delay echo's CPU in a VM.
    if (duration <= std::chrono::milliseconds(0)) return;
    const auto until = std::chrono::steady_clock::now() + duration;
    while (!job.cancelled()) {
      auto left = until - std::chrono::steady_clock::now();
      if (left <= std::chrono::milliseconds(0)) return;
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(left, std::chrono::milliseconds(5)));
    }
  }

  std::string prefix_;
  std::chrono::milliseconds delay_;
  double failure_rate_;
  std::mutex rng_mutex_;
  std::mt19937_64 rng_;
};

}  // namespace

std::unique_ptr<Expert> MakeEchoExpert(const config::ExpertConfig& expert_config) {
  return std::make_unique<EchoExpert>(expert_config);
}

}  // namespace thalamus::experts
