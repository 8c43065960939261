// The checkpoint shapes the model benchmarks use with random weights.
#pragma once

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

}  // namespace thalamus::models
