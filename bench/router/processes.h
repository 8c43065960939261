// The servers bench_router_overhead measures, each in its own process:
// - the baseline, a plain two-hop ZeroMQ proxy (zmq::proxy between a ROUTER
//   front end and a DEALER back end) with REP workers that echo, and
// - the real thalamus-router, whose supervisor starts `echo` experts.
// Children die with the benchmark (PR_SET_PDEATHSIG) even if it crashes.
// Start failures throw std::runtime_error with the child's log.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace thalamus::bench {

// A child process; SIGTERMed (then SIGKILLed) and reaped when destroyed.
class ChildProcess {
 public:
  ChildProcess() = default;
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ~ChildProcess() { Stop(); }

  // Starts `binary` with `args`, stdout and stderr appended to `log_path`.
  static ChildProcess Exec(const std::string& binary, const std::vector<std::string>& args,
                           const std::string& log_path);
  pid_t pid() const { return pid_; }
  bool Running();
  // SIGTERM, up to 10 s for it to exit, then SIGKILL. Idempotent.
  void Stop();

 private:
  pid_t pid_ = 0;
};

struct ProxyBaseline {
  ChildProcess process;
  std::string frontend;  // where clients connect
};

// Where the baseline's REP echo workers run.
enum class ProxyWorkers {
  // One process each, as Thalamus's experts: the same hops as the router's
  // path (each worker's own ZeroMQ I/O thread), so the comparison measures
  // the router rather than where the workers sit.
  kProcesses,
  // Threads of the proxy's process, sharing its ZeroMQ I/O thread: fewer
  // thread wake-ups per request than any deployment of separate workers.
  kThreads,
};

// Forks the proxy and `workers` REP echo workers, all on TCP loopback. Call
// before the benchmark creates any thread or ZeroMQ context: the children
// make their own contexts after the fork.
ProxyBaseline StartProxyBaseline(int workers, ProxyWorkers placement);

struct RouterOptions {
  std::string binary;    // thalamus-router
  int replicas = 2;      // echo experts
  int concurrency = 2;   // requests each works on at once
  int queue_limit = 2;   // requests each holds beyond concurrency (its pipeline depth)
  int http_threads = 0;  // 0: HTTP on the router's event loop thread
};

// thalamus-router with one `echo` service, ready (every replica joined).
class RouterUnderTest {
 public:
  explicit RouterUnderTest(const RouterOptions& options);
  ~RouterUnderTest();
  pid_t pid() const { return process_.pid(); }
  int http_port() const { return http_port_; }
  const std::string& frontend() const { return frontend_; }
  const std::string& config_yaml() const { return config_yaml_; }
  std::string Log() const;

 private:
  void WaitUntilServing(int replicas);

  std::string dir_;
  std::string config_yaml_;
  ChildProcess process_;
  int http_port_ = 0;
  std::string frontend_;
};

// `root` and its direct children (the router's experts, the proxy's
// workers), those alive now.
std::vector<pid_t> TreeProcesses(pid_t root);

// CPU time (user + system) used so far by TreeProcesses(root), from /proc at
// clock-tick resolution.
double TreeCpuSeconds(pid_t root);

// The folder this executable is in.
std::string OwnDirectory();

}  // namespace thalamus::bench
