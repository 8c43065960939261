// `thalamus-router`'s main: loads the config, binds the HTTP, ZeroMQ
// front-end and backend endpoints, starts the supervisor, and serves until
// SIGINT/SIGTERM. Returns the process exit code.
#pragma once

namespace thalamus::apps {

int RouterMain(int argc, char** argv);

}  // namespace thalamus::apps
