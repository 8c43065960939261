// apps/: each process's main, where the libraries are wired together; the
// binaries (thalamus.cpp, thalamus_router.cpp, thalamus_expert.cpp) only call
// one of these. Each returns the process exit code and prints its errors to
// stderr.
//
// ToolMain: `thalamus <command> args...`, dispatched to the subcommands of
// cli/ (cli/commands.h); 2 for usage errors, 1 for failures.
#pragma once

namespace thalamus::apps {

int ToolMain(int argc, char** argv);

}  // namespace thalamus::apps
