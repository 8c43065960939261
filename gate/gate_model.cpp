// The learned gate's network, training loop and file format. The one
// translation unit of the service that includes LibTorch.
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <set>

#include <nlohmann/json.hpp>

#include "gate/gate_features.h"
#include "gate/gate_model.h"
#include "retrieval/embedder.h"

namespace thalamus::gate {
namespace {

constexpr const char* kMetadataKey = "thalamus_gate_metadata";
constexpr const char* kFormat = "thalamus-gate-v1";

torch::nn::Sequential MakeNetwork(size_t input_dim, int hidden, size_t outputs, double dropout) {
  return torch::nn::Sequential(torch::nn::Linear(static_cast<int64_t>(input_dim), hidden), torch::nn::ReLU(),
                               torch::nn::Dropout(dropout), torch::nn::Linear(hidden, static_cast<int64_t>(outputs)));
}

nlohmann::json MetadataJson(const GateMetadata& m) {
  return {{"format", kFormat},      {"services", m.services}, {"embedder", m.embedder},  {"embedder_id", m.embedder_id},
          {"features", m.features}, {"hidden", m.hidden},     {"input_dim", m.input_dim}};
}

GateMetadata ParseMetadata(const std::string& text, const std::string& path) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || j.value("format", "") != kFormat) {
    throw std::runtime_error(path + ": unknown gate file format (expected " + kFormat + ")");
  }
  try {
    GateMetadata m;
    m.services = j.at("services").get<std::vector<std::string>>();
    m.embedder = j.at("embedder").get<std::string>();
    m.embedder_id = j.at("embedder_id").get<std::string>();
    m.features = j.at("features").get<std::vector<std::string>>();
    m.hidden = j.at("hidden").get<int>();
    m.input_dim = j.at("input_dim").get<size_t>();
    if (m.services.empty() || m.hidden < 1) throw std::runtime_error("empty services or hidden size");
    return m;
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": damaged gate metadata: " + e.what());
  }
}

// Rows of [embedding | cheap features] for `texts`.
torch::Tensor InputRows(const retrieval::Embedder& embedder, const std::vector<std::string>& texts) {
  const size_t dim = embedder.dim();
  const size_t width = dim + GateFeatureNames().size();
  torch::Tensor rows = torch::zeros({static_cast<int64_t>(texts.size()), static_cast<int64_t>(width)});
  float* data = rows.data_ptr<float>();
  std::vector<float> embedding(dim);
  for (size_t i = 0; i < texts.size(); ++i) {
    embedder.EmbedQuery(texts[i], embedding.data());
    std::copy(embedding.begin(), embedding.end(), data + i * width);
    const std::vector<float> features = GateFeatures(texts[i]);
    std::copy(features.begin(), features.end(), data + i * width + dim);
  }
  return rows;
}

std::string ResolveEmbedderBase(const std::string& gate_path) {
  return std::filesystem::absolute(gate_path).parent_path().string();
}

}  // namespace

struct GateModel::Impl {
  GateMetadata metadata;
  std::unique_ptr<retrieval::Embedder> embedder;
  torch::nn::Sequential network{nullptr};
};

GateModel::GateModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GateModel::~GateModel() = default;

const GateMetadata& GateModel::metadata() const { return impl_->metadata; }

std::unique_ptr<GateModel> GateModel::Load(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) throw std::runtime_error(path + ": no such gate file");
  auto impl = std::make_unique<Impl>();
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path);
  } catch (const c10::Error& e) {
    throw std::runtime_error(path + ": not a readable gate file: " + e.what_without_backtrace());
  }
  c10::IValue metadata;
  if (!archive.try_read(kMetadataKey, metadata) || !metadata.isString()) {
    throw std::runtime_error(path +
                             ": not a Thalamus gate file (no gate metadata; write it with `thalamus gate train`)");
  }
  impl->metadata = ParseMetadata(metadata.toStringRef(), path);
  const GateMetadata& m = impl->metadata;
  if (m.features != GateFeatureNames()) {
    throw std::runtime_error(path +
                             ": written for other gate features; retrain it with this version's `thalamus gate train`");
  }
  try {
    impl->embedder = retrieval::MakeEmbedder(m.embedder, ResolveEmbedderBase(path), /*threads=*/1);
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": its embedder '" + m.embedder + "': " + e.what());
  }
  if (impl->embedder->id() != m.embedder_id || impl->embedder->dim() + m.features.size() != m.input_dim) {
    throw std::runtime_error(path + ": trained with embedder " + m.embedder_id + ", but '" + m.embedder +
                             "' now gives " + impl->embedder->id());
  }
  impl->network = MakeNetwork(m.input_dim, m.hidden, m.services.size(), 0.0);
  try {
    impl->network->load(archive);
  } catch (const c10::Error& e) {
    throw std::runtime_error(path + ": damaged gate weights: " + e.what_without_backtrace());
  }
  impl->network->eval();
  return std::unique_ptr<GateModel>(new GateModel(std::move(impl)));
}

std::vector<std::vector<float>> GateModel::Probabilities(const std::vector<std::string>& texts) const {
  std::vector<std::vector<float>> out;
  if (texts.empty()) return out;
  torch::NoGradGuard no_grad;
  torch::Tensor probabilities =
      torch::softmax(impl_->network->forward(InputRows(*impl_->embedder, texts)), 1).contiguous();
  const float* data = probabilities.data_ptr<float>();
  const size_t n = impl_->metadata.services.size();
  for (size_t i = 0; i < texts.size(); ++i) out.emplace_back(data + i * n, data + (i + 1) * n);
  return out;
}

std::vector<float> GateModel::Probabilities(std::string_view text) const {
  return Probabilities(std::vector<std::string>{std::string(text)}).front();
}

void UseOneTorchThread() { at::set_num_threads(1); }

namespace {

// The Switch Transformer auxiliary loss (Fedus et al. 2021, eq. 4):
// N * sum_i f_i * P_i, minimal (1.0) when routing is uniform. f_i, the
// fraction of examples whose argmax is i, carries no gradient; P_i does.
torch::Tensor BalanceTerm(const torch::Tensor& probabilities) {
  const int64_t n = probabilities.size(1);
  torch::Tensor counts = torch::one_hot(probabilities.argmax(1), n).to(torch::kFloat).mean(0);
  return static_cast<double>(n) * (counts * probabilities.mean(0)).sum();
}

void CheckLabels(const std::vector<std::string>& services, const std::vector<GateExample>& examples) {
  if (services.size() < 2) throw std::runtime_error("a gate needs at least two expert services to choose between");
  if (examples.empty()) throw std::runtime_error("no training examples");
  const std::set<std::string> known(services.begin(), services.end());
  for (size_t i = 0; i < examples.size(); ++i) {
    if (!known.count(examples[i].expert)) {
      throw std::runtime_error("example " + std::to_string(i + 1) + " names expert '" + examples[i].expert +
                               "', which the config does not have");
    }
  }
}

}  // namespace

GateTrainReport GateModel::Train(const std::vector<std::string>& services, const std::vector<GateExample>& examples,
                                 const GateTrainOptions& options, const std::string& out_path) {
  CheckLabels(services, examples);
  torch::manual_seed(options.seed);
  auto embedder = retrieval::MakeEmbedder(options.embedder, ResolveEmbedderBase(out_path));
  std::vector<std::string> texts;
  std::vector<int64_t> labels;
  for (const GateExample& example : examples) {
    texts.push_back(example.text);
    labels.push_back(std::find(services.begin(), services.end(), example.expert) - services.begin());
  }
  const torch::Tensor inputs = InputRows(*embedder, texts);
  const torch::Tensor targets = torch::tensor(labels, torch::kLong);

  GateMetadata m;
  m.services = services;
  m.embedder = options.embedder;
  m.embedder_id = embedder->id();
  m.features = GateFeatureNames();
  m.hidden = options.hidden;
  m.input_dim = static_cast<size_t>(inputs.size(1));
  torch::nn::Sequential network = MakeNetwork(m.input_dim, m.hidden, services.size(), options.dropout);
  torch::optim::AdamW optimizer(network->parameters(),
                                torch::optim::AdamWOptions(options.learning_rate).weight_decay(options.weight_decay));

  const int64_t n = inputs.size(0);
  const int64_t batch = std::max<int64_t>(1, std::min<int64_t>(options.batch_size, n));
  GateTrainReport report;
  report.examples = static_cast<size_t>(n);
  for (int epoch = 0; epoch < options.epochs; ++epoch) {
    network->train();
    torch::Tensor order = torch::randperm(n, torch::kLong);
    double loss_sum = 0, balance_sum = 0;
    int batches = 0;
    for (int64_t start = 0; start < n; start += batch) {
      torch::Tensor index = order.slice(0, start, std::min(n, start + batch));
      torch::Tensor logits = network->forward(inputs.index_select(0, index));
      torch::Tensor balance = BalanceTerm(torch::softmax(logits, 1));
      torch::Tensor loss = torch::nn::functional::cross_entropy(logits, targets.index_select(0, index)) +
                           options.balance_weight * balance;
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
      loss_sum += loss.item<double>();
      balance_sum += balance.item<double>();
      ++batches;
    }
    report.final_loss = loss_sum / batches;
    report.final_balance = balance_sum / batches;
  }
  network->eval();
  {
    torch::NoGradGuard no_grad;
    report.train_accuracy = network->forward(inputs).argmax(1).eq(targets).to(torch::kDouble).mean().item<double>();
  }

  torch::serialize::OutputArchive archive;
  network->save(archive);
  archive.write(kMetadataKey, c10::IValue(MetadataJson(m).dump()));
  const std::string temporary = out_path + ".tmp";
  try {
    archive.save_to(temporary);
  } catch (const c10::Error& e) {
    throw std::runtime_error(out_path + ": cannot write the gate file: " + e.what_without_backtrace());
  }
  if (std::rename(temporary.c_str(), out_path.c_str()) != 0) {
    std::remove(temporary.c_str());
    throw std::runtime_error(out_path + ": cannot write the gate file");
  }
  return report;
}

}  // namespace thalamus::gate
