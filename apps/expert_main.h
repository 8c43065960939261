// `thalamus-expert`'s main: parses --config/--expert/--backend and runs an
// experts::Worker until SIGINT/SIGTERM. Returns the process exit code.
#pragma once

namespace thalamus::apps {

int ExpertMain(int argc, char** argv);

}  // namespace thalamus::apps
