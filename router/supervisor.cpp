#include "router/supervisor.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>

extern char** environ;

namespace thalamus::router {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kStableRun = std::chrono::seconds(60);

std::string BinaryBesideSelf(const std::string& name) {
  std::error_code error;
  auto self = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error) return name;  // fall back to PATH
  return (self.parent_path() / name).string();
}

}  // namespace

Supervisor::Supervisor(const config::Config& config, std::string config_path, std::string backend,
                       std::function<void(const std::string& expert)> on_restart)
    : config_(config),
      config_path_(std::move(config_path)),
      backend_(std::move(backend)),
      expert_binary_(BinaryBesideSelf("thalamus-expert")),
      on_restart_(std::move(on_restart)) {}

Supervisor::~Supervisor() { Stop(); }

pid_t Supervisor::Spawn(const Child& child) {
  std::vector<std::string> args = {
      expert_binary_,      "--expert", child.expert, "--backend", backend_, "--replica", std::to_string(child.replica),
      "--exit-with-parent"};
  if (!config_path_.empty()) args.insert(args.end(), {"--config", config_path_});
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  // Children start with no signal blocked, whatever the spawning thread had
  // blocked, or they could not be stopped.
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t no_signals;
  sigemptyset(&no_signals);
  posix_spawnattr_setsigmask(&attributes, &no_signals);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK);
  // Nothing of the router's but stdio goes to a child: Asio's sockets are not
  // close-on-exec, and an inherited listening socket would keep the router's
  // HTTP port bound after the router died.
  posix_spawn_file_actions_t file_actions;
  posix_spawn_file_actions_init(&file_actions);
  posix_spawn_file_actions_addclosefrom_np(&file_actions, 3);
  pid_t pid = 0;
  int error = posix_spawn(&pid, expert_binary_.c_str(), &file_actions, &attributes, argv.data(), environ);
  posix_spawn_file_actions_destroy(&file_actions);
  posix_spawnattr_destroy(&attributes);
  if (error != 0) {
    std::fprintf(stderr, "thalamus-router: cannot start %s: %s\n", expert_binary_.c_str(), std::strerror(error));
    return 0;
  }
  return pid;
}

void Supervisor::Start() {
  {
    std::lock_guard lock(mutex_);
    for (const config::ExpertConfig& expert : config_.experts) {
      if (expert.launch != config::Launch::kLocal) continue;
      for (int replica = 0; replica < expert.replicas; ++replica) {
        Child child;
        child.expert = expert.name;
        child.replica = replica;
        child.backoff_ms = config_.supervisor.restart_backoff_ms;
        child.started = Clock::now();
        child.pid = Spawn(child);
        if (child.pid == 0) child.restart_at = Clock::now() + std::chrono::milliseconds(child.backoff_ms);
        children_.push_back(child);
      }
    }
  }
  watcher_ = std::thread([this] { Watch(); });
}

void Supervisor::Watch() {
  while (!stop_.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::lock_guard lock(mutex_);
    const auto now = Clock::now();
    for (Child& child : children_) {
      if (child.pid != 0) {
        int status = 0;
        if (waitpid(child.pid, &status, WNOHANG) != child.pid) continue;
        std::fprintf(stderr, "thalamus-router: expert %s replica %d (pid %d) exited (%s %d); restarting in %d ms\n",
                     child.expert.c_str(), child.replica, static_cast<int>(child.pid),
                     WIFSIGNALED(status) ? "signal" : "status",
                     WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), child.backoff_ms);
        child.pid = 0;
        if (now - child.started > kStableRun) child.backoff_ms = config_.supervisor.restart_backoff_ms;
        child.restart_at = now + std::chrono::milliseconds(child.backoff_ms);
        child.backoff_ms = std::min(child.backoff_ms * 2, config_.supervisor.max_restart_backoff_ms);
      } else if (now >= child.restart_at && !stop_.load()) {
        child.started = now;
        child.pid = Spawn(child);
        if (on_restart_) on_restart_(child.expert);  // Start() made the first; these are restarts
        if (child.pid == 0) child.restart_at = now + std::chrono::milliseconds(child.backoff_ms);
      }
    }
  }
}

void Supervisor::Stop() {
  if (stop_.exchange(true)) return;
  if (watcher_.joinable()) watcher_.join();
  std::lock_guard lock(mutex_);
  for (Child& child : children_) {
    if (child.pid != 0) kill(child.pid, SIGTERM);
  }
  const auto give_up = Clock::now() + std::chrono::seconds(5);
  for (Child& child : children_) {
    while (child.pid != 0) {
      if (waitpid(child.pid, nullptr, WNOHANG) == child.pid) {
        child.pid = 0;
      } else if (Clock::now() > give_up) {
        kill(child.pid, SIGKILL);
        waitpid(child.pid, nullptr, 0);
        child.pid = 0;
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
  }
}

std::vector<pid_t> Supervisor::Children() const {
  std::lock_guard lock(mutex_);
  std::vector<pid_t> pids;
  for (const Child& child : children_) {
    if (child.pid != 0) pids.push_back(child.pid);
  }
  return pids;
}

}  // namespace thalamus::router
