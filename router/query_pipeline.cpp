// The query pipeline: gate -> plan -> dispatch -> aggregate. Runs on the
// event loop thread only.
#include <algorithm>
#include <chrono>

#include "router/query_pipeline.h"

namespace thalamus::router {
namespace {

using Clock = EventLoop::Clock;

double MillisSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

uint64_t UnixMillis(std::chrono::system_clock::time_point t) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count());
}

template <typename T>
std::vector<std::unique_ptr<T>> CloneAll(const std::vector<std::unique_ptr<T>>& items) {
  std::vector<std::unique_ptr<T>> out;
  for (const auto& item : items) out.push_back(item ? std::make_unique<T>(*item) : nullptr);
  return out;
}

// The generator of a ralm plan gets the filled template in place of the
// question: as the prompt, or as the last user message of a chat.
void SetQuestion(wire::ExpertRequestT& request, const std::string& text) {
  if (request.messages.empty()) {
    request.prompt = text;
    return;
  }
  for (auto it = request.messages.rbegin(); it != request.messages.rend(); ++it) {
    if (*it && (*it)->role == "user") {
      (*it)->content = text;
      return;
    }
  }
  auto message = std::make_unique<wire::ChatMessageT>();
  message->role = "user";
  message->content = text;
  request.messages.push_back(std::move(message));
}

// direct: the chosen experts answer; ralm: retrieve, then generate.
enum class Plan { kDirect, kRalm };
const char* PlanName(Plan plan) { return plan == Plan::kRalm ? "ralm" : "direct"; }

}  // namespace

struct QueryPipeline::QueryState {
  wire::QueryT query;
  QueryCallbacks callbacks;
  Clock::time_point start;
  Clock::time_point deadline;
  std::chrono::system_clock::time_point wall_deadline;
  gate::GateDecision decision;
  Plan plan = Plan::kDirect;
  std::string generator;         // ralm: who answers after retrieval
  std::string generator_prompt;  // ralm: the filled template
  std::string plan_reason;
  int ralm_k = 0;
  std::vector<std::unique_ptr<wire::PassageT>> context;  // ralm: passages given to the generator
  std::vector<wire::ExpertTraceT> traces;                // one per expert request, in dispatch order
  std::vector<wire::ExpertReplyT> replies;               // parallel to traces
  std::vector<bool> answering;                           // parallel to traces: its text is (part of) the answer
  std::vector<uint32_t> retry_after_ms;                  // parallel to traces
  size_t outstanding = 0;
  bool generating = false;
  bool streamed = false;  // some text went out as a partial
  Clock::time_point last_partial;
};

QueryPipeline::QueryPipeline(const config::Config& config, EventLoop& loop, Dispatcher& dispatcher, Metrics& metrics)
    : config_(config), loop_(loop), dispatcher_(dispatcher), metrics_(metrics), gate_(config) {
  if (config_.aggregation != config::Aggregation::kRalm) return;
  for (const config::ExpertConfig& expert : config_.experts) {
    if (expert.kind == config::ExpertKind::kRag) continue;
    Counter counter;
    counter.count = GeneratorTokenCounter(expert, &counter.how);
    token_counters_.emplace(expert.name, std::move(counter));
  }
}

std::vector<ServiceInfo> QueryPipeline::Services() const { return dispatcher_.Services(); }

bool QueryPipeline::Ready() const {
  if (draining_) return false;
  for (const config::ExpertConfig& expert : config_.experts) {
    // Whatever its replica count: a service without a live worker answers 503.
    if (!dispatcher_.HasLiveWorker(expert.name)) return false;
  }
  return true;
}

void QueryPipeline::Submit(wire::QueryT query, QueryCallbacks callbacks) {
  if (loop_.InLoopThread()) return SubmitInLoop(std::move(query), std::move(callbacks));
  auto shared_query = std::make_shared<wire::QueryT>(std::move(query));
  auto shared_callbacks = std::make_shared<QueryCallbacks>(std::move(callbacks));
  loop_.Post(
      [this, shared_query, shared_callbacks] { SubmitInLoop(std::move(*shared_query), std::move(*shared_callbacks)); });
}

void QueryPipeline::SubmitInLoop(wire::QueryT query, QueryCallbacks callbacks) {
  if (draining_) {
    callbacks.on_result(messages::ErrorResult(wire::StatusCode::UNAVAILABLE, "the router is shutting down",
                                              query.client_request_id,
                                              static_cast<uint32_t>(config_.broker.retry_after_ms)));
    return;
  }
  // Counted until its one result, so that a drain knows when it is done.
  ++in_flight_;
  callbacks.on_result = [this, on_result = std::move(callbacks.on_result)](wire::QueryResultT result) {
    --in_flight_;
    on_result(std::move(result));
  };
  auto state = std::make_shared<QueryState>();
  state->start = Clock::now();
  const uint32_t deadline_ms =
      query.deadline_ms ? query.deadline_ms : static_cast<uint32_t>(config_.broker.default_deadline_ms);
  state->deadline = state->start + std::chrono::milliseconds(deadline_ms);
  state->wall_deadline = std::chrono::system_clock::now() + std::chrono::milliseconds(deadline_ms);
  state->query = std::move(query);
  state->callbacks = std::move(callbacks);

  if (state->query.prompt.empty() && state->query.messages.empty()) {
    state->callbacks.on_result(messages::ErrorResult(
        wire::StatusCode::BAD_REQUEST, "the query has neither a prompt nor messages", state->query.client_request_id));
    return;
  }
  state->decision = gate_.Decide(state->query, LiveLoad());
  if (!state->decision.fallback.empty()) metrics_.CountGateFallback(state->decision.fallback);
  if (state->decision.entropy_bits >= 0) metrics_.ObserveGateEntropy(state->decision.entropy_bits);
  if (state->decision.status != wire::StatusCode::OK) {
    state->callbacks.on_result(
        messages::ErrorResult(state->decision.status, state->decision.error, state->query.client_request_id));
    return;
  }
  for (const std::string& service : state->decision.chosen) metrics_.CountGateSelection(service);
  PlanQuery(state);
}

// Live workers from the broker's snapshot, requests from the router's own
// count: a burst of queries sees the load its earlier queries made. The
// snapshot's strings are copied only when it changed (worker joins and
// heartbeats), not per query.
const std::vector<gate::ServiceLoad>& QueryPipeline::LiveLoad() {
  const std::vector<ServiceInfo>& snapshot = dispatcher_.ServicesInLoop();
  if (live_version_ != dispatcher_.snapshot_version()) {
    live_.clear();
    for (const ServiceInfo& info : snapshot) live_.push_back({info.name, info.live_workers, 0, 0});
    live_version_ = dispatcher_.snapshot_version();
  }
  for (size_t i = 0; i < live_.size(); ++i) {
    gate::ServiceLoad& info = live_[i];
    info.in_flight = snapshot[i].in_flight;
    info.queued = snapshot[i].queued;
    const auto it = outstanding_.find(info.name);
    const config::ExpertConfig* expert = config_.FindExpert(info.name);
    if (it == outstanding_.end() || !expert) continue;
    const int slots = info.live_workers * std::max(1, expert->concurrency);
    info.in_flight = std::min(it->second, slots);
    info.queued = it->second - info.in_flight;
  }
  return live_;
}

// direct, or ralm when aggregation is ralm and there are retrievers and a
// generator: the best chosen non-rag service, else the most probable one,
// else the first mamba/transformer, else the first non-rag expert.
void QueryPipeline::PlanQuery(const std::shared_ptr<QueryState>& state) {
  if (config_.aggregation == config::Aggregation::kRalm) {
    std::vector<std::string> retrievers;
    for (const std::string& service : state->decision.chosen) {
      if (config_.FindExpert(service)->kind == config::ExpertKind::kRag) {
        retrievers.push_back(service);
      } else if (state->generator.empty()) {
        state->generator = service;
      }
    }
    const bool all_retrievers = retrievers.empty();
    if (all_retrievers) {
      for (const config::ExpertConfig& expert : config_.experts) {
        if (expert.kind == config::ExpertKind::kRag) retrievers.push_back(expert.name);
      }
    }
    if (state->generator.empty()) {
      float best = 0;
      for (const auto& score : state->decision.scores) {
        if (config_.FindExpert(score.service)->kind != config::ExpertKind::kRag && score.probability > best) {
          best = score.probability, state->generator = score.service;
        }
      }
    }
    for (const config::ExpertConfig& expert : config_.experts) {
      if (!state->generator.empty()) break;
      if (config::IsGenerator(expert.kind)) state->generator = expert.name;
    }
    for (const config::ExpertConfig& expert : config_.experts) {
      if (!state->generator.empty()) break;
      if (expert.kind != config::ExpertKind::kRag) state->generator = expert.name;
    }
    if (!retrievers.empty() && !state->generator.empty()) {
      state->plan = Plan::kRalm;
      state->ralm_k = state->query.ralm_k > 0 ? state->query.ralm_k : config_.ralm.k;
      state->plan_reason = std::string("ralm: retrieve from ") +
                           (all_retrievers ? "every rag service" : "the chosen rag services") + ", then " +
                           state->generator + " generates";
      DispatchExperts(state, retrievers, /*answering=*/false);
      return;
    }
    state->plan_reason = retrievers.empty() ? "direct: aggregation ralm, but no rag service is configured"
                                            : "direct: aggregation ralm, but no generator service is configured";
  } else if (state->decision.chosen.size() > 1) {
    state->plan_reason = "direct: fan-out to " + std::to_string(state->decision.chosen.size()) + " services";
  } else {
    state->plan_reason = "direct";
  }
  DispatchExperts(state, state->decision.chosen, /*answering=*/true);
}

void QueryPipeline::DispatchExperts(const std::shared_ptr<QueryState>& state, const std::vector<std::string>& services,
                                    bool answering) {
  // One extra count while dispatching, so replies that fail immediately
  // cannot complete the query before every request has been sent.
  state->outstanding += services.size() + 1;
  const bool stream_through = answering && state->query.stream && services.size() == 1;
  for (const std::string& service : services) {
    wire::ExpertRequestT request;
    request.prompt = state->query.prompt;
    request.messages = CloneAll(state->query.messages);
    if (state->query.params) request.params = std::make_unique<wire::GenerationParamsT>(*state->query.params);
    request.stream = stream_through;
    request.deadline_unix_ms = UnixMillis(state->wall_deadline);
    if (state->plan == Plan::kRalm && !state->generating) request.top_k_passages = state->ralm_k;
    // The passages are already in the filled ralm.template; `context` stays
    // empty, or generators that render context themselves (mamba) would
    // include them twice. The result cites them.
    if (state->generating) SetQuestion(request, state->generator_prompt);

    const size_t index = state->traces.size();
    wire::ExpertTraceT trace;
    trace.service = service;
    if (state->generating) trace.prompt = state->generator_prompt;
    for (const auto& score : state->decision.scores) {
      if (score.service == service) trace.gate_probability = score.probability;
    }
    state->traces.push_back(std::move(trace));
    state->replies.emplace_back();
    state->answering.push_back(answering);
    state->retry_after_ms.push_back(0);

    DispatchCallbacks callbacks;
    if (stream_through) {
      callbacks.on_partial = [this, state, service](const wire::PartialT& partial) {
        if (!partial.text.empty()) {
          const auto now = Clock::now();
          if (!state->streamed) {
            metrics_.ObserveTimeToFirstToken(service, std::chrono::duration<double>(now - state->start).count());
          } else {
            metrics_.ObserveInterTokenLatency(service,
                                              std::chrono::duration<double>(now - state->last_partial).count());
          }
          state->last_partial = now;
          state->streamed = true;
        }
        if (state->callbacks.on_partial) state->callbacks.on_partial(partial.text);
      };
    }
    callbacks.on_reply = [this, state, index](wire::ExpertReplyT reply, const DispatchOutcome& outcome) {
      OnExpertReply(state, index, std::move(reply), outcome);
    };
    ++outstanding_[service];
    dispatcher_.Dispatch(service, std::move(request), state->deadline, std::move(callbacks));
  }
  OnExpertReply(state, SIZE_MAX, {}, {});  // releases the dispatching count
}

void QueryPipeline::OnExpertReply(const std::shared_ptr<QueryState>& state, size_t index, wire::ExpertReplyT reply,
                                  const DispatchOutcome& outcome) {
  if (index != SIZE_MAX) {
    wire::ExpertTraceT& trace = state->traces[index];
    --outstanding_[trace.service];
    trace.worker = outcome.worker;
    trace.status = reply.status;
    trace.error = reply.error;
    if (state->query.with_trace) {  // copies of the answer, for the trace only
      trace.text = reply.text;
      trace.passages = CloneAll(reply.passages);
    }
    trace.confidence = reply.confidence;
    trace.latency_ms = static_cast<float>(outcome.latency_ms);
    trace.attempts = outcome.attempts;
    state->retry_after_ms[index] = outcome.retry_after_ms;
    state->replies[index] = std::move(reply);
  }
  if (--state->outstanding > 0) return;
  if (state->plan == Plan::kRalm && !state->generating) {
    StartGeneration(state);
  } else {
    Complete(state);
  }
}

void QueryPipeline::StartGeneration(const std::shared_ptr<QueryState>& state) {
  std::vector<const PassageList*> lists;
  size_t retrieved = 0, failed = 0;
  for (const wire::ExpertReplyT& reply : state->replies) {
    if (reply.status != wire::StatusCode::OK) {
      ++failed;
      continue;
    }
    lists.push_back(&reply.passages);
    retrieved += reply.passages.size();
  }
  std::vector<const wire::PassageT*> passages = RankPassages(lists, static_cast<size_t>(state->ralm_k));
  const size_t ranked = passages.size();
  const config::ExpertConfig& generator = *config_.FindExpert(state->generator);
  const int max_tokens = state->query.params ? state->query.params->max_tokens : wire::GenerationParamsT().max_tokens;
  const size_t budget = RalmBudget(config_, generator, max_tokens);
  const Counter& counter = token_counters_.at(state->generator);
  RalmPrompt prompt =
      BuildRalmPrompt(config_.ralm.prompt_template, gate::GateText(state->query), passages, budget, counter.count);
  for (const wire::PassageT* passage : passages) state->context.push_back(std::make_unique<wire::PassageT>(*passage));
  state->generator_prompt = std::move(prompt.text);
  state->plan_reason += "; k " + std::to_string(state->ralm_k) + ": " + std::to_string(retrieved) +
                        " passages retrieved" + (failed ? " (" + std::to_string(failed) + " retrievers failed)" : "") +
                        ", best " + std::to_string(ranked) + " ranked, " + std::to_string(prompt.passages) + " kept";
  if (budget > 0) {
    state->plan_reason +=
        ", " + std::to_string(prompt.dropped) + " dropped for the budget of " + std::to_string(budget) + " tokens";
  }
  state->plan_reason += "; prompt " + std::to_string(prompt.tokens) + " tokens by " + counter.how;
  if (prompt.over_budget) state->plan_reason += " (over budget even without passages)";
  state->generating = true;
  DispatchExperts(state, {state->generator}, /*answering=*/true);
}

void QueryPipeline::Complete(const std::shared_ptr<QueryState>& state) {
  wire::QueryResultT result;
  result.client_request_id = state->query.client_request_id;
  const wire::ExpertReplyT* best = nullptr;
  double best_weight = -1;
  const wire::ExpertReplyT* first_failure = nullptr;
  uint32_t failure_retry_after = 0;
  std::string concatenated;
  for (size_t i = 0; i < state->replies.size(); ++i) {
    const wire::ExpertReplyT& any = state->replies[i];
    if (any.status == wire::StatusCode::OK) {
      metrics_.CountTokens(state->traces[i].service, any.prompt_tokens, any.completion_tokens);
    }
    if (!state->answering[i]) continue;
    const wire::ExpertReplyT& reply = state->replies[i];
    if (reply.status != wire::StatusCode::OK) {
      if (!first_failure) first_failure = &reply, failure_retry_after = state->retry_after_ms[i];
      continue;
    }
    // top1 keeps the gate's order; weighted weighs it by the expert's confidence.
    double weight = config_.aggregation == config::Aggregation::kWeighted
                        ? state->traces[i].gate_probability * reply.confidence
                        : -static_cast<double>(i);
    if (!best || weight > best_weight) best = &reply, best_weight = weight;
    if (!concatenated.empty()) concatenated += "\n\n";
    concatenated += "[" + state->traces[i].service + "] " + reply.text;
    for (const auto& passage : reply.passages) result.citations.push_back(std::make_unique<wire::PassageT>(*passage));
    result.prompt_tokens += reply.prompt_tokens;
    result.completion_tokens += reply.completion_tokens;
  }
  if (!best) {
    result.status = first_failure ? first_failure->status : wire::StatusCode::INTERNAL;
    result.error = first_failure ? first_failure->error : "no expert answered";
    result.retry_after_ms = failure_retry_after;
  } else {
    const bool concat = config_.aggregation == config::Aggregation::kConcat;
    result.answer = concat ? concatenated : best->text;
    result.finish_reason = best->finish_reason;
    if (state->plan == Plan::kRalm) {
      result.citations = CloneAll(state->context);
    } else if (!concat) {
      result.citations = CloneAll(best->passages);
    }
  }
  // Only built when asked for: the OpenAI endpoints never return it.
  if (state->query.with_trace) {
    auto trace = std::make_unique<wire::TraceT>();
    for (const auto& score : state->decision.scores) trace->gate.push_back(std::make_unique<wire::GateScoreT>(score));
    trace->gate_reason = state->decision.reason;
    trace->chosen = state->decision.chosen;
    trace->plan = PlanName(state->plan);
    trace->plan_reason = state->plan_reason;
    trace->aggregation = config::Name(config_.aggregation);
    for (auto& expert_trace : state->traces)
      trace->experts.push_back(std::make_unique<wire::ExpertTraceT>(std::move(expert_trace)));
    trace->total_ms = static_cast<float>(MillisSince(state->start));
    result.trace = std::move(trace);
  }

  if (state->query.stream && !state->streamed && result.status == wire::StatusCode::OK && !result.answer.empty() &&
      state->callbacks.on_partial) {
    state->callbacks.on_partial(result.answer);
  }
  state->callbacks.on_result(std::move(result));
}

}  // namespace thalamus::router
