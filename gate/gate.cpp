#include "gate/gate.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <set>
#include <stdexcept>

#include "gate/gate_features.h"
#include "gate/gate_model.h"

namespace thalamus::gate {
namespace {

std::string Fixed(double value, int digits = 3) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.*f", digits, value);
  return buffer;
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
  return "[" + out + "]";
}

const ServiceLoad* FindLive(const std::vector<ServiceLoad>& live, const std::string& name) {
  for (const ServiceLoad& info : live) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

void Normalise(std::vector<double>& p) {
  const double sum = std::accumulate(p.begin(), p.end(), 0.0);
  if (sum > 0) {
    for (double& x : p) x /= sum;
  }
}

double EntropyBits(const std::vector<double>& p) {
  double h = 0;
  for (double x : p) {
    if (x > 0) h -= x * std::log2(x);
  }
  return h;
}

std::string ContextAdjust(const config::Config& config, size_t tokens, std::vector<double>& p) {
  const config::GateConfig& gate = config.gate;
  if (!gate.context_aware || tokens <= static_cast<size_t>(gate.long_context_tokens)) return "";
  std::vector<std::string> boosted;
  for (size_t i = 0; i < config.experts.size(); ++i) {
    if (config.experts[i].kind == config::ExpertKind::kMamba)
      p[i] *= gate.long_context_boost, boosted.push_back(config.experts[i].name);
  }
  if (boosted.empty()) return "";
  return "; long context (~" + std::to_string(tokens) + " tokens > " + std::to_string(gate.long_context_tokens) +
         "): x" + Fixed(gate.long_context_boost, 2) + " for mamba " + JoinNames(boosted);
}

std::string LoadAdjust(const config::Config& config, const std::vector<ServiceLoad>& live, std::vector<double>& p,
                       bool* no_live) {
  std::vector<double> adjusted = p;
  std::string notes;
  bool any_live = false;
  for (size_t i = 0; i < config.experts.size(); ++i) {
    const config::ExpertConfig& expert = config.experts[i];
    const ServiceLoad* info = FindLive(live, expert.name);
    if (!info || info->live_workers <= 0) {
      if (p[i] > 0) notes += "; " + expert.name + " skipped (no live worker)";
      adjusted[i] = 0;
      continue;
    }
    any_live = true;
    const double load = static_cast<double>(info->queued + info->in_flight) /
                        (static_cast<double>(info->live_workers) * std::max(1, expert.concurrency));
    if (load > 0 && p[i] > 0) {
      const double factor = std::exp(-config.gate.load_alpha * load);
      adjusted[i] *= factor;
      notes += "; " + expert.name + " x" + Fixed(factor) + " for load " + Fixed(load, 2) + " (queued " +
               std::to_string(info->queued) + ", in flight " + std::to_string(info->in_flight) + ", " +
               std::to_string(info->live_workers) + " workers)";
    }
  }
  if (!any_live || std::accumulate(adjusted.begin(), adjusted.end(), 0.0) <= 0) {
    if (no_live) *no_live = true;
    return "; no scored service has a live worker, load ignored";
  }
  p = std::move(adjusted);
  return notes;
}

std::vector<std::string> ServiceNames(const config::Config& config) {
  std::vector<std::string> names;
  for (const config::ExpertConfig& expert : config.experts) names.push_back(expert.name);
  return names;
}

bool SameServices(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  return a.size() == b.size() && std::set<std::string>(a.begin(), a.end()) == std::set<std::string>(b.begin(), b.end());
}

bool GateFileIsNewerThanExamples(const config::Config& config) {
  std::error_code error;
  const auto gate_time = std::filesystem::last_write_time(config.gate.path, error);
  if (error) return false;
  const auto data_time = std::filesystem::last_write_time(config.gate.train_data, error);
  return error || data_time <= gate_time;
}

void TrainGateFromConfig(const config::Config& config) {
  const std::vector<GateExample> examples = ReadGateExamples(config.gate.train_data);
  const std::filesystem::path out(config.gate.path);
  if (out.has_parent_path()) std::filesystem::create_directories(out.parent_path());
  std::fprintf(stderr, "thalamus-router: training the gate on %zu examples from %s\n", examples.size(),
               config.gate.train_data.c_str());
  const GateTrainReport report = GateModel::Train(ServiceNames(config), examples, GateTrainOptions{}, config.gate.path);
  std::fprintf(stderr, "thalamus-router: wrote %s (training accuracy %.3f)\n", config.gate.path.c_str(),
               report.train_accuracy);
}

// With gate.train_data the gate file is derived from the examples, like a rag
// domain's index from its sources: one that is missing, older than the
// examples, unreadable or made for other services is trained again.
std::unique_ptr<GateModel> LoadOrTrainGate(const config::Config& config) {
  if (config.gate.train_data.empty()) return GateModel::Load(config.gate.path);
  if (GateFileIsNewerThanExamples(config)) {
    try {
      auto model = GateModel::Load(config.gate.path);
      if (SameServices(model->metadata().services, ServiceNames(config))) return model;
    } catch (const std::exception&) {
      // Unreadable: trained again below.
    }
  }
  TrainGateFromConfig(config);
  return GateModel::Load(config.gate.path);
}

}  // namespace

std::string GateText(const wire::QueryT& query) {
  for (auto it = query.messages.rbegin(); it != query.messages.rend(); ++it) {
    if (*it && (*it)->role == "user") return (*it)->content;
  }
  if (!query.prompt.empty() || query.messages.empty()) return query.prompt;
  return query.messages.back() ? query.messages.back()->content : "";
}

size_t QueryTokens(const wire::QueryT& query) {
  size_t tokens = EstimateTokens(query.prompt);
  for (const auto& message : query.messages) {
    if (message) tokens += EstimateTokens(message->content);
  }
  return tokens;
}

std::string AdjustScores(const config::Config& config, const std::vector<ServiceLoad>& live, size_t query_tokens,
                         std::vector<double>& probabilities, bool* no_live) {
  if (no_live) *no_live = false;
  std::string reason = ContextAdjust(config, query_tokens, probabilities);
  if (config.gate.load_aware) reason += LoadAdjust(config, live, probabilities, no_live);
  Normalise(probabilities);
  return reason;
}

std::vector<size_t> SelectExperts(const std::vector<double>& probabilities, int top_k, double threshold) {
  std::vector<size_t> order(probabilities.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return probabilities[a] > probabilities[b]; });
  std::vector<size_t> chosen;
  for (size_t index : order) {
    if (chosen.size() >= static_cast<size_t>(std::max(1, top_k))) break;
    if (!chosen.empty() && (probabilities[index] <= 0 || probabilities[index] < threshold)) break;
    chosen.push_back(index);
  }
  return chosen;
}

Gate::Gate(const config::Config& config) : config_(config) {
  if (config.gate.path.empty()) return;
  model_ = LoadOrTrainGate(config);
  const std::vector<std::string>& trained = model_->metadata().services;
  const std::vector<std::string> configured = ServiceNames(config);
  if (!SameServices(trained, configured)) {
    throw std::runtime_error("gate file " + config.gate.path + " was trained for the services " + JoinNames(trained) +
                             " but " + config.file + " configures " + JoinNames(configured) +
                             "; retrain it with `thalamus gate train --config " + config.file + " ...`");
  }
  for (const std::string& name : trained) {
    config_index_.push_back(std::find(configured.begin(), configured.end(), name) - configured.begin());
  }
}

Gate::~Gate() = default;

GateDecision Gate::Decide(const wire::QueryT& query, const std::vector<ServiceLoad>& live) const {
  GateDecision decision;
  if (!query.experts.empty()) {
    for (const std::string& name : query.experts) {
      if (!config_.FindExpert(name)) {
        decision.status = wire::StatusCode::NOT_FOUND;
        decision.error = "no expert service named '" + name + "'";
        decision.fallback = "unknown_expert";
        return decision;
      }
      decision.chosen.push_back(name);
    }
    decision.reason = "named by the request";
  } else if (model_) {
    return DecideByModel(query, live);
  } else if (!config_.gate.default_expert.empty()) {
    decision.chosen.push_back(config_.gate.default_expert);
    decision.reason = "fallback rule: gate.default_expert (no trained gate)";
    decision.fallback = "no_gate";
  } else {
    const config::ExpertConfig* pick = &config_.experts.front();
    for (const config::ExpertConfig& expert : config_.experts) {
      if (config::IsGenerator(expert.kind)) {
        pick = &expert;
        break;
      }
    }
    decision.chosen.push_back(pick->name);
    decision.reason = "fallback rule: first generator expert (no trained gate)";
    decision.fallback = "no_gate";
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

GateDecision Gate::DecideByModel(const wire::QueryT& query, const std::vector<ServiceLoad>& live) const {
  GateDecision decision;
  decision.from_model = true;
  const std::vector<float> model_p = model_->Probabilities(GateText(query));
  std::vector<double> p(config_.experts.size(), 0.0);
  for (size_t i = 0; i < model_p.size(); ++i) p[config_index_[i]] = model_p[i];
  decision.entropy_bits = EntropyBits(p);

  std::string model_says;
  for (size_t i = 0; i < p.size(); ++i) model_says += (i ? ", " : "") + config_.experts[i].name + " " + Fixed(p[i]);
  bool no_live = false;
  const std::string adjustments = AdjustScores(config_, live, QueryTokens(query), p, &no_live);
  if (no_live) decision.fallback = "no_live_expert";

  const std::vector<size_t> chosen = SelectExperts(p, config_.gate.top_k, config_.gate.threshold);
  for (size_t index : chosen) decision.chosen.push_back(config_.experts[index].name);
  for (size_t i = 0; i < p.size(); ++i) {
    wire::GateScoreT score;
    score.service = config_.experts[i].name;
    score.probability = static_cast<float>(p[i]);
    decision.scores.push_back(score);
  }
  decision.reason = "trained gate: model {" + model_says + "}" + adjustments + "; top_k " +
                    std::to_string(config_.gate.top_k) + ", threshold " + Fixed(config_.gate.threshold, 2) + " -> " +
                    JoinNames(decision.chosen);
  return decision;
}

}  // namespace thalamus::gate
