// models/generate: text generation over any CausalLM, one request or many.
//
// A Generator runs continuous batching on one thread: Add() queues requests;
// each Step() prefills queued requests into free slots (one at a time, since
// prompts differ in length), then advances every live sequence by one token
// with a single batched model Step, and returns the requests that finished.
// Text streams through on_text in pieces that are always complete UTF-8 and
// never show a stop sequence, or a prefix of one that may still complete.
// `cancelled` is polled between tokens.
//
// Not thread-safe: one thread owns a Generator (the expert's decode loop).
// Errors in one request (bad parameters, ids the model rejects, a prompt over
// the context limit) finish that request with FinishReason::kError.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "models/causal_lm.h"
#include "models/sampling.h"
#include "models/tokenizer.h"

namespace thalamus::models {

enum class FinishReason { kStop, kLength, kCancelled, kError };
// "stop", "length", "cancelled", "error" (the OpenAI finish_reason words).
const char* FinishReasonName(FinishReason reason);

struct GenerationRequest {
  std::vector<int32_t> prompt;
  SamplingParams sampling;
  std::function<void(std::string_view)> on_text;  // optional: streamed text
  std::function<bool()> cancelled;                // optional
};

struct GenerationResult {
  std::string text;
  std::vector<int32_t> tokens;  // generated ids, stop tokens excluded
  FinishReason finish_reason = FinishReason::kLength;
  std::string error;  // set with kError
  int64_t prompt_tokens = 0;
  // Sum over the generated tokens of log p(token) under the model's plain
  // softmax (temperature 1): exp(logprob_sum / tokens.size()) is a confidence.
  double logprob_sum = 0.0;
};

class Generator {
 public:
  using Id = uint64_t;

  // max_context: 0 for the model's own limit.
  Generator(const CausalLM& model, Tokenizer tokenizer, int64_t max_batch, int64_t max_context = 0);
  ~Generator();

  Id Add(GenerationRequest request);
  std::vector<std::pair<Id, GenerationResult>> Step();

  size_t active() const { return active_.size(); }
  size_t waiting() const { return waiting_.size(); }
  bool idle() const { return active_.empty() && waiting_.empty(); }

 private:
  struct Sequence;

  void Admit(std::vector<std::pair<Id, GenerationResult>>& finished);
  // Samples from `logits` and takes the token; false once the sequence is done.
  bool Advance(Sequence& sequence, std::span<const float> logits);
  void Retire(size_t slot, std::vector<std::pair<Id, GenerationResult>>& finished);

  const CausalLM& model_;
  Tokenizer tokenizer_;
  int64_t max_batch_;
  int64_t max_context_;
  std::unique_ptr<CausalLM::State> state_;
  std::deque<std::unique_ptr<Sequence>> waiting_;
  std::vector<std::unique_ptr<Sequence>> active_;  // index = slot in state_
  Id next_id_ = 1;
};

// The ids that end a text: the model config's eos id when it has one, else
// the tokenizer's <|endoftext|>; empty when neither exists.
std::vector<int32_t> EndOfTextTokens(const Tokenizer& tokenizer, std::optional<int32_t> configured_eos);

// Runs the requests to completion together; results in request order.
std::vector<GenerationResult> Generate(const CausalLM& model, const Tokenizer& tokenizer,
                                       std::vector<GenerationRequest> requests, int64_t max_batch = 8);

}  // namespace thalamus::models
