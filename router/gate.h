// Gate: decides which expert services answer a query.
//
// Until a trained gate is configured (gate.path), the documented fallback rule
// decides:
//   1. experts named by the request (`experts` in /v1/query, `model` in the
//      OpenAI endpoints) answer; an unknown name is NOT_FOUND;
//   2. otherwise gate.default_expert answers, if set;
//   3. otherwise the first configured generator (mamba, transformer) answers,
//      or the first configured expert if there is no generator.
// With aggregation `ralm`, every rag service retrieves first and the chosen
// generator answers with their passages.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"
#include "messages/messages.h"

namespace thalamus::router {

struct GateDecision {
  wire::StatusCode status = wire::StatusCode::OK;  // NOT_FOUND for an unknown named expert
  std::string error;
  std::vector<std::string> chosen;        // services that answer, best first
  std::vector<wire::GateScoreT> scores;   // probability per configured service
  std::string reason;
};

class Gate {
 public:
  explicit Gate(const config::Config& config);
  GateDecision Decide(const wire::QueryT& query) const;

 private:
  const config::Config& config_;
};

}  // namespace thalamus::router
