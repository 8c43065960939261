// The gate's decision pieces: selection, load- and context-aware
// adjustment, the fallback rule, and the config keys they read.
#include <cmath>
#include <numeric>

#include <gtest/gtest.h>

#include "config/config.h"
#include "gate/gate.h"

namespace thalamus::gate {
namespace {

config::Config ThreeExperts() {
  return config::LoadString(
      "gate: {load_alpha: 1.0, long_context_tokens: 100, long_context_boost: 4.0}\n"
      "experts:\n"
      "  - {name: a, kind: echo, concurrency: 1}\n"
      "  - {name: b, kind: echo, concurrency: 2}\n"
      "  - {name: m, kind: mamba, model: /nonexistent}\n",
      "test.yaml");
}

ServiceLoad Live(const std::string& name, int workers, int queued = 0, int in_flight = 0) {
  ServiceLoad info;
  info.name = name;
  info.live_workers = workers;
  info.queued = queued;
  info.in_flight = in_flight;
  return info;
}

double Sum(const std::vector<double>& p) { return std::accumulate(p.begin(), p.end(), 0.0); }

TEST(GateSelect, TopKWithThresholdKeepsTheBestAndOnlyLikelyOthers) {
  EXPECT_EQ(SelectExperts({0.2, 0.5, 0.3}, 1, 0.0), (std::vector<size_t>{1}));
  EXPECT_EQ(SelectExperts({0.2, 0.5, 0.3}, 3, 0.25), (std::vector<size_t>{1, 2}));
  EXPECT_EQ(SelectExperts({0.2, 0.5, 0.3}, 3, 0.0), (std::vector<size_t>{1, 2, 0}));
  // The best answers even below the threshold; a zero never does.
  EXPECT_EQ(SelectExperts({0.1, 0.9}, 2, 0.95), (std::vector<size_t>{1}));
  EXPECT_EQ(SelectExperts({0.0, 1.0, 0.0}, 3, 0.0), (std::vector<size_t>{1}));
}

TEST(GateSelect, LoadDemotesABusyServiceAndRenormalises) {
  const config::Config cfg = ThreeExperts();
  std::vector<double> p = {0.6, 0.3, 0.1};
  bool no_live = true;
  const std::string reason = AdjustScores(cfg, {Live("a", 1, 3, 1), Live("b", 1), Live("m", 1)}, 10, p, &no_live);
  EXPECT_FALSE(no_live);
  EXPECT_NEAR(Sum(p), 1.0, 1e-9);
  // a: load (3 + 1) / (1 worker x concurrency 1) = 4, factor exp(-4).
  const double a = 0.6 * std::exp(-4.0), total = a + 0.3 + 0.1;
  EXPECT_NEAR(p[0], a / total, 1e-9);
  EXPECT_NEAR(p[1], 0.3 / total, 1e-9);
  EXPECT_EQ(SelectExperts(p, 1, 0)[0], 1u);
  EXPECT_NE(reason.find("a x0.018 for load 4.00 (queued 3, in flight 1, 1 workers)"), std::string::npos) << reason;
}

TEST(GateSelect, LoadIsPerWorkerSlot) {
  const config::Config cfg = ThreeExperts();
  std::vector<double> p = {0.5, 0.5, 0.0};
  // b has 2 workers x concurrency 2: 2 in flight is load 0.5.
  AdjustScores(cfg, {Live("a", 1), Live("b", 2, 0, 2), Live("m", 1)}, 10, p);
  const double b = 0.5 * std::exp(-0.5);
  EXPECT_NEAR(p[1], b / (0.5 + b), 1e-9);
}

TEST(GateSelect, ServicesWithoutALiveWorkerAreSkipped) {
  const config::Config cfg = ThreeExperts();
  std::vector<double> p = {0.7, 0.2, 0.1};
  const std::string reason = AdjustScores(cfg, {Live("a", 0), Live("b", 1)}, 10, p);  // m not even known
  EXPECT_EQ(p[0], 0.0);
  EXPECT_EQ(p[2], 0.0);
  EXPECT_NEAR(p[1], 1.0, 1e-9);
  EXPECT_NE(reason.find("a skipped (no live worker)"), std::string::npos) << reason;
}

TEST(GateSelect, WithNoLiveServiceLoadIsIgnored) {
  const config::Config cfg = ThreeExperts();
  std::vector<double> p = {0.7, 0.2, 0.1};
  bool no_live = false;
  AdjustScores(cfg, {}, 10, p, &no_live);
  EXPECT_TRUE(no_live);
  EXPECT_NEAR(p[0], 0.7, 1e-9);
}

TEST(GateSelect, LongContextsFavourMamba) {
  const config::Config cfg = ThreeExperts();
  const std::vector<ServiceLoad> live = {Live("a", 1), Live("b", 1), Live("m", 1)};
  std::vector<double> short_query = {0.5, 0.3, 0.2};
  AdjustScores(cfg, live, 100, short_query);  // not over the threshold
  EXPECT_NEAR(short_query[2], 0.2, 1e-9);
  std::vector<double> long_query = {0.5, 0.3, 0.2};
  const std::string reason = AdjustScores(cfg, live, 101, long_query);
  EXPECT_NEAR(long_query[2], 0.8 / 1.6, 1e-9);
  EXPECT_EQ(SelectExperts(long_query, 1, 0)[0], 2u);
  EXPECT_NE(reason.find("long context (~101 tokens > 100): x4.00 for mamba [m]"), std::string::npos) << reason;
}

TEST(GateSelect, AdjustmentsCanBeSwitchedOff) {
  config::Config cfg = ThreeExperts();
  cfg.gate.load_aware = false;
  cfg.gate.context_aware = false;
  std::vector<double> p = {0.5, 0.3, 0.2};
  EXPECT_EQ(AdjustScores(cfg, {Live("a", 0, 100, 100)}, 100000, p), "");
  EXPECT_NEAR(p[0], 0.5, 1e-9);
}

TEST(GateSelect, QueryTextAndTokens) {
  wire::QueryT prompt;
  prompt.prompt = "12345678";
  EXPECT_EQ(GateText(prompt), "12345678");
  EXPECT_EQ(QueryTokens(prompt), 2u);
  wire::QueryT chat;
  for (auto [role, content] :
       {std::pair{"system", "be brief"}, {"user", "first"}, {"assistant", "ok"}, {"user", "second q"}}) {
    auto message = std::make_unique<wire::ChatMessageT>();
    message->role = role;
    message->content = content;
    chat.messages.push_back(std::move(message));
  }
  EXPECT_EQ(GateText(chat), "second q");
  EXPECT_EQ(QueryTokens(chat), 2u + 2u + 1u + 2u);  // every message counts toward the context
}

TEST(GateFallback, DefaultExpertThenFirstGenerator) {
  config::Config with_default = config::LoadString(
      "gate: {default_expert: b}\nexperts:\n  - {name: a, kind: echo}\n  - {name: b, kind: echo}\n", "t.yaml");
  Gate gate(with_default);
  EXPECT_FALSE(gate.trained());
  wire::QueryT query;
  query.prompt = "x";
  GateDecision decision = gate.Decide(query, {});
  EXPECT_EQ(decision.chosen, std::vector<std::string>{"b"});
  EXPECT_EQ(decision.fallback, "no_gate");
  EXPECT_EQ(decision.entropy_bits, -1);
  EXPECT_NE(decision.reason.find("fallback rule: gate.default_expert"), std::string::npos);

  const config::Config generator = ThreeExperts();
  Gate by_kind(generator);
  EXPECT_EQ(by_kind.Decide(query, {}).chosen, std::vector<std::string>{"m"});

  query.experts = {"a", "b"};
  decision = gate.Decide(query, {});
  EXPECT_EQ(decision.chosen, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(decision.fallback, "");
  ASSERT_EQ(decision.scores.size(), 2u);
  EXPECT_FLOAT_EQ(decision.scores[0].probability, 0.5f);
  query.experts = {"nobody"};
  decision = gate.Decide(query, {});
  EXPECT_EQ(decision.status, wire::StatusCode::NOT_FOUND);
  EXPECT_EQ(decision.fallback, "unknown_expert");
}

TEST(GateConfig, RalmAndGateKeysAreValidated) {
  const config::Config cfg = config::LoadString(
      "gate: {load_aware: false, load_alpha: 2.5, context_aware: false, long_context_tokens: 5000, long_context_boost: "
      "8}\n"
      "ralm: {k: 2, template: \"Q: {question}\\nC: {context}\\nA:\", max_prompt_tokens: 900}\n"
      "experts:\n  - {name: a, kind: echo}\n",
      "t.yaml");
  EXPECT_FALSE(cfg.gate.load_aware);
  EXPECT_DOUBLE_EQ(cfg.gate.load_alpha, 2.5);
  EXPECT_FALSE(cfg.gate.context_aware);
  EXPECT_EQ(cfg.gate.long_context_tokens, 5000);
  EXPECT_EQ(cfg.ralm.k, 2);
  EXPECT_EQ(cfg.ralm.prompt_template, "Q: {question}\nC: {context}\nA:");
  EXPECT_EQ(cfg.ralm.max_prompt_tokens, 900);

  auto error_of = [](const std::string& yaml) {
    try {
      config::LoadString(yaml + "experts:\n  - {name: a, kind: echo}\n", "t.yaml");
    } catch (const config::ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(error_of("ralm: {template: \"no placeholders\"}\n").find("ralm.template: must contain the {context}"),
            std::string::npos)
      << error_of("ralm: {template: \"no placeholders\"}\n");
  EXPECT_NE(error_of("ralm: {k: 0}\n").find("ralm.k"), std::string::npos);
  EXPECT_NE(error_of("ralm: {kk: 1}\n").find("ralm.kk"), std::string::npos);
  EXPECT_NE(error_of("gate: {load_alpha: -1}\n").find("gate.load_alpha"), std::string::npos);
}

}  // namespace
}  // namespace thalamus::gate
