// gate_model: the learned gate, a small MLP (LibTorch) over a query's
// embedding and a few cheap features, with a softmax over expert services.
//
// A gate file is one torch::serialize archive holding the MLP's parameters
// and a JSON metadata string: the service names (in output order), the
// embedder spec and id, the feature names and the layer sizes. Only
// gate_model.cpp includes LibTorch; this header and everything using it stay
// free of it.
//
// Ownership: a GateModel owns its network and embedder. Thread safety:
// Probabilities may run on several threads at once. Errors: Load and Train
// throw std::runtime_error naming the file.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gate/gate_examples.h"

namespace thalamus::gate {

// The gate's MLP is tiny, so more than one intra-op thread only adds
// fork-joins, and OpenMP workers spinning on a busy machine made training 20x
// slower. Sets LibTorch's process-wide intra-op pool to one thread: the
// router and the `thalamus gate` tools call it first (they do no other
// LibTorch work).
void UseOneTorchThread();

struct GateMetadata {
  std::vector<std::string> services;  // the softmax's outputs, in order
  std::string embedder;               // spec given to retrieval::MakeEmbedder
  std::string embedder_id;            // what it reported, e.g. "hashing-v1:384"
  std::vector<std::string> features;
  int hidden = 0;
  size_t input_dim = 0;
};

struct GateTrainOptions {
  std::string embedder = "hashing:1024";
  int hidden = 32;
  int epochs = 300;
  int batch_size = 64;
  double learning_rate = 3e-3;
  double weight_decay = 1e-4;
  double dropout = 0.1;
  // Weight of the Switch Transformer load-balancing term N * sum_i f_i * P_i
  // (f_i: fraction of the batch whose argmax is i, P_i: mean probability of i).
  double balance_weight = 0.01;
  uint64_t seed = 1;
};

struct GateTrainReport {
  double final_loss = 0;
  double final_balance = 0;  // the balancing term, unweighted (1.0 is perfectly balanced)
  double train_accuracy = 0;
  size_t examples = 0;
};

class GateModel {
 public:
  ~GateModel();
  GateModel(const GateModel&) = delete;
  GateModel& operator=(const GateModel&) = delete;

  // Loads a gate file; the embedder spec's relative paths resolve against the
  // file's folder.
  static std::unique_ptr<GateModel> Load(const std::string& path);

  // Trains on `examples` (every expert must be one of `services`), writes the
  // gate file to `out_path` atomically (temporary file, then rename).
  static GateTrainReport Train(const std::vector<std::string>& services, const std::vector<GateExample>& examples,
                               const GateTrainOptions& options, const std::string& out_path);

  const GateMetadata& metadata() const;
  // One probability per metadata().services, summing to 1.
  std::vector<float> Probabilities(std::string_view text) const;
  // Rows of Probabilities for many texts at once.
  std::vector<std::vector<float>> Probabilities(const std::vector<std::string>& texts) const;

 private:
  struct Impl;
  explicit GateModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace thalamus::gate
