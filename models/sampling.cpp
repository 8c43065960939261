#include "models/sampling.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace thalamus::models {
namespace {

// Larger value first; among equal values the smaller id, so ties are stable.
bool Before(const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) {
  return a.first > b.first || (a.first == b.first && a.second < b.second);
}

float Finite(float logit) { return std::isnan(logit) ? -std::numeric_limits<float>::infinity() : logit; }

}  // namespace

void SamplingParams::Validate() const {
  if (max_tokens < 0) throw std::invalid_argument("max_tokens must be >= 0, got " + std::to_string(max_tokens));
  if (!std::isfinite(temperature) || temperature < 0) throw std::invalid_argument("temperature must be a number >= 0");
  if (top_k < 0) throw std::invalid_argument("top_k must be >= 0, got " + std::to_string(top_k));
  if (!(top_p > 0.0f && top_p <= 1.0f)) throw std::invalid_argument("top_p must be in (0, 1]");
  for (const std::string& sequence : stop) {
    if (sequence.empty()) throw std::invalid_argument("stop sequences must not be empty");
  }
}

Sampler::Sampler(const SamplingParams& params)
    : temperature_(params.temperature),
      top_k_(params.top_k),
      top_p_(params.top_p),
      random_(params.seed ? *params.seed : std::random_device{}()) {
  params.Validate();
}

int32_t Sampler::Sample(std::span<const float> logits) {
  const int64_t vocab = static_cast<int64_t>(logits.size());
  if (vocab == 0) throw std::invalid_argument("sampling from an empty row of logits");
  if (temperature_ <= 0.0f) {
    int32_t best = 0;
    for (int64_t i = 1; i < vocab; ++i) {
      if (Finite(logits[i]) > Finite(logits[best])) best = static_cast<int32_t>(i);
    }
    return best;
  }
  scratch_.clear();
  scratch_.reserve(vocab);
  for (int64_t i = 0; i < vocab; ++i) scratch_.emplace_back(Finite(logits[i]) / temperature_, static_cast<int32_t>(i));
  bool sorted = false;
  if (top_k_ > 0 && top_k_ < vocab) {
    std::partial_sort(scratch_.begin(), scratch_.begin() + top_k_, scratch_.end(), Before);
    scratch_.resize(top_k_);
    sorted = true;
  }
  float max = sorted ? scratch_.front().first : std::max_element(scratch_.begin(), scratch_.end())->first;
  if (!std::isfinite(max)) throw std::invalid_argument("sampling: no finite logit");
  double normalizer = 0;
  for (auto& candidate : scratch_) {
    candidate.first = std::exp(candidate.first - max);  // exp keeps the order
    normalizer += candidate.first;
  }
  return SampleFrom(scratch_, sorted, normalizer);
}

// candidates hold unnormalized probabilities summing to `normalizer`.
int32_t Sampler::SampleFrom(std::vector<std::pair<float, int32_t>>& candidates, bool sorted, double normalizer) {
  double total = normalizer;
  if (top_p_ < 1.0f) {
    // The nucleus is usually small: order a short head first, everything only when the head falls short.
    const double target = top_p_ * normalizer;
    size_t head = sorted ? candidates.size() : std::min<size_t>(candidates.size(), 256);
    if (!sorted) std::partial_sort(candidates.begin(), candidates.begin() + head, candidates.end(), Before);
    double cumulative = 0;
    size_t kept = 0;
    for (; kept < candidates.size(); ++kept) {
      if (kept == head) {
        std::sort(candidates.begin() + head, candidates.end(), Before);
        head = candidates.size();
      }
      if (kept > 0 && cumulative >= target) break;
      cumulative += candidates[kept].first;
    }
    candidates.resize(kept);
    total = cumulative;
  }
  double draw = std::uniform_real_distribution<double>(0.0, total)(random_);
  for (const auto& [probability, id] : candidates) {
    draw -= probability;
    if (draw < 0) return id;
  }
  return candidates.back().second;  // rounding left a sliver
}

}  // namespace thalamus::models
