// router: the thalamus-router process.
//
// Router is the query pipeline behind every front end: gate (gate.h) ->
// plan -> broker (broker.h) -> aggregate. Plans: `direct` (the chosen experts
// answer in parallel) and `ralm` (rag experts retrieve in parallel, then the
// generator answers with their passages as context). Aggregation: top1 (the
// best-ranked expert that answered), weighted (gate probability x expert
// confidence), concat (all answers, with citations), ralm (the generator's
// answer, citing the passages). Every decision is recorded in the trace.
#pragma once

#include "config/config.h"
#include "router/broker.h"
#include "router/event_loop.h"
#include "router/gate.h"
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
  void StartGeneration(const std::shared_ptr<QueryState>& state);
  void Complete(const std::shared_ptr<QueryState>& state);

  const config::Config& config_;
  EventLoop& loop_;
  Broker& broker_;
  Metrics& metrics_;
  Gate gate_;
};

// thalamus-router's main: loads the config, binds the HTTP, ZeroMQ front-end
// and backend endpoints, starts the supervisor, serves until SIGINT/SIGTERM.
int RouterMain(int argc, char** argv);

}  // namespace thalamus::router
