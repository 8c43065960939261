// models/batcher: serves generation requests from many threads through one
// decode loop, so concurrent requests share batched model steps.
//
// Submit() may be called from any thread; a single background thread owns a
// Generator (generate.h) and runs it while there is work: each round admits
// the requests submitted meanwhile, prefills them and takes one batched step.
// on_text and cancelled callbacks run on that thread, which computes with as
// many threads as the constructing thread had (SetComputeThreads). Destruction stops the
// loop; requests still queued or running then finish with FinishReason::kError
// ("shutting down"). Should a round fail as a whole (a bug), its requests
// finish with kError and the loop carries on with a fresh Generator.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "models/generate.h"

namespace thalamus::models {

class Batcher {
 public:
  Batcher(const CausalLM& model, Tokenizer tokenizer, int64_t max_batch, int64_t max_context = 0);
  ~Batcher();
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  std::future<GenerationResult> Submit(GenerationRequest request);

  // Requests submitted and not finished yet.
  size_t pending() const;

 private:
  void Loop();

  void Settle(std::promise<GenerationResult>& promise, GenerationResult result);
  void FailRunning(const std::string& error);

  const CausalLM& model_;
  Tokenizer tokenizer_;
  int64_t max_batch_, max_context_;
  std::unique_ptr<Generator> generator_;  // the loop thread's, after construction
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::vector<std::pair<GenerationRequest, std::promise<GenerationResult>>> incoming_;
  size_t pending_ = 0;
  std::map<Generator::Id, std::promise<GenerationResult>> running_;  // loop thread only
  std::thread thread_;
};

}  // namespace thalamus::models
