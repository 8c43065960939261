// Supervisor: starts the `launch: local` experts of the config as child
// processes (`thalamus-expert`, found beside the running binary), `replicas`
// of each, and restarts any that exits, with exponential backoff (reset once
// a process has stayed up for a minute). Children die with the router
// (PR_SET_PDEATHSIG) and are stopped with SIGTERM, then SIGKILL, on Stop().
// Experts on other hosts are started by hand and just connect.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"

namespace thalamus::router {

class Supervisor {
 public:
  // `config_path` is passed on to the children ("" for the embedded default);
  // `backend` is the router's bound backend endpoint.
  // `on_restart` (may be empty) is told each restart's expert name, from the
  // supervisor's own thread (for thalamus_expert_restarts_total).
  Supervisor(const config::Config& config, std::string config_path, std::string backend,
             std::function<void(const std::string& expert)> on_restart = {});
  ~Supervisor();

  void Start();
  void Stop();
  // Live child pids, for logs and tests.
  std::vector<pid_t> Children() const;

 private:
  struct Child {
    std::string expert;
    int replica = 0;
    pid_t pid = 0;
    std::chrono::steady_clock::time_point started;
    std::chrono::steady_clock::time_point restart_at;
    int backoff_ms = 0;
  };

  void Watch();
  pid_t Spawn(const Child& child);

  const config::Config& config_;
  std::string config_path_;
  std::string backend_;
  std::string expert_binary_;
  std::function<void(const std::string&)> on_restart_;
  mutable std::mutex mutex_;
  std::vector<Child> children_;
  std::atomic<bool> stop_{false};
  std::thread watcher_;
};

}  // namespace thalamus::router
