#include "cli/eval_metrics.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <sstream>

namespace thalamus::cli {
namespace {

std::vector<std::string> Tokens(std::string_view normalized) {
  std::vector<std::string> tokens;
  std::istringstream in{std::string(normalized)};
  for (std::string token; in >> token;) tokens.push_back(token);
  return tokens;
}

}  // namespace

std::string NormalizeAnswer(std::string_view text) {
  std::string lowered;
  for (unsigned char c : text) {
    // ASCII punctuation goes; bytes of multi-byte UTF-8 characters stay.
    if (c < 0x80 && std::ispunct(c)) continue;
    lowered += c < 0x80 ? static_cast<char>(std::tolower(c)) : static_cast<char>(c);
  }
  std::string out;
  for (const std::string& token : Tokens(lowered)) {
    if (token == "a" || token == "an" || token == "the") continue;
    if (!out.empty()) out += ' ';
    out += token;
  }
  return out;
}

bool AliasMatch(std::string_view prediction, const std::vector<std::string>& aliases) {
  std::string padded = NormalizeAnswer(prediction);
  padded.insert(padded.begin(), ' ');
  padded.push_back(' ');
  for (const std::string& alias : aliases) {
    std::string normalized = NormalizeAnswer(alias);
    if (normalized.empty()) continue;
    normalized.insert(normalized.begin(), ' ');
    normalized.push_back(' ');
    if (padded.find(normalized) != std::string::npos) return true;
  }
  return false;
}

bool ExactMatch(std::string_view prediction, const std::vector<std::string>& aliases) {
  const std::string normalized = NormalizeAnswer(prediction);
  return std::any_of(aliases.begin(), aliases.end(),
                     [&](const std::string& a) { return NormalizeAnswer(a) == normalized; });
}

double TokenF1(std::string_view prediction, const std::vector<std::string>& aliases) {
  const std::vector<std::string> predicted = Tokens(NormalizeAnswer(prediction));
  double best = 0;
  for (const std::string& alias : aliases) {
    const std::vector<std::string> truth = Tokens(NormalizeAnswer(alias));
    if (predicted.empty() || truth.empty()) {
      best = std::max(best, predicted.empty() && truth.empty() ? 1.0 : 0.0);
      continue;
    }
    std::map<std::string, int> counts;
    for (const std::string& t : truth) ++counts[t];
    int common = 0;
    for (const std::string& t : predicted) {
      if (counts[t]-- > 0) ++common;
    }
    if (common == 0) continue;
    const double precision = static_cast<double>(common) / predicted.size();
    const double recall = static_cast<double>(common) / truth.size();
    best = std::max(best, 2 * precision * recall / (precision + recall));
  }
  return best;
}

double ExpectedCalibrationError(const std::vector<double>& confidence, const std::vector<bool>& correct, int bins,
                                std::vector<CalibrationBin>* rows) {
  std::vector<CalibrationBin> table(static_cast<size_t>(std::max(1, bins)));
  for (size_t b = 0; b < table.size(); ++b) {
    table[b].lower = static_cast<double>(b) / table.size();
    table[b].upper = static_cast<double>(b + 1) / table.size();
  }
  for (size_t i = 0; i < confidence.size(); ++i) {
    size_t b = std::min(table.size() - 1, static_cast<size_t>(std::max(0.0, confidence[i]) * table.size()));
    table[b].count++;
    table[b].confidence += confidence[i];
    table[b].accuracy += correct[i] ? 1 : 0;
  }
  double ece = 0;
  for (CalibrationBin& bin : table) {
    if (bin.count == 0) continue;
    bin.confidence /= bin.count;
    bin.accuracy /= bin.count;
    ece += static_cast<double>(bin.count) / confidence.size() * std::abs(bin.confidence - bin.accuracy);
  }
  if (rows) *rows = std::move(table);
  return ece;
}

}  // namespace thalamus::cli
