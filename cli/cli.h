// cli: the subcommands of the `thalamus` tool (tokenize, generate, logits,
// ingest, gate, eval, ...). Each subcommand is a function taking its own argv
// (argv[0] is the subcommand name) and returning the process exit code; it
// prints errors to stderr and returns 2 for usage errors, 1 for failures.
#pragma once

namespace thalamus::cli {

// Dispatches `thalamus <command> args...`.
int Main(int argc, char** argv);

}  // namespace thalamus::cli
