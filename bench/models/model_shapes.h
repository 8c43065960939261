// The checkpoint shapes the model benchmarks use with random weights.
#pragma once

#include <cstdint>
#include <vector>

#include "models/mamba.h"

namespace thalamus::models {

// state-spaces/mamba-130m: d_model 768, d_inner 1536, 24 layers, vocab 50280.
inline MambaConfig Mamba130m() {
  MambaConfig c;
  c.d_model = 768;
  c.n_layer = 24;
  c.vocab_size = 50280;
  c.d_inner = 1536;
  c.dt_rank = 48;
  return c;
}

// `count` token ids below 50000 (inside the vocabulary), spread by `seed`.
inline std::vector<int32_t> RandomIds(int64_t count, uint32_t seed) {
  std::vector<int32_t> ids(count);
  for (int64_t i = 0; i < count; ++i) ids[i] = static_cast<int32_t>((seed + i * 7919u) % 50000u);
  return ids;
}

}  // namespace thalamus::models
