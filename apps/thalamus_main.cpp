#include "apps/thalamus_main.h"

#include <cstdio>
#include <cstring>
#include <iterator>

#include "apps/version.h"
#include "cli/commands.h"

namespace thalamus::apps {
namespace {

using cli::Command;

// Add a subcommand here and declare it in cli/commands.h.
constexpr Command kCommands[] = {
    {"config", "check a config file: thalamus config --config FILE", cli::RunValidateConfig},
    {"gate", "train or evaluate the learned gate: thalamus gate train|eval --help", cli::RunGate},
    {"eval", "question answering through a router's ralm plan: thalamus eval ralm --help", cli::RunEval},
    {"tokenize", "text to ids or back: thalamus tokenize --tokenizer FILE --text TEXT | --decode IDS",
     cli::RunTokenize},
    {"generate", "continue a prompt: thalamus generate --model DIR --prompt TEXT --max-tokens N", cli::RunGenerate},
    {"logits", "logits of every position: thalamus logits --model DIR --ids 1,2,3", cli::RunLogits},
    {"query", "ask a router over ZeroMQ: thalamus query [--frontend EP] [--curve-key K --server-key P] TEXT",
     cli::RunQuery},
    {"probe", "container probe of an expert: thalamus probe --file HEALTH_FILE [--ready]", cli::RunProbe},
    {"keys", "CURVE key pairs and HTTP API keys: thalamus keys generate|api --help", cli::RunKeys},
    {"ingest", "index files for a rag domain: thalamus ingest --domain NAME --index DIR FILES_OR_DIRS...",
     cli::RunIngest},
};

void PrintUsage() {
  std::fprintf(stderr, "usage: thalamus <command> [options]\n\ncommands:\n");
  for (const Command& command : kCommands) std::fprintf(stderr, "  %-10s %s\n", command.name, command.summary);
  std::fprintf(stderr,
               "\n`thalamus <command> --help` describes a command's options; `thalamus --version` the build.\n");
}

}  // namespace

int ToolMain(int argc, char** argv) {
  // Only as the first argument: after a command, the command's options.
  if (argc >= 2 && std::strcmp(argv[1], "--version") == 0) return PrintVersionIfAsked(2, argv, "thalamus") ? 0 : 1;
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    PrintUsage();
    return argc < 2 ? 2 : 0;
  }
  for (const Command& command : kCommands) {
    if (std::strcmp(argv[1], command.name) == 0) return command.run(argc - 1, argv + 1);
  }
  std::fprintf(stderr, "thalamus: unknown command '%s'\n\n", argv[1]);
  PrintUsage();
  return 2;
}

}  // namespace thalamus::apps
