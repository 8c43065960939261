#include "router/gate.h"

#include <algorithm>

namespace thalamus::router {

Gate::Gate(const config::Config& config) : config_(config) {}

GateDecision Gate::Decide(const wire::QueryT& query) const {
  GateDecision decision;
  if (!query.experts.empty()) {
    for (const std::string& name : query.experts) {
      if (!config_.FindExpert(name)) {
        decision.status = wire::StatusCode::NOT_FOUND;
        decision.error = "no expert service named '" + name + "'";
        return decision;
      }
      decision.chosen.push_back(name);
    }
    decision.reason = "named by the request";
  } else if (!config_.gate.default_expert.empty()) {
    decision.chosen.push_back(config_.gate.default_expert);
    decision.reason = "fallback rule: gate.default_expert";
  } else {
    const config::ExpertConfig* pick = &config_.experts.front();
    for (const config::ExpertConfig& expert : config_.experts) {
      if (expert.kind == "mamba" || expert.kind == "transformer") {
        pick = &expert;
        break;
      }
    }
    decision.chosen.push_back(pick->name);
    decision.reason = "fallback rule: first generator expert";
  }
  for (const config::ExpertConfig& expert : config_.experts) {
    wire::GateScoreT score;
    score.service = expert.name;
    bool chosen = std::find(decision.chosen.begin(), decision.chosen.end(), expert.name) != decision.chosen.end();
    score.probability = chosen ? 1.0f / static_cast<float>(decision.chosen.size()) : 0.0f;
    decision.scores.push_back(score);
  }
  return decision;
}

}  // namespace thalamus::router
