#include <sys/prctl.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>

#include <boost/program_options.hpp>

#include "apps/expert_main.h"
#include "apps/run_with_config.h"
#include "apps/version.h"
#include "cli/parse_options.h"
#include "config/config.h"
#include "experts/worker.h"
#include "security/curve_keys.h"

namespace thalamus::apps {
namespace {

using experts::MakeExpert;
using experts::Worker;
using experts::WorkerOptions;

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop = true; }

}  // namespace

int ExpertMain(int argc, char** argv) {
  if (PrintVersionIfAsked(argc, argv, "thalamus-expert")) return 0;
  namespace po = boost::program_options;
  po::options_description options = ConfigOptions("thalamus-expert: serve one expert of a config");
  options.add_options()("expert", po::value<std::string>(), "the expert block (name) to serve")(
      "backend", po::value<std::string>(), "router backend endpoint (default: the config's broker.backend)")(
      "replica", po::value<int>()->default_value(0), "replica number, for logs")(
      "curve-key", po::value<std::string>(), "this expert's CURVE key pair (.key; default: broker.curve.client_key)")(
      "exit-with-parent", "exit when the parent process (the router's supervisor) dies")(
      "health-file", po::value<std::string>(),
      "rewrite this file every heartbeat with ready|connecting|draining, for `thalamus probe` (container probes)");
  po::variables_map vars;
  const auto check = [&] {
    if (!vars.count("expert")) throw po::error("--expert is required");
  };
  if (auto exit_code = cli::ParseOptions(argc, argv, "thalamus-expert", options, vars, check)) return *exit_code;
  if (vars.count("exit-with-parent")) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() == 1) return 0;  // the parent died before prctl took effect
  }
  return RunWithConfig("thalamus-expert", vars, [&](const config::Config& cfg, const std::string&) {
    const std::string name = vars["expert"].as<std::string>();
    const config::ExpertConfig* expert_config = cfg.FindExpert(name);
    if (!expert_config) {
      std::fprintf(stderr, "thalamus-expert: %s names no expert '%s'\n", cfg.file.c_str(), name.c_str());
      return 2;
    }
    WorkerOptions worker_options;
    worker_options.backend = vars.count("backend") ? vars["backend"].as<std::string>() : cfg.broker.backend;
    worker_options.service = expert_config->name;
    worker_options.kind = config::Name(expert_config->kind);
    worker_options.concurrency = expert_config->concurrency;
    worker_options.queue_limit = expert_config->queue_limit;
    worker_options.heartbeat_ms = cfg.broker.heartbeat_ms;
    worker_options.liveness = cfg.broker.liveness;
    worker_options.max_message_bytes = cfg.broker.max_message_bytes;
    worker_options.drain_grace_ms = cfg.broker.drain_grace_ms;
    if (vars.count("health-file")) worker_options.health_file = vars["health-file"].as<std::string>();
    if (cfg.broker.curve.enabled) {
      const std::string key =
          vars.count("curve-key") ? vars["curve-key"].as<std::string>() : cfg.broker.curve.client_key;
      if (key.empty()) {
        throw std::runtime_error("broker.curve is on: give the expert a key (broker.curve.client_key or --curve-key)");
      }
      worker_options.curve_keys = security::ReadKeyPair(key);
      worker_options.curve_server_key = security::ReadPublicKey(cfg.broker.curve.router_public_key);
    }
    Worker worker(worker_options, MakeExpert(*expert_config));
    std::signal(SIGINT, OnSignal);
    std::signal(SIGTERM, OnSignal);
    std::fprintf(stderr, "thalamus-expert: %s (%s) replica %d pid %d -> %s\n", name.c_str(),
                 config::Name(expert_config->kind), vars["replica"].as<int>(), static_cast<int>(getpid()),
                 worker_options.backend.c_str());
    worker.Run(g_stop);
    return 0;
  });
}

}  // namespace thalamus::apps
