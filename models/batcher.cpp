#include "models/batcher.h"

#include "kernels/kernels.h"

namespace thalamus::models {

Batcher::Batcher(const CausalLM& model, Tokenizer tokenizer, int64_t max_batch, int64_t max_context)
    : model_(model),
      tokenizer_(std::move(tokenizer)),
      max_batch_(max_batch),
      max_context_(max_context),
      generator_(std::make_unique<Generator>(model_, tokenizer_, max_batch_, max_context_)),
      // OpenMP keeps the thread count per thread: carry the caller's over.
      thread_([this, threads = kernels::CpuThreads()] {
        kernels::SetCpuThreads(threads);
        Loop();
      }) {}

Batcher::~Batcher() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

std::future<GenerationResult> Batcher::Submit(GenerationRequest request) {
  std::promise<GenerationResult> promise;
  std::future<GenerationResult> future = promise.get_future();
  {
    std::lock_guard lock(mutex_);
    incoming_.emplace_back(std::move(request), std::move(promise));
    ++pending_;
  }
  wake_.notify_one();
  return future;
}

size_t Batcher::pending() const {
  std::lock_guard lock(mutex_);
  return pending_;
}

// Counted out before the value is set, so a caller woken by it sees pending() without it.
void Batcher::Settle(std::promise<GenerationResult>& promise, GenerationResult result) {
  {
    std::lock_guard lock(mutex_);
    --pending_;
  }
  promise.set_value(std::move(result));
}

void Batcher::FailRunning(const std::string& error) {
  for (auto& [id, promise] : running_) {
    GenerationResult result;
    result.finish_reason = FinishReason::kError;
    result.error = error;
    Settle(promise, std::move(result));
  }
  running_.clear();
}

void Batcher::Loop() {
  for (;;) {
    std::vector<std::pair<GenerationRequest, std::promise<GenerationResult>>> arrived;
    bool stopping;
    {
      std::unique_lock lock(mutex_);
      // Sleep only when there is nothing to decode.
      wake_.wait(lock, [&] { return stopping_ || !incoming_.empty() || !generator_->idle(); });
      arrived.swap(incoming_);
      stopping = stopping_;
    }
    for (auto& [request, promise] : arrived) running_.emplace(generator_->Add(std::move(request)), std::move(promise));
    if (stopping) break;
    try {
      for (auto& [id, result] : generator_->Step()) {
        auto found = running_.find(id);
        Settle(found->second, std::move(result));
        running_.erase(found);
      }
    } catch (const std::exception& e) {
      FailRunning(std::string("generation failed: ") + e.what());
      generator_ = std::make_unique<Generator>(model_, tokenizer_, max_batch_, max_context_);
    }
  }
  FailRunning("shutting down");
}

}  // namespace thalamus::models
