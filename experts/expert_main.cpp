#include <sys/prctl.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <iostream>

#include <boost/program_options.hpp>

#include "config/config.h"
#include "experts/worker.h"

namespace thalamus::experts {
namespace {

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop = true; }

}  // namespace

int ExpertMain(int argc, char** argv) {
  namespace po = boost::program_options;
  po::options_description options("thalamus-expert: serve one expert of a config");
  options.add_options()("help,h", "show this help")
      ("config", po::value<std::string>(), "config file (default: the embedded default)")
      ("expert", po::value<std::string>(), "the expert block (name) to serve")
      ("backend", po::value<std::string>(), "router backend endpoint (default: the config's broker.backend)")
      ("replica", po::value<int>()->default_value(0), "replica number, for logs")
      ("exit-with-parent", "exit when the parent process (the router's supervisor) dies");
  po::variables_map vars;
  try {
    po::store(po::parse_command_line(argc, argv, options), vars);
    if (vars.count("help")) {
      std::cout << options;
      return 0;
    }
    if (!vars.count("expert")) throw po::error("--expert is required");
  } catch (const po::error& e) {
    std::cerr << "thalamus-expert: " << e.what() << "\n" << options;
    return 2;
  }
  if (vars.count("exit-with-parent")) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() == 1) return 0;  // the parent died before prctl took effect
  }
  try {
    config::Config cfg = vars.count("config") ? config::LoadFile(vars["config"].as<std::string>()) : config::LoadDefault();
    const std::string name = vars["expert"].as<std::string>();
    const config::ExpertConfig* expert_config = cfg.FindExpert(name);
    if (!expert_config) {
      std::fprintf(stderr, "thalamus-expert: %s names no expert '%s'\n", cfg.file.c_str(), name.c_str());
      return 2;
    }
    WorkerOptions worker_options;
    worker_options.backend = vars.count("backend") ? vars["backend"].as<std::string>() : cfg.broker.backend;
    worker_options.service = expert_config->name;
    worker_options.kind = expert_config->kind;
    worker_options.concurrency = expert_config->concurrency;
    worker_options.queue_limit = expert_config->queue_limit;
    worker_options.heartbeat_ms = cfg.broker.heartbeat_ms;
    worker_options.liveness = cfg.broker.liveness;
    Worker worker(worker_options, MakeExpert(*expert_config));
    std::signal(SIGINT, OnSignal);
    std::signal(SIGTERM, OnSignal);
    std::fprintf(stderr, "thalamus-expert: %s (%s) replica %d pid %d -> %s\n", name.c_str(), expert_config->kind.c_str(),
                 vars["replica"].as<int>(), static_cast<int>(getpid()), worker_options.backend.c_str());
    worker.Run(g_stop);
    return 0;
  } catch (const config::ConfigError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "thalamus-expert: %s\n", e.what());
    return 1;
  }
}

}  // namespace thalamus::experts
