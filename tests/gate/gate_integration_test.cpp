// The gate, plans and aggregation through the real processes: `thalamus gate
// train` writes a gate file, thalamus-router loads it and routes to echo
// experts standing in for domains (each tags its answer with its domain).
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/process.h"

namespace thalamus {
namespace {

using nlohmann::json;
using testing::HttpRequest;
using testing::Process;
using testing::WaitFor;
using namespace std::chrono_literals;

const std::string kExamples = std::string(THALAMUS_SOURCE_DIR) + "/examples/gate/train.jsonl";
const std::string kHeader =
    "http: {port: 0, threads: 4}\n"
    "broker: {frontend: \"tcp://127.0.0.1:*\", backend: \"tcp://127.0.0.1:*\", heartbeat_ms: 100, liveness: 3}\n"
    "supervisor: {restart_backoff_ms: 100}\n";
const std::string kDomains =
    "experts:\n"
    "  - {name: code, kind: echo, prefix: '[code] '}\n"
    "  - {name: math, kind: echo, prefix: '[math] '}\n"
    "  - {name: general, kind: echo, prefix: '[general] '}\n";

// Runs the `thalamus` tool; returns its exit status, its output in *output.
int Thalamus(const std::vector<std::string>& args, const testing::TempDir& dir, std::string* output = nullptr) {
  const std::string log = dir.path() + "/thalamus.log";
  Process tool(testing::BinDir() + "/thalamus", args, log);
  const int status = tool.Wait(120s);
  if (output) *output = testing::ReadFile(log);
  return status;
}

class Cluster {
 public:
  Cluster(const testing::TempDir& dir, const std::string& body, bool wait_ready = true) : dir_(dir) {
    config_ = dir.Write("thalamus.yaml", kHeader + body);
    const std::string ready = dir.path() + "/ready.json";
    std::remove(ready.c_str());
    router_ = Process(testing::BinDir() + "/thalamus-router", {"--config", config_, "--ready-file", ready}, log());
    if (!WaitFor([&] { return !testing::ReadFile(ready).empty(); }, 20s)) {
      throw std::runtime_error("router did not start: " + testing::ReadFile(log()));
    }
    port_ = json::parse(testing::ReadFile(ready))["http_port"];
    if (wait_ready && !WaitFor([&] { return HttpRequest(port_, "GET", "/readyz").status == 200; }, 20s)) {
      throw std::runtime_error("router not ready: " + testing::ReadFile(log()));
    }
  }
  int port() const { return port_; }
  std::string log() const { return dir_.path() + "/router.log"; }

  json Query(const json& body) const {
    auto response = HttpRequest(port_, "POST", "/v1/query", body.dump());
    if (response.status != 200) throw std::runtime_error(std::to_string(response.status) + " " + response.body);
    return json::parse(response.body);
  }

 private:
  const testing::TempDir& dir_;
  std::string config_;
  Process router_;
  int port_ = 0;
};

// Trains a gate for the three domains into dir/gate.pt.
void TrainGate(const testing::TempDir& dir) {
  const std::string config = dir.Write("train.yaml", kDomains);
  std::string output;
  ASSERT_EQ(Thalamus({"gate", "train", "--config", config, "--data", kExamples, "--out", dir.path() + "/gate.pt"}, dir,
                     &output),
            0)
      << output;
  ASSERT_NE(output.find("training accuracy 1.000"), std::string::npos) << output;
}

// Training sentences (training accuracy is 1.0, so these route reliably).
const std::vector<std::pair<std::string, std::string>> kRouted = {
    {"How do I reverse a linked list in C++?", "code"},
    {"What is the derivative of x^3 sin(x)?", "math"},
    {"Who painted the Mona Lisa?", "general"},
};

TEST(GateIntegration, TrainedGateRoutesToTheRightExpert) {
  testing::TempDir dir;
  TrainGate(dir);
  Cluster cluster(dir, "gate: {path: gate.pt}\n" + kDomains);
  for (const auto& [text, expert] : kRouted) {
    json answer = cluster.Query({{"prompt", text}});
    EXPECT_EQ(answer["answer"], "[" + expert + "] " + text);
    EXPECT_EQ(answer["trace"]["chosen"], json::array({expert}));
    const std::string reason = answer["trace"]["gate_reason"];
    EXPECT_EQ(reason.rfind("trained gate: model {code ", 0), 0u) << reason;
    double sum = 0, chosen_p = 0;
    for (const json& score : answer["trace"]["gate"]) {
      sum += score["probability"].get<double>();
      if (score["service"] == expert) chosen_p = score["probability"];
    }
    EXPECT_NEAR(sum, 1.0, 1e-4);
    EXPECT_GT(chosen_p, 0.5);
  }
  // OpenAI chat completions without a model go through the gate too.
  json chat = {{"messages", json::array({{{"role", "user"}, {"content", kRouted[1].first}}})}};
  auto response = HttpRequest(cluster.port(), "POST", "/v1/chat/completions", chat.dump());
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(json::parse(response.body)["choices"][0]["message"]["content"], "[math] " + kRouted[1].first);

  const std::string metrics = HttpRequest(cluster.port(), "GET", "/metrics").body;
  EXPECT_NE(metrics.find("thalamus_gate_entropy_count 4"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("thalamus_gate_selections_total{service=\"math\"} 2"), std::string::npos) << metrics;
}

TEST(GateIntegration, GateFileForOtherServicesIsRefused) {
  testing::TempDir dir;
  TrainGate(dir);
  const std::string config =
      dir.Write("other.yaml", kHeader +
                                  "gate: {path: gate.pt}\nexperts:\n"
                                  "  - {name: code, kind: echo}\n  - {name: chat, kind: echo}\n");
  Process router(testing::BinDir() + "/thalamus-router", {"--config", config}, dir.path() + "/router.log");
  EXPECT_EQ(router.Wait(20s), 1);
  const std::string log = testing::ReadFile(dir.path() + "/router.log");
  EXPECT_NE(log.find("was trained for the services [code, math, general] but " + config + " configures [code, chat]"),
            std::string::npos)
      << log;
}

// With gate.train_data the router trains the gate file itself: on first
// start, again when the examples change or the services do, never otherwise.
TEST(GateIntegration, RouterTrainsItsGateFromTrainData) {
  testing::TempDir dir;
  dir.Write("examples.jsonl", testing::ReadFile(kExamples));
  const std::string gate = "gate: {path: state/gate.pt, train_data: examples.jsonl}\n";
  // Each router below logs to a fresh router.log (the log is appended to).
  const auto router_log = [&] { return testing::ReadFile(dir.path() + "/router.log"); };
  const auto fresh_log = [&] { std::filesystem::remove(dir.path() + "/router.log"); };
  {
    Cluster cluster(dir, gate + kDomains);
    EXPECT_NE(router_log().find("training the gate on 135 examples from " + dir.path() + "/examples.jsonl"),
              std::string::npos)
        << router_log();
    json answer = cluster.Query({{"prompt", kRouted[1].first}});
    EXPECT_EQ(answer["trace"]["chosen"], json::array({"math"}));
    EXPECT_EQ(answer["trace"]["gate_reason"].get<std::string>().rfind("trained gate: ", 0), 0u);
  }
  const auto trained_at = std::filesystem::last_write_time(dir.path() + "/state/gate.pt");
  fresh_log();
  {
    Cluster unchanged(dir, gate + kDomains);
    EXPECT_EQ(router_log().find("training the gate"), std::string::npos) << router_log();
  }
  EXPECT_EQ(std::filesystem::last_write_time(dir.path() + "/state/gate.pt"), trained_at);
  {
    // Other services: retrained from examples that name them, not refused.
    const std::string renamed = std::regex_replace(testing::ReadFile(kExamples), std::regex("\"general\""), "\"chat\"");
    dir.Write("examples.jsonl", renamed);
    fresh_log();
    Cluster cluster(dir, gate + std::regex_replace(kDomains, std::regex("general"), "chat"));
    EXPECT_NE(router_log().find("training the gate on 135 examples"), std::string::npos) << router_log();
    json answer = cluster.Query({{"prompt", kRouted[2].first}});
    EXPECT_EQ(answer["trace"]["chosen"], json::array({"chat"}));
  }
  // Examples naming a service the config lacks stop the router with the reason.
  dir.Write("examples.jsonl", "{\"text\": \"hello\", \"expert\": \"nobody\"}\n");
  const std::string config = dir.Write("thalamus.yaml", kHeader + gate + kDomains);
  fresh_log();
  Process router(testing::BinDir() + "/thalamus-router", {"--config", config}, dir.path() + "/router.log");
  EXPECT_EQ(router.Wait(20s), 1);
  EXPECT_NE(router_log().find("nobody"), std::string::npos) << router_log();
}

// The default config's shipped examples train a gate that routes held-out
// questions between its docs, code and echo services.
TEST(GateIntegration, DefaultConfigGateDataRoutesHeldOutQuestions) {
  testing::TempDir dir;
  const std::string source = THALAMUS_SOURCE_DIR;
  std::string output;
  ASSERT_EQ(Thalamus({"gate", "train", "--config", source + "/config/default.yaml", "--data",
                      source + "/examples/gate/default-train.jsonl", "--out", dir.path() + "/gate.pt"},
                     dir, &output),
            0)
      << output;
  ASSERT_EQ(Thalamus({"gate", "eval", "--config", source + "/config/default.yaml", "--gate", dir.path() + "/gate.pt",
                      "--data", source + "/examples/gate/default-heldout.jsonl"},
                     dir, &output),
            0)
      << output;
  std::smatch accuracy;
  ASSERT_TRUE(std::regex_search(output, accuracy, std::regex("gate: accuracy ([0-9.]+)"))) << output;
  EXPECT_GE(std::stod(accuracy[1]), 0.8) << output;  // 0.880 at seed 1 (README)
}

TEST(GateIntegration, FallbackRuleWithoutAGateFile) {
  testing::TempDir dir;
  Cluster cluster(dir, "gate: {default_expert: general}\n" + kDomains);
  json answer = cluster.Query({{"prompt", kRouted[0].first}});
  EXPECT_EQ(answer["trace"]["chosen"], json::array({"general"}));
  EXPECT_EQ(answer["trace"]["gate_reason"], "fallback rule: gate.default_expert (no trained gate)");
  const std::string metrics = HttpRequest(cluster.port(), "GET", "/metrics").body;
  EXPECT_NE(metrics.find("thalamus_gate_fallbacks_total{reason=\"no_gate\"} 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("thalamus_gate_entropy_count 0"), std::string::npos)
      << metrics;  // no trained gate: no decision observed
}

TEST(GateIntegration, LoadAwareGateDemotesABusyExpertAndSkipsADeadOne) {
  testing::TempDir dir;
  TrainGate(dir);
  // code answers slowly, one at a time; general has no worker at all.
  Cluster cluster(dir,
                  "gate: {path: gate.pt, load_alpha: 10.0}\nexperts:\n"
                  "  - {name: code, kind: echo, prefix: '[code] ', concurrency: 1, queue_limit: 4, delay_ms: 1500}\n"
                  "  - {name: math, kind: echo, prefix: '[math] '}\n"
                  "  - {name: general, kind: echo, prefix: '[general] ', launch: external}\n",
                  /*wait_ready=*/false);
  ASSERT_TRUE(WaitFor(
      [&] {
        auto r = HttpRequest(cluster.port(), "GET", "/readyz");
        if (r.status == 0) return false;
        json services = json::parse(r.body)["services"];
        return services["code"]["live_workers"] == 1 && services["math"]["live_workers"] == 1;
      },
      20s))
      << testing::ReadFile(cluster.log());

  // Idle: the code question goes to code.
  json idle = cluster.Query({{"prompt", kRouted[0].first}, {"deadline_ms", 10000}});
  EXPECT_EQ(idle["trace"]["chosen"], json::array({"code"}));
  // A general question cannot go to general (no worker).
  json dead = cluster.Query({{"prompt", kRouted[2].first}});
  EXPECT_NE(dead["trace"]["chosen"][0], "general");
  EXPECT_NE(dead["trace"]["gate_reason"].get<std::string>().find("general skipped (no live worker)"), std::string::npos)
      << dead["trace"]["gate_reason"];

  // Three requests named to code keep it busy (1 in flight, 2 queued).
  std::vector<std::thread> busy;
  std::atomic<int> busy_ok{0};
  for (int i = 0; i < 3; ++i) {
    busy.emplace_back([&] {
      auto r =
          HttpRequest(cluster.port(), "POST", "/v1/query", json({{"prompt", "busy"}, {"experts", {"code"}}}).dump());
      if (r.status == 200) ++busy_ok;
    });
  }
  const bool busy_seen = WaitFor(
      [&] {
        auto r = HttpRequest(cluster.port(), "GET", "/readyz");
        if (r.status == 0) return false;
        const json code = json::parse(r.body)["services"]["code"];
        return code["queued"].get<int>() + code["in_flight"].get<int>() == 3;
      },
      5s);
  EXPECT_TRUE(busy_seen);
  if (busy_seen) {
    json loaded = cluster.Query({{"prompt", kRouted[0].first}});
    EXPECT_EQ(loaded["trace"]["chosen"], json::array({"math"})) << loaded["trace"];
    const std::string reason = loaded["trace"]["gate_reason"];
    EXPECT_NE(reason.find("code x0.000 for load 3.00 (queued 2, in flight 1, 1 workers)"), std::string::npos) << reason;
  }
  for (auto& t : busy) t.join();
  EXPECT_EQ(busy_ok.load(), 3);
}

TEST(GateIntegration, FanOutAggregatesWithConcatAndWeighted) {
  testing::TempDir dir;
  TrainGate(dir);
  Cluster concat(dir, "gate: {path: gate.pt, top_k: 3, threshold: 0.0}\naggregation: concat\n" + kDomains);
  json answer = concat.Query({{"prompt", "q"}});
  ASSERT_EQ(answer["trace"]["chosen"].size(), 3u) << answer["trace"];
  ASSERT_EQ(answer["trace"]["experts"].size(), 3u);
  EXPECT_EQ(answer["trace"]["plan"], "direct");
  EXPECT_EQ(answer["trace"]["plan_reason"], "direct: fan-out to 3 services");
  const std::string text = answer["answer"];
  for (const std::string expert : {"code", "math", "general"}) {
    EXPECT_NE(text.find("[" + expert + "] [" + expert + "] q"), std::string::npos) << text;
  }
  // Sections follow the gate's order.
  EXPECT_EQ(text.rfind("[" + answer["trace"]["chosen"][0].get<std::string>() + "]", 0), 0u) << text;
}

TEST(GateIntegration, WeightedPicksTheMostProbableConfidentExpert) {
  testing::TempDir dir;
  TrainGate(dir);
  Cluster weighted(dir, "gate: {path: gate.pt, top_k: 3, threshold: 0.0}\naggregation: weighted\n" + kDomains);
  json answer = weighted.Query({{"prompt", kRouted[1].first}});
  EXPECT_EQ(answer["trace"]["experts"].size(), 3u);
  // Echo experts are all fully confident, so the gate's weight decides.
  EXPECT_EQ(answer["answer"], "[math] " + kRouted[1].first);
}

TEST(GateIntegration, RalmWithoutRetrieversAnswersDirectlyAndSaysWhy) {
  testing::TempDir dir;
  Cluster cluster(dir, "aggregation: ralm\nralm: {k: 2}\n" + kDomains);
  json answer = cluster.Query({{"prompt", "q"}, {"ralm_k", 3}});
  EXPECT_EQ(answer["trace"]["plan"], "direct");
  EXPECT_EQ(answer["trace"]["plan_reason"], "direct: aggregation ralm, but no rag service is configured");
  auto bad = HttpRequest(cluster.port(), "POST", "/v1/query", json({{"prompt", "q"}, {"ralm_k", 0}}).dump());
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("ralm_k"), std::string::npos) << bad.body;
}

TEST(GateIntegration, GateEvalReportsAccuracyConfusionCalibrationAndBaseline) {
  testing::TempDir dir;
  TrainGate(dir);
  std::string output;
  ASSERT_EQ(
      Thalamus({"gate", "eval", "--config", dir.path() + "/train.yaml", "--gate", dir.path() + "/gate.pt", "--data",
                std::string(THALAMUS_SOURCE_DIR) + "/examples/gate/heldout.jsonl", "--train", kExamples},
               dir, &output),
      0)
      << output;
  EXPECT_NE(output.find("45 examples"), std::string::npos) << output;
  EXPECT_NE(output.find("gate: accuracy 0."), std::string::npos) << output;
  EXPECT_NE(output.find("confusion (rows: true expert, columns: predicted)"), std::string::npos);
  EXPECT_NE(output.find("calibration: ECE "), std::string::npos);
  EXPECT_NE(output.find("baseline (nearest of 135 training examples by cosine): accuracy "), std::string::npos);
}

TEST(GateIntegration, EvalRalmScoresAnswersAgainstARouter) {
  testing::TempDir dir;
  // An echo expert repeats the question: a question containing its answer
  // scores, one that does not, fails.
  Cluster cluster(dir, "experts:\n  - {name: echo, kind: echo}\n");
  const std::string questions = dir.Write("qa.jsonl",
                                          "{\"id\": \"q1\", \"question\": \"Is the capital of France Paris?\", "
                                          "\"answers\": [\"Paris\", \"Paris, France\"]}\n"
                                          "{\"question\": \"Who wrote Hamlet?\", \"answer\": {\"value\": "
                                          "\"Shakespeare\", \"aliases\": [\"W. Shakespeare\"]}}\n");
  std::string output;
  ASSERT_EQ(Thalamus({"eval", "ralm", "--router", "http://127.0.0.1:" + std::to_string(cluster.port()), "--data",
                      questions, "--k", "1,2", "--out", dir.path() + "/results.jsonl"},
                     dir, &output),
            0)
      << output;
  std::ifstream in(dir.path() + "/results.jsonl");
  std::vector<json> rows;
  for (std::string line; std::getline(in, line);) rows.push_back(json::parse(line));
  ASSERT_EQ(rows.size(), 4u) << output;
  EXPECT_EQ(rows[0]["k"], 1);
  EXPECT_EQ(rows[0]["id"], "q1");
  EXPECT_EQ(rows[0]["correct"], true);
  EXPECT_EQ(rows[0]["exact_match"], false);
  EXPECT_EQ(rows[1]["correct"], false);
  EXPECT_EQ(rows[3]["k"], 2);
  EXPECT_EQ(rows[0]["retrieval_hit"], false);  // an echo expert retrieves nothing
  // k, n, accuracy, ... for k = 1 and k = 2.
  EXPECT_NE(output.find("    1      2     0.500   0.000"), std::string::npos) << output;
  EXPECT_NE(output.find("    2      2     0.500"), std::string::npos) << output;

  EXPECT_EQ(
      Thalamus({"eval", "ralm", "--router", "ftp://x", "--data", questions, "--out", dir.path() + "/r.jsonl"}, dir), 2);
}

}  // namespace
}  // namespace thalamus
