// models/sampling: picks the next token from a row of logits.
//
// Greedy when temperature <= 0; otherwise softmax(logits / temperature)
// restricted to the top_k largest logits and then to the smallest set whose
// probability reaches top_p (the order Hugging Face applies them), sampled
// with the Sampler's own generator so a seed reproduces a sequence whatever
// else is batched with it. Errors: std::invalid_argument for bad parameters.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace thalamus::models {

struct SamplingParams {
  int64_t max_tokens = 256;
  float temperature = 0.0f;          // <= 0: greedy
  int64_t top_k = 0;                 // 0: no limit
  float top_p = 1.0f;                // 1: no limit
  std::optional<uint64_t> seed;      // none: a random seed
  std::vector<std::string> stop;     // stop sequences; the text ends before the first one
  std::vector<int32_t> stop_tokens;  // e.g. <|endoftext|>; not part of the output

  // Throws std::invalid_argument naming the parameter.
  void Validate() const;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);
  int32_t Sample(std::span<const float> logits);

 private:
  int32_t SampleFrom(std::vector<std::pair<float, int32_t>>& candidates, bool sorted, double normalizer);

  float temperature_;
  int64_t top_k_;
  float top_p_;
  std::mt19937_64 random_;
  std::vector<std::pair<float, int32_t>> scratch_;
};

}  // namespace thalamus::models
