// gate/: the learned gate, which decides which expert services answer a
// query. The only part of the service that links LibTorch (gate_model.cpp).
//
// 1. Experts named by the request (`experts` in /v1/query, `model` in the
//    OpenAI endpoints) answer; an unknown name is NOT_FOUND.
// 2. With a trained gate (gate.path, written by `thalamus gate train`, or by
//    the constructor from gate.train_data when the file is missing, older
//    than the examples or made for other services): a
//    small MLP over the query's embedding and cheap features gives a softmax
//    over the configured services (gate_model.h). Then, when switched on,
//      - context-aware: a query longer than gate.long_context_tokens
//        (estimated, chars/4) multiplies every `mamba` service's probability
//        by gate.long_context_boost (linear-time in the context);
//      - load-aware: services without a live worker are skipped and the rest
//        are multiplied by exp(-gate.load_alpha * load), load being
//        (queued + in_flight) / (live_workers * concurrency);
//    and the result is renormalised. The best service answers, joined by the
//    next ones up to gate.top_k whose probability is at least gate.threshold.
// 3. Without a trained gate, the fallback rule: gate.default_expert if set,
//    else the first generator (mamba, transformer), else the first expert.
// Every step is written into GateDecision::reason (the trace's gate_reason).
//
// Errors: the constructor throws std::runtime_error when the gate file
// cannot be loaded or was trained for other services than the config's, or
// when gate.train_data cannot be read or names an unknown service.
// Decide is const and runs on the event loop thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "messages/messages.h"

namespace thalamus::gate {

class GateModel;

// What the gate knows of a service's live state: the broker's snapshot, as
// the router sees it when the query arrives.
struct ServiceLoad {
  std::string name;
  int live_workers = 0;
  int queued = 0;
  int in_flight = 0;
};

struct GateDecision {
  wire::StatusCode status = wire::StatusCode::OK;  // NOT_FOUND for an unknown named expert
  std::string error;
  std::vector<std::string> chosen;       // services that answer, best first
  std::vector<wire::GateScoreT> scores;  // probability per configured service (after adjustment)
  std::string reason;
  bool from_model = false;   // the trained gate decided
  std::string fallback;      // why the model did not decide alone ("" if it did): metrics label
  double entropy_bits = -1;  // of the model's own distribution; -1 without a model
};

class Gate {
 public:
  explicit Gate(const config::Config& config);
  ~Gate();
  Gate(const Gate&) = delete;
  Gate& operator=(const Gate&) = delete;

  bool trained() const { return model_ != nullptr; }
  // `live`: one entry per service that has ever had a worker (any order).
  GateDecision Decide(const wire::QueryT& query, const std::vector<ServiceLoad>& live) const;

 private:
  GateDecision DecideByModel(const wire::QueryT& query, const std::vector<ServiceLoad>& live) const;

  const config::Config& config_;
  std::unique_ptr<GateModel> model_;
  std::vector<size_t> config_index_;  // the model's output i is config_.experts[config_index_[i]]
};

// The pieces of Decide, for tests and the `thalamus gate` tools.

// What the gate reads: the prompt, or the last user message of a chat.
std::string GateText(const wire::QueryT& query);
// Estimated tokens of the whole query (every message), chars/4.
size_t QueryTokens(const wire::QueryT& query);
// Applies the context- and load-aware adjustments of config.gate to
// `probabilities` (one per config.experts entry) and renormalises them.
// Returns what it did, for the trace; sets *no_live when no service had a
// live worker (then load is ignored).
std::string AdjustScores(const config::Config& config, const std::vector<ServiceLoad>& live, size_t query_tokens,
                         std::vector<double>& probabilities, bool* no_live = nullptr);
// Indices of the services that answer: the best, then up to top_k - 1 more
// with probability >= threshold; never one with probability 0.
std::vector<size_t> SelectExperts(const std::vector<double>& probabilities, int top_k, double threshold);

}  // namespace thalamus::gate
