// cli/: the subcommands of the `thalamus` tool (dispatched by apps/thalamus_main.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace thalamus::cli {

using CommandFn = int (*)(int argc, char** argv);

struct Command {
  const char* name;
  const char* summary;
  CommandFn run;
};

// One declaration per subcommand, defined in cli/<name>.cpp.
int RunValidateConfig(int argc, char** argv);
int RunGate(int argc, char** argv);      // gate_train.cpp: `gate train`, and `gate eval` via RunGateEval
int RunGateEval(int argc, char** argv);  // gate_eval.cpp
int RunEval(int argc, char** argv);      // eval_ralm.cpp: `eval ralm`
int RunTokenize(int argc, char** argv);
int RunGenerate(int argc, char** argv);
int RunLogits(int argc, char** argv);
int RunIngest(int argc, char** argv);  // ingest.cpp
int RunKeys(int argc, char** argv);    // keys.cpp: `keys generate`
int RunQuery(int argc, char** argv);   // query.cpp: one query through the ZeroMQ front end
int RunProbe(int argc, char** argv);   // probe.cpp: an expert's container probe

// "1,2,3" to ids; throws std::invalid_argument naming the bad item (cli/tokenize.cpp).
std::vector<int32_t> ParseIdList(const std::string& text);

}  // namespace thalamus::cli
