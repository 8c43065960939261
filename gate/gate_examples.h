// gate_examples: the labelled examples the gate is trained and evaluated on,
// one JSON object per line: {"text": ..., "expert": ...}.
// Errors: ReadGateExamples throws std::runtime_error naming the file and line.
#pragma once

#include <string>
#include <vector>

namespace thalamus::gate {

// One labelled example: {"text": ..., "expert": ...} per JSONL line.
struct GateExample {
  std::string text;
  std::string expert;
};
// Blank lines are skipped; anything else that is not such an object is an
// error naming the file and line.
std::vector<GateExample> ReadGateExamples(const std::string& path);

}  // namespace thalamus::gate
