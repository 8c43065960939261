// router: the thalamus-router process.
//
// Router is the query pipeline behind every front end: gate (gate.h) ->
// plan -> broker (broker.h) -> aggregate. Plans: `direct` (the chosen experts
// answer in parallel: one, or a fan-out when gate.top_k > 1) and `ralm`
// (aggregation: ralm; the chosen rag experts, or every rag expert when the
// gate chose none, retrieve in parallel; their best ralm.k passages fill
// ralm.template within the generator's token budget (gate_ralm.h) and the
// generator answers). Aggregation: top1 (the best-ranked expert that
// answered), weighted (gate probability x expert confidence), concat (all
// answers, each tagged with its service, with all citations), ralm (the
// generator's answer, citing the passages). Every decision is recorded in the
// trace. The constructor throws std::runtime_error for a bad gate file.
#pragma once

#include <map>
#include <string>

#include "config/config.h"
#include "router/broker.h"
#include "router/event_loop.h"
#include "router/gate.h"
#include "router/gate_ralm.h"
#include "router/metrics.h"
#include "router/query_service.h"

namespace thalamus::router {

class Router : public QueryService {
 public:
  Router(const config::Config& config, EventLoop& loop, Broker& broker, Metrics& metrics);

  void Submit(wire::QueryT query, QueryCallbacks callbacks) override;
  std::vector<ServiceInfo> Services() const override;
  bool Ready() const override;

  // The same as Submit, for callers already on the loop thread.
  void SubmitInLoop(wire::QueryT query, QueryCallbacks callbacks);

 private:
  struct QueryState;
  void DispatchExperts(const std::shared_ptr<QueryState>& state, const std::vector<std::string>& services,
                       bool answering);
  void OnExpertReply(const std::shared_ptr<QueryState>& state, size_t trace_index, wire::ExpertReplyT reply,
                     const DispatchOutcome& outcome);
  void PlanQuery(const std::shared_ptr<QueryState>& state);
  const std::vector<ServiceInfo>& LiveLoad();
  void StartGeneration(const std::shared_ptr<QueryState>& state);
  void Complete(const std::shared_ptr<QueryState>& state);

  const config::Config& config_;
  EventLoop& loop_;
  Broker& broker_;
  Metrics& metrics_;
  Gate gate_;
  struct Counter {
    TokenCounter count;
    std::string how;
  };
  std::map<std::string, Counter> token_counters_;  // per generator service, for the ralm budget
  // Requests dispatched and not yet answered, per service (loop thread only):
  // exact at every query, where the broker's snapshot lags by a heartbeat.
  std::map<std::string, int> outstanding_;
  // LiveLoad's answer, copied from the broker's snapshot only when that changed.
  std::vector<ServiceInfo> live_;
  uint64_t live_version_ = UINT64_MAX;
};

// thalamus-router's main: loads the config, binds the HTTP, ZeroMQ front-end
// and backend endpoints, starts the supervisor, serves until SIGINT/SIGTERM.
int RouterMain(int argc, char** argv);

}  // namespace thalamus::router
