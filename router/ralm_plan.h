// ralm_plan: the `ralm` plan's pure parts (retrieve, then generate, as in the
// MambaRALM study): merging the retrieval experts' passages, and building the
// generator's prompt from config.ralm's template within a token budget.
// No I/O; private to router/.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "messages/messages.h"

namespace thalamus::router {

using PassageList = std::vector<std::unique_ptr<wire::PassageT>>;

// The best `k` passages of all `lists`: by score, ties in list order; a
// passage with the same source and text as a better one is dropped.
std::vector<const wire::PassageT*> RankPassages(const std::vector<const PassageList*>& lists, size_t k);

// "[1] (source)\ntext\n\n[2] ..." — numbered so the answer can cite them.
std::string FormatContext(const std::vector<const wire::PassageT*>& passages);

// The template with {context} and {question} replaced (every occurrence).
std::string FillTemplate(std::string_view prompt_template, std::string_view context, std::string_view question);

using TokenCounter = std::function<size_t(std::string_view)>;

struct RalmPrompt {
  std::string text;
  size_t passages = 0;       // kept, the best ones
  size_t dropped = 0;        // lowest-ranked, dropped to fit the budget
  size_t tokens = 0;         // of `text`, by the counter
  bool over_budget = false;  // even with no passages it does not fit
};

// Keeps the longest best-first prefix of `passages` whose prompt fits
// `budget` tokens (0: no limit); `passages` is cut to what was kept.
RalmPrompt BuildRalmPrompt(std::string_view prompt_template, std::string_view question,
                           std::vector<const wire::PassageT*>& passages, size_t budget, const TokenCounter& count);

// How the router counts `generator`'s tokens: its own tokenizer (the
// expert's `tokenizer`, or <model>/tokenizer.json) when the router can read
// it, otherwise the chars/4 estimate. *how says which, for the trace.
TokenCounter GeneratorTokenCounter(const config::ExpertConfig& generator, std::string* how);

// The prompt budget for `generator`: config.ralm.max_prompt_tokens if set,
// else its max_context minus `max_tokens`, else 0 (no limit).
size_t RalmBudget(const config::Config& config, const config::ExpertConfig& generator, int max_tokens);

}  // namespace thalamus::router
