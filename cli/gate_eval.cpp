// `thalamus gate eval`: accuracy, confusion matrix and calibration of a
// trained gate on held-out examples, beside a nearest-example baseline (the
// label of the most cosine-similar training example, as semantic-router does)
// on the same examples with the same embedder.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <set>

#include <boost/program_options.hpp>

#include "cli/commands.h"
#include "cli/eval_metrics.h"
#include "cli/parse_options.h"
#include "config/config.h"
#include "gate/gate_model.h"
#include "retrieval/embedder.h"

namespace thalamus::cli {
namespace {

namespace po = boost::program_options;

size_t IndexOf(const std::vector<std::string>& names, const std::string& name) {
  return static_cast<size_t>(std::find(names.begin(), names.end(), name) - names.begin());
}

void PrintConfusion(const std::vector<std::string>& labels, const std::vector<size_t>& truth,
                    const std::vector<size_t>& predicted) {
  const size_t n = labels.size();
  std::vector<std::vector<int>> matrix(n, std::vector<int>(n, 0));
  for (size_t i = 0; i < truth.size(); ++i) matrix[truth[i]][predicted[i]]++;
  size_t width = 8;
  for (const std::string& label : labels) width = std::max(width, label.size() + 1);
  std::printf("  confusion (rows: true expert, columns: predicted)\n  %*s", static_cast<int>(width), "");
  for (const std::string& label : labels) std::printf("%*s", static_cast<int>(width), label.c_str());
  std::printf("\n");
  for (size_t r = 0; r < n; ++r) {
    std::printf("  %*s", static_cast<int>(width), labels[r].c_str());
    for (size_t c = 0; c < n; ++c) std::printf("%*d", static_cast<int>(width), matrix[r][c]);
    std::printf("\n");
  }
}

double Accuracy(const std::vector<size_t>& truth, const std::vector<size_t>& predicted) {
  size_t right = 0;
  for (size_t i = 0; i < truth.size(); ++i) right += truth[i] == predicted[i];
  return truth.empty() ? 0 : static_cast<double>(right) / truth.size();
}

// The nearest training example's label, by cosine (the embeddings are unit length).
std::vector<size_t> NearestExample(const retrieval::Embedder& embedder, const std::vector<gate::GateExample>& train,
                                   const std::vector<gate::GateExample>& test, const std::vector<std::string>& labels) {
  const size_t dim = embedder.dim();
  std::vector<std::string> texts;
  for (const auto& example : train) texts.push_back(example.text);
  std::vector<float> train_vectors(texts.size() * dim);
  embedder.EmbedDocuments(texts, train_vectors.data());
  std::vector<size_t> predicted;
  std::vector<float> query(dim);
  for (const auto& example : test) {
    embedder.EmbedQuery(example.text, query.data());
    size_t best = 0;
    float best_score = -2;
    for (size_t j = 0; j < train.size(); ++j) {
      float score = 0;
      for (size_t d = 0; d < dim; ++d) score += query[d] * train_vectors[j * dim + d];
      if (score > best_score) best_score = score, best = j;
    }
    predicted.push_back(IndexOf(labels, train[best].expert));
  }
  return predicted;
}

}  // namespace

int RunGateEval(int argc, char** argv) {
  int bins = 10;
  po::options_description options("thalamus gate eval: score a trained gate on held-out examples");
  options.add_options()("help,h", "show this help")("config", po::value<std::string>(),
                                                    "config the gate serves (default: embedded)")(
      "gate", po::value<std::string>(), "gate file (default: the config's gate.path)")(
      "data", po::value<std::string>()->required(), "held-out examples, JSONL {\"text\", \"expert\"}")(
      "train", po::value<std::string>(), "the training examples, for the nearest-example baseline")(
      "bins", po::value(&bins)->default_value(bins), "calibration bins");
  po::variables_map vars;
  if (auto exit_code = ParseOptions(argc, argv, "thalamus gate eval", options, vars, [&] {
        if (bins < 1 || bins > 1000) throw po::error("--bins must be in [1, 1000]");
      })) {
    return *exit_code;
  }
  try {
    const config::Config cfg =
        vars.count("config") ? config::LoadFile(vars["config"].as<std::string>()) : config::LoadDefault();
    const std::string gate_path = vars.count("gate") ? vars["gate"].as<std::string>() : cfg.gate.path;
    if (gate_path.empty()) throw std::runtime_error("no gate file: pass --gate or set gate.path in the config");
    auto model = gate::GateModel::Load(gate_path);
    const std::vector<std::string>& labels = model->metadata().services;
    std::set<std::string> configured;
    for (const auto& expert : cfg.experts) configured.insert(expert.name);
    if (std::set<std::string>(labels.begin(), labels.end()) != configured) {
      throw std::runtime_error(gate_path + " was trained for other services than " + cfg.file + " configures");
    }
    const auto test = gate::ReadGateExamples(vars["data"].as<std::string>());
    std::vector<std::string> texts;
    std::vector<size_t> truth;
    for (size_t i = 0; i < test.size(); ++i) {
      truth.push_back(IndexOf(labels, test[i].expert));
      if (truth.back() == labels.size()) {
        throw std::runtime_error("held-out example " + std::to_string(i + 1) + " names unknown expert '" +
                                 test[i].expert + "'");
      }
      texts.push_back(test[i].text);
    }
    const auto probabilities = model->Probabilities(texts);
    std::vector<size_t> predicted;
    std::vector<double> confidence;
    std::vector<bool> correct;
    for (size_t i = 0; i < probabilities.size(); ++i) {
      const auto& p = probabilities[i];
      predicted.push_back(static_cast<size_t>(std::max_element(p.begin(), p.end()) - p.begin()));
      confidence.push_back(p[predicted.back()]);
      correct.push_back(predicted.back() == truth[i]);
    }
    std::printf("gate %s (embedder %s) on %s: %zu examples\n", gate_path.c_str(), model->metadata().embedder_id.c_str(),
                vars["data"].as<std::string>().c_str(), test.size());
    std::printf("gate: accuracy %.3f\n", Accuracy(truth, predicted));
    PrintConfusion(labels, truth, predicted);
    std::vector<CalibrationBin> rows;
    const double ece = ExpectedCalibrationError(confidence, correct, bins, &rows);
    std::printf("  calibration: ECE %.3f over %d bins\n  %-13s %6s %11s %9s\n", ece, bins, "confidence", "count",
                "mean conf", "accuracy");
    for (const CalibrationBin& bin : rows) {
      if (bin.count)
        std::printf("  [%.2f, %.2f) %6zu %11.3f %9.3f\n", bin.lower, bin.upper, bin.count, bin.confidence,
                    bin.accuracy);
    }
    if (!vars.count("train")) {
      std::printf("baseline: pass --train FILE to compare with the nearest training example\n");
      return 0;
    }
    const auto train = gate::ReadGateExamples(vars["train"].as<std::string>());
    if (train.empty()) throw std::runtime_error("--train has no examples");
    for (size_t i = 0; i < train.size(); ++i) {
      if (IndexOf(labels, train[i].expert) == labels.size()) {
        throw std::runtime_error("training example " + std::to_string(i + 1) + " names unknown expert '" +
                                 train[i].expert + "'");
      }
    }
    auto embedder = retrieval::MakeEmbedder(model->metadata().embedder,
                                            std::filesystem::absolute(gate_path).parent_path().string());
    const std::vector<size_t> nearest = NearestExample(*embedder, train, test, labels);
    std::printf("baseline (nearest of %zu training examples by cosine): accuracy %.3f\n", train.size(),
                Accuracy(truth, nearest));
    PrintConfusion(labels, truth, nearest);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "thalamus gate eval: %s\n", e.what());
    return 1;
  }
}

}  // namespace thalamus::cli
