// The ralm plan's passage selection and prompt building.
#include <gtest/gtest.h>

#include "gate/gate_features.h"
#include "models/tokenizer.h"
#include "router/ralm_plan.h"

namespace thalamus::router {
namespace {

std::unique_ptr<wire::PassageT> P(const std::string& text, float score, const std::string& source = "doc") {
  auto passage = std::make_unique<wire::PassageT>();
  passage->text = text;
  passage->score = score;
  passage->source = source;
  return passage;
}

size_t Chars4(std::string_view text) { return gate::EstimateTokens(text); }

TEST(GateRalm, RankPassagesMergesByScoreDedupesAndCutsAtK) {
  PassageList first, second;
  first.push_back(P("alpha", 0.9f, "a.txt"));
  first.push_back(P("gamma", 0.5f, "a.txt"));
  second.push_back(P("beta", 0.7f, "b.txt"));
  second.push_back(P("alpha", 0.6f, "a.txt"));   // the same chunk through another domain
  second.push_back(P("alpha", 0.55f, "c.txt"));  // the same text from another source stays
  const auto best = RankPassages({&first, &second}, 4);
  ASSERT_EQ(best.size(), 4u);
  EXPECT_EQ(best[0]->text, "alpha");
  EXPECT_EQ(best[1]->text, "beta");
  EXPECT_EQ(best[2]->source, "c.txt");
  EXPECT_EQ(best[3]->text, "gamma");
  EXPECT_EQ(RankPassages({&first, &second}, 1).size(), 1u);
  EXPECT_TRUE(RankPassages({}, 3).empty());
}

TEST(GateRalm, TiesKeepRetrieverOrder) {
  PassageList first, second;
  first.push_back(P("one", 0.5f));
  second.push_back(P("two", 0.5f));
  const auto best = RankPassages({&first, &second}, 2);
  EXPECT_EQ(best[0]->text, "one");
  EXPECT_EQ(best[1]->text, "two");
}

TEST(GateRalm, TemplateFillsEveryPlaceholderOnce) {
  EXPECT_EQ(FillTemplate("{question}|{context}|{question}", "C", "Q"), "Q|C|Q");
  // Text that looks like a placeholder is not substituted again.
  EXPECT_EQ(FillTemplate("{context} -> {question}", "has {question}", "and {context}"),
            "has {question} -> and {context}");
  PassageList list;
  list.push_back(P("first text", 1, "x.md"));
  list.push_back(P("second text", 0.5f, ""));
  EXPECT_EQ(FormatContext(RankPassages({&list}, 2)), "[1] (x.md)\nfirst text\n\n[2]\nsecond text");
}

TEST(GateRalm, BudgetDropsLowestRankedPassages) {
  PassageList list;
  for (int i = 0; i < 5; ++i) list.push_back(P(std::string(40, static_cast<char>('a' + i)), 1.0f - i * 0.1f));
  auto passages = RankPassages({&list}, 5);
  const std::string tmpl = "C:{context} Q:{question}";
  const size_t full = Chars4(FillTemplate(tmpl, FormatContext(passages), "why?"));
  auto unlimited = passages;
  RalmPrompt all = BuildRalmPrompt(tmpl, "why?", unlimited, 0, Chars4);
  EXPECT_EQ(all.passages, 5u);
  EXPECT_EQ(all.tokens, full);

  // Room for exactly three passages.
  std::vector<const wire::PassageT*> three(passages.begin(), passages.begin() + 3);
  const size_t budget = Chars4(FillTemplate(tmpl, FormatContext(three), "why?"));
  auto fitted = passages;
  RalmPrompt prompt = BuildRalmPrompt(tmpl, "why?", fitted, budget, Chars4);
  EXPECT_EQ(prompt.passages, 3u);
  EXPECT_EQ(prompt.dropped, 2u);
  EXPECT_LE(prompt.tokens, budget);
  EXPECT_FALSE(prompt.over_budget);
  ASSERT_EQ(fitted.size(), 3u);
  EXPECT_EQ(fitted[2], passages[2]);  // the best three, in order
  EXPECT_NE(prompt.text.find(std::string(40, 'c')), std::string::npos);
  EXPECT_EQ(prompt.text.find(std::string(40, 'd')), std::string::npos);

  auto none = passages;
  RalmPrompt tiny = BuildRalmPrompt(tmpl, "why?", none, 1, Chars4);
  EXPECT_EQ(tiny.passages, 0u);
  EXPECT_TRUE(tiny.over_budget);
  EXPECT_EQ(tiny.text, "C: Q:why?");
}

TEST(GateRalm, BudgetComesFromConfigThenGeneratorContext) {
  config::Config cfg;
  config::ExpertConfig generator;
  EXPECT_EQ(RalmBudget(cfg, generator, 128), 0u);
  generator.max_context = 2048;
  EXPECT_EQ(RalmBudget(cfg, generator, 128), 1920u);
  cfg.ralm.max_prompt_tokens = 500;
  EXPECT_EQ(RalmBudget(cfg, generator, 128), 500u);
}

TEST(GateRalm, CountsWithTheGeneratorsTokenizerWhenReadable) {
  config::ExpertConfig generator;
  generator.tokenizer = std::string(THALAMUS_TEST_DATA_DIR) + "/tokenizers/gpt-neox-20b/tokenizer.json";
  std::string how;
  TokenCounter count = GeneratorTokenCounter(generator, &how);
  const std::string text = "Retrieval-augmented generation with Mamba, tokenized.";
  ASSERT_EQ(how.rfind("tokenizer ", 0), 0u) << "the tokenizer in tests/data was not read: " << how;
  EXPECT_EQ(count(text), models::Tokenizer::FromFile(generator.tokenizer).Encode(text).size());

  config::ExpertConfig missing;
  missing.model = "/nonexistent/model";
  TokenCounter estimate = GeneratorTokenCounter(missing, &how);
  EXPECT_EQ(how, "chars/4 estimate");
  EXPECT_EQ(estimate("12345"), 2u);
}

}  // namespace
}  // namespace thalamus::router
