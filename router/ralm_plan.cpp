#include "router/ralm_plan.h"

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <set>
#include <utility>

#include "gate/gate_features.h"
#include "models/tokenizer.h"

namespace thalamus::router {

std::vector<const wire::PassageT*> RankPassages(const std::vector<const PassageList*>& lists, size_t k) {
  std::vector<const wire::PassageT*> all;
  for (const PassageList* list : lists) {
    for (const auto& passage : *list) {
      if (passage) all.push_back(passage.get());
    }
  }
  std::stable_sort(all.begin(), all.end(), [](auto* a, auto* b) { return a->score > b->score; });
  std::vector<const wire::PassageT*> best;
  std::set<std::pair<std::string_view, std::string_view>> seen;
  for (const wire::PassageT* passage : all) {
    if (best.size() >= k) break;
    if (seen.insert({passage->source, passage->text}).second) best.push_back(passage);
  }
  return best;
}

std::string FormatContext(const std::vector<const wire::PassageT*>& passages) {
  std::string out;
  for (size_t i = 0; i < passages.size(); ++i) {
    if (i) out += "\n\n";
    out += '[';
    out += std::to_string(i + 1);
    out += ']';
    if (!passages[i]->source.empty()) out += " (" + passages[i]->source + ")";
    out += "\n" + passages[i]->text;
  }
  return out;
}

std::string FillTemplate(std::string_view prompt_template, std::string_view context, std::string_view question) {
  static constexpr std::string_view kContext = "{context}", kQuestion = "{question}";
  std::string out;
  size_t i = 0;
  while (i < prompt_template.size()) {
    if (prompt_template.substr(i, kContext.size()) == kContext) {
      out += context, i += kContext.size();
    } else if (prompt_template.substr(i, kQuestion.size()) == kQuestion) {
      out += question, i += kQuestion.size();
    } else {
      out += prompt_template[i++];
    }
  }
  return out;
}

RalmPrompt BuildRalmPrompt(std::string_view prompt_template, std::string_view question,
                           std::vector<const wire::PassageT*>& passages, size_t budget, const TokenCounter& count) {
  auto prompt_with = [&](size_t n) {
    std::vector<const wire::PassageT*> prefix(passages.begin(), passages.begin() + static_cast<ptrdiff_t>(n));
    return FillTemplate(prompt_template, FormatContext(prefix), question);
  };
  RalmPrompt result;
  size_t keep = passages.size();
  if (budget > 0 && count(prompt_with(keep)) > budget) {
    // More passages never shorten the prompt: binary search the longest prefix that fits.
    size_t lo = 0, hi = keep;  // prompt_with(hi) does not fit
    while (lo + 1 < hi) {
      const size_t mid = lo + (hi - lo) / 2;
      (count(prompt_with(mid)) <= budget ? lo : hi) = mid;
    }
    keep = lo;
  }
  result.text = prompt_with(keep);
  result.tokens = count(result.text);
  result.passages = keep;
  result.dropped = passages.size() - keep;
  result.over_budget = budget > 0 && result.tokens > budget;
  passages.resize(keep);
  return result;
}

TokenCounter GeneratorTokenCounter(const config::ExpertConfig& generator, std::string* how) {
  std::string path = generator.tokenizer;
  if (path.empty() && !generator.model.empty()) path = generator.model + "/tokenizer.json";
  if (!path.empty() && std::filesystem::is_regular_file(path)) {
    try {
      auto tokenizer = std::make_shared<models::Tokenizer>(models::Tokenizer::FromFile(path));
      *how = "tokenizer " + path;
      return [tokenizer](std::string_view text) { return tokenizer->Encode(text).size(); };
    } catch (const std::exception& e) {
      *how = "chars/4 estimate (" + path + " unreadable: " + e.what() + ")";
      return [](std::string_view text) { return gate::EstimateTokens(text); };
    }
  }
  *how = "chars/4 estimate";
  return [](std::string_view text) { return gate::EstimateTokens(text); };
}

size_t RalmBudget(const config::Config& config, const config::ExpertConfig& generator, int max_tokens) {
  if (config.ralm.max_prompt_tokens > 0) return static_cast<size_t>(config.ralm.max_prompt_tokens);
  if (generator.max_context > 0)
    return static_cast<size_t>(std::max(1, generator.max_context - std::max(0, max_tokens)));
  return 0;
}

}  // namespace thalamus::router
