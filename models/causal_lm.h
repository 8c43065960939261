// models/causal_lm: what generation needs from a causal language model.
//
// Generation (generate.h) drives any model through this interface: Mamba
// here, a transformer with a KV cache likewise. A State holds `slots`
// sequences; generation keeps its live sequences in slots 0..n-1 (CopySlot
// compacts them when one finishes), so a batched Step works on a prefix.
// Models are immutable after loading: one model may serve several States
// from different threads, but one State is used by one thread at a time.
// Errors: std::invalid_argument for ids outside the vocabulary or bad slots.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include <torch/types.h>

namespace thalamus::models {

class CausalLM {
 public:
  class State {
   public:
    virtual ~State() = default;
    virtual int64_t slots() const = 0;
  };

  virtual ~CausalLM() = default;

  virtual std::unique_ptr<State> NewState(int64_t slots) const = 0;

  // Starts a new sequence in `slot` (forgetting what it held) and runs `ids`
  // through the model. Returns float32 logits: (ids.size(), vocab) when
  // all_positions, else (1, vocab) for the last position only.
  virtual torch::Tensor Prefill(State& state, int64_t slot, std::span<const int32_t> ids, bool all_positions) const = 0;

  // Feeds tokens[i] to the sequence in slot i, for all i at once. Returns
  // float32 logits (tokens.size(), vocab).
  virtual torch::Tensor Step(State& state, std::span<const int32_t> tokens) const = 0;

  // Makes slot `to` continue the sequence held in slot `from`.
  virtual void CopySlot(State& state, int64_t from, int64_t to) const = 0;

  // Columns of the logits (may exceed the tokenizer's vocabulary: padding).
  virtual int64_t VocabSize() const = 0;
  // The longest sequence the model handles; 0 when unbounded (recurrent models).
  virtual int64_t MaxContext() const = 0;
};

// "float32" (or "fp32") and "bfloat16" (or "bf16"): the dtypes the models run
// in on CPU. Throws std::invalid_argument naming the accepted values.
torch::ScalarType DTypeFromName(const std::string& name);
// "cpu", "cuda" or "cuda:N"; throws std::invalid_argument when malformed or
// when this build or machine has no such device.
torch::Device DeviceFromName(const std::string& name);
// `device` itself; throws std::invalid_argument when this build or machine
// has no such device.
torch::Device AvailableDevice(torch::Device device);
// `ids` as an int64 CPU tensor, ready for index_select on an embedding.
// Throws std::invalid_argument, naming `model`, for an id outside
// [0, vocab_size).
torch::Tensor TokenIndex(std::span<const int32_t> ids, int64_t vocab_size, const std::string& model);
// The CPU threads models compute with (the process-wide ATen pool); n >= 1.
void SetComputeThreads(int n);

}  // namespace thalamus::models
