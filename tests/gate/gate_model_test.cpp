// The learned gate: training, the file format, loading and refusing files.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "config/config.h"
#include "gate/gate.h"
#include "gate/gate_features.h"
#include "gate/gate_model.h"

namespace thalamus::gate {
namespace {

class GateModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("gate_model_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  static std::vector<GateExample> Examples() {
    std::vector<GateExample> examples;
    for (const char* t : {"compile the c++ code", "segfault in my pointer code", "python exception traceback",
                          "git merge conflict in code", "fix this compiler error"}) {
      examples.push_back({t, "code"});
    }
    for (const char* t : {"integral of x squared", "solve the quadratic equation", "derivative of sine",
                          "probability of two dice", "prime factors of 84"}) {
      examples.push_back({t, "math"});
    }
    return examples;
  }

  std::filesystem::path dir_;
};

TEST_F(GateModelTest, TrainsSavesLoadsAndPredicts) {
  GateTrainOptions options;
  options.embedder = "hashing:256";
  options.epochs = 150;
  const auto report = GateModel::Train({"math", "code"}, Examples(), options, Path("gate.pt"));
  EXPECT_EQ(report.examples, 10u);
  EXPECT_DOUBLE_EQ(report.train_accuracy, 1.0);
  EXPECT_GT(report.final_balance, 0.99);  // N * sum f_i P_i >= 1 for any batch
  EXPECT_FALSE(std::filesystem::exists(Path("gate.pt.tmp")));

  auto model = GateModel::Load(Path("gate.pt"));
  EXPECT_EQ(model->metadata().services, (std::vector<std::string>{"math", "code"}));
  EXPECT_EQ(model->metadata().embedder_id, "hashing-v1:256");
  EXPECT_EQ(model->metadata().features, GateFeatureNames());
  for (const GateExample& example : Examples()) {
    const std::vector<float> p = model->Probabilities(example.text);
    ASSERT_EQ(p.size(), 2u);
    EXPECT_NEAR(p[0] + p[1], 1.0, 1e-5);
    EXPECT_EQ(p[0] > p[1] ? "math" : "code", example.expert) << example.text;
  }
  // Batched and single predictions agree.
  const auto rows = model->Probabilities(std::vector<std::string>{"derivative of sine", "git merge conflict in code"});
  EXPECT_NEAR(rows[1][1], model->Probabilities("git merge conflict in code")[1], 1e-5);
}

TEST_F(GateModelTest, TheRouterGateUsesTheModelInConfigOrder) {
  GateTrainOptions options;
  options.embedder = "hashing:256";
  options.epochs = 150;
  GateModel::Train({"math", "code"}, Examples(), options, Path("gate.pt"));
  const config::Config cfg =
      config::LoadString("gate: {path: " + Path("gate.pt") +
                             ", top_k: 2, threshold: 0.99}\n"
                             "experts:\n  - {name: code, kind: echo}\n  - {name: math, kind: echo}\n",
                         Path("thalamus.yaml"));
  Gate gate(cfg);
  EXPECT_TRUE(gate.trained());
  wire::QueryT query;
  query.prompt = "solve the quadratic equation";
  std::vector<ServiceLoad> live(2);
  live[0].name = "code", live[0].live_workers = 1;
  live[1].name = "math", live[1].live_workers = 1;
  const GateDecision decision = gate.Decide(query, live);
  EXPECT_TRUE(decision.from_model);
  EXPECT_EQ(decision.chosen, std::vector<std::string>{"math"});
  ASSERT_EQ(decision.scores.size(), 2u);
  EXPECT_EQ(decision.scores[0].service, "code");
  EXPECT_GT(decision.scores[1].probability, decision.scores[0].probability);
  EXPECT_NEAR(decision.scores[0].probability + decision.scores[1].probability, 1.0, 1e-5);
  EXPECT_GE(decision.entropy_bits, 0.0);
  EXPECT_LE(decision.entropy_bits, 1.0);
  EXPECT_EQ(decision.reason.rfind("trained gate: model {code ", 0), 0u) << decision.reason;
}

TEST_F(GateModelTest, RefusesAGateForOtherServices) {
  GateTrainOptions options;
  options.epochs = 2;
  GateModel::Train({"math", "code"}, Examples(), options, Path("gate.pt"));
  const config::Config cfg = config::LoadString(
      "gate: {path: " + Path("gate.pt") + "}\nexperts:\n  - {name: code, kind: echo}\n  - {name: chat, kind: echo}\n",
      Path("thalamus.yaml"));
  try {
    Gate gate(cfg);
    FAIL() << "a gate for other services was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("was trained for the services [math, code] but " + Path("thalamus.yaml") +
                                         " configures [code, chat]"),
              std::string::npos)
        << e.what();
  }
}

TEST_F(GateModelTest, ClearErrorsForBadFilesAndTrainingSets) {
  auto error_of = [](auto fn) {
    try {
      fn();
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(error_of([&] { GateModel::Load(Path("missing.pt")); }).find("no such gate file"), std::string::npos);
  std::ofstream(Path("junk.pt")) << "not a torch archive";
  EXPECT_NE(error_of([&] { GateModel::Load(Path("junk.pt")); }).find("not a readable gate file"), std::string::npos);

  GateTrainOptions options;
  EXPECT_NE(error_of([&] {
              GateModel::Train({"math", "code"}, {{"hi", "chat"}}, options, Path("g.pt"));
            }).find("names expert 'chat', which the config does not have"),
            std::string::npos);
  EXPECT_NE(error_of([&] { GateModel::Train({"math"}, Examples(), options, Path("g.pt")); }).find("at least two"),
            std::string::npos);
}

}  // namespace
}  // namespace thalamus::gate
