// router/: the core of the thalamus-router process: the query pipeline
// (here), the broker (broker.h), the event loop (event_loop.h), the
// supervisor of local experts (supervisor.h) and the metrics (metrics.h).
//
// QueryPipeline is the QueryService behind every front end: gate
// (gate/gate.h) -> plan -> dispatch (dispatcher.h; the broker) -> aggregate. Plans: `direct` (the chosen experts
// answer in parallel: one, or a fan-out when gate.top_k > 1) and `ralm`
// (aggregation: ralm; the chosen rag experts, or every rag expert when the
// gate chose none, retrieve in parallel; their best ralm.k passages fill
// ralm.template within the generator's token budget (ralm_plan.h) and the
// generator answers). Aggregation: top1 (the best-ranked expert that
// answered), weighted (gate probability x expert confidence), concat (all
// answers, each tagged with its service, with all citations), ralm (the
// generator's answer, citing the passages). Every decision is recorded in the
// trace. The constructor throws std::runtime_error for a bad gate file.
#pragma once

#include <atomic>
#include <map>
#include <string>

#include "config/config.h"
#include "gate/gate.h"
#include "router/dispatcher.h"
#include "router/event_loop.h"
#include "router/metrics.h"
#include "router/query_service.h"
#include "router/ralm_plan.h"

namespace thalamus::router {

class QueryPipeline : public QueryService {
 public:
  // Borrows all four, which must outlive it.
  QueryPipeline(const config::Config& config, EventLoop& loop, Dispatcher& dispatcher, Metrics& metrics);

  void Submit(wire::QueryT query, QueryCallbacks callbacks) override;
  std::vector<ServiceInfo> Services() const override;
  bool Ready() const override;

  void SubmitInLoop(wire::QueryT query, QueryCallbacks callbacks) override;

  // Shutting down (SIGTERM): from now on Ready() is false and new queries are
  // answered UNAVAILABLE with retry_after_ms, while those already submitted
  // run to their end. Any thread.
  void BeginDrain() { draining_ = true; }
  // Queries submitted and not yet answered. Any thread.
  int64_t in_flight() const { return in_flight_.load(); }

 private:
  struct QueryState;
  void DispatchExperts(const std::shared_ptr<QueryState>& state, const std::vector<std::string>& services,
                       bool answering);
  void OnExpertReply(const std::shared_ptr<QueryState>& state, size_t trace_index, wire::ExpertReplyT reply,
                     const DispatchOutcome& outcome);
  void PlanQuery(const std::shared_ptr<QueryState>& state);
  const std::vector<gate::ServiceLoad>& LiveLoad();
  void StartGeneration(const std::shared_ptr<QueryState>& state);
  void Complete(const std::shared_ptr<QueryState>& state);

  const config::Config& config_;
  EventLoop& loop_;
  Dispatcher& dispatcher_;
  Metrics& metrics_;
  gate::Gate gate_;
  struct Counter {
    TokenCounter count;
    std::string how;
  };
  std::map<std::string, Counter> token_counters_;  // per generator service, for the ralm budget
  // Requests dispatched and not yet answered, per service (loop thread only):
  // exact at every query, where the broker's snapshot lags by a heartbeat.
  std::map<std::string, int> outstanding_;
  // LiveLoad's answer, copied from the broker's snapshot only when that changed.
  std::vector<gate::ServiceLoad> live_;
  uint64_t live_version_ = UINT64_MAX;
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> in_flight_{0};
};

}  // namespace thalamus::router
