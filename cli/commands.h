// The subcommand table; private to cli/.
#pragma once

namespace thalamus::cli {

using CommandFn = int (*)(int argc, char** argv);

struct Command {
  const char* name;
  const char* summary;
  CommandFn run;
};

// One declaration per subcommand, defined in cli/<name>.cpp.
int RunValidateConfig(int argc, char** argv);

}  // namespace thalamus::cli
