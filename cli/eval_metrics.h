// Answer scoring for `thalamus eval` (private to cli/), after the TriviaQA /
// SQuAD evaluation scripts: answers are normalised (lower-case, punctuation
// and the articles a/an/the removed, whitespace collapsed) before comparing.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace thalamus::cli {

std::string NormalizeAnswer(std::string_view text);
// Some alias appears in the prediction as whole words (the TriviaQA-style
// accuracy the MambaRALM study reports).
bool AliasMatch(std::string_view prediction, const std::vector<std::string>& aliases);
// The prediction equals some alias.
bool ExactMatch(std::string_view prediction, const std::vector<std::string>& aliases);
// The best token-level F1 against any alias.
double TokenF1(std::string_view prediction, const std::vector<std::string>& aliases);

// Expected calibration error of `confidence` (max probability) against
// `correct`, over `bins` equal-width bins; the rows are per bin.
struct CalibrationBin {
  double lower = 0, upper = 0;
  size_t count = 0;
  double confidence = 0;  // mean
  double accuracy = 0;
};
double ExpectedCalibrationError(const std::vector<double>& confidence, const std::vector<bool>& correct, int bins,
                                std::vector<CalibrationBin>* rows = nullptr);

}  // namespace thalamus::cli
