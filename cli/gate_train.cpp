// `thalamus gate train|eval`: the learned gate's tools.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>

#include <boost/program_options.hpp>

#include "cli/commands.h"
#include "cli/parse_options.h"
#include "config/config.h"
#include "gate/gate_model.h"

namespace thalamus::cli {
namespace {

namespace po = boost::program_options;

int RunGateTrain(int argc, char** argv) {
  gate::GateTrainOptions train;
  po::options_description options(
      "thalamus gate train: train the gate on labelled examples ({\"text\", \"expert\"} per JSONL line)");
  options.add_options()("help,h", "show this help")(
      "config", po::value<std::string>(), "config whose expert services the gate chooses between (default: embedded)")(
      "data", po::value<std::string>()->required(), "training examples, JSONL")(
      "out", po::value<std::string>()->required(), "gate file to write (set gate.path to it)")(
      "embedder", po::value(&train.embedder)->default_value(train.embedder),
      "query embedder: hashing, hashing:DIM, or bert:DIR (DIR relative to --out's folder)")(
      "hidden", po::value(&train.hidden)->default_value(train.hidden), "hidden units")(
      "epochs", po::value(&train.epochs)->default_value(train.epochs), "passes over the examples")(
      "batch-size", po::value(&train.batch_size)->default_value(train.batch_size), "examples per step")(
      "lr", po::value(&train.learning_rate)->default_value(train.learning_rate), "AdamW learning rate")(
      "weight-decay", po::value(&train.weight_decay)->default_value(train.weight_decay), "AdamW weight decay")(
      "dropout", po::value(&train.dropout)->default_value(train.dropout), "dropout after the hidden layer")(
      "balance-weight", po::value(&train.balance_weight)->default_value(train.balance_weight),
      "weight of the load-balancing term N * sum_i f_i * P_i")(
      "seed", po::value(&train.seed)->default_value(train.seed), "random seed");
  po::variables_map vars;
  if (auto exit_code = ParseOptions(argc, argv, "thalamus gate train", options, vars, [&] {
        if (train.hidden < 1 || train.epochs < 1 || train.batch_size < 1 || train.learning_rate <= 0 ||
            train.balance_weight < 0 || train.dropout < 0 || train.dropout >= 1) {
          throw po::error(
              "--hidden, --epochs and --batch-size must be >= 1, --lr > 0, --balance-weight >= 0, --dropout in [0, 1)");
        }
      })) {
    return *exit_code;
  }
  try {
    const config::Config cfg =
        vars.count("config") ? config::LoadFile(vars["config"].as<std::string>()) : config::LoadDefault();
    std::vector<std::string> services;
    for (const config::ExpertConfig& expert : cfg.experts) services.push_back(expert.name);
    const auto examples = gate::ReadGateExamples(vars["data"].as<std::string>());
    const std::string out = vars["out"].as<std::string>();
    const gate::GateTrainReport report = gate::GateModel::Train(services, examples, train, out);
    std::map<std::string, int> per_service;
    for (const auto& example : examples) ++per_service[example.expert];
    std::printf("trained on %zu examples:", report.examples);
    for (const std::string& service : services) std::printf(" %s %d", service.c_str(), per_service[service]);
    std::printf("\nfinal loss %.4f, balance term %.3f (1.0 = balanced), training accuracy %.3f\n", report.final_loss,
                report.final_balance, report.train_accuracy);
    std::printf("wrote %s (%ju bytes)\n", out.c_str(), static_cast<uintmax_t>(std::filesystem::file_size(out)));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "thalamus gate train: %s\n", e.what());
    return 1;
  }
}

}  // namespace

int RunGate(int argc, char** argv) {
  gate::UseOneTorchThread();
  if (argc >= 2 && std::strcmp(argv[1], "train") == 0) return RunGateTrain(argc - 1, argv + 1);
  if (argc >= 2 && std::strcmp(argv[1], "eval") == 0) return RunGateEval(argc - 1, argv + 1);
  std::fprintf(stderr,
               "usage: thalamus gate train --config FILE --data train.jsonl --out gate.pt\n"
               "       thalamus gate eval --config FILE --gate gate.pt --data heldout.jsonl [--train train.jsonl]\n");
  return argc >= 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) ? 0 : 2;
}

}  // namespace thalamus::cli
