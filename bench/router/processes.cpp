#include "bench/router/processes.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>
#include <zmq.hpp>

namespace thalamus::bench {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

template <typename Predicate>
bool WaitFor(Predicate predicate, std::chrono::milliseconds timeout) {
  const auto until = Clock::now() + timeout;
  while (Clock::now() < until) {
    if (predicate()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return predicate();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

// One GET on a fresh connection; "" when the router does not answer 200.
std::string HttpGet(int port, const std::string& target) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  using tcp = boost::asio::ip::tcp;
  try {
    boost::asio::io_context io;
    tcp::socket socket(io);
    socket.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
    http::request<http::empty_body> request(http::verb::get, target, 11);
    request.set(http::field::host, "127.0.0.1");
    http::write(socket, request);
    beast::flat_buffer buffer;
    http::response<http::string_body> response;
    http::read(socket, buffer, response);
    return response.result_int() == 200 ? response.body() : "";
  } catch (const std::exception&) {
    return "";
  }
}

// fork(), with the child set to die with its parent (-1 when fork fails).
// The child side makes only async-signal-safe calls, so Exec can use it too.
pid_t ForkDyingWithParent() {
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);  // the parent died before prctl took effect
  }
  return pid;
}

// Reads one line (without its '\n') from a pipe, then closes it; "" when the
// writer closed first.
std::string ReadLineAndClose(int fd) {
  std::string line;
  char c;
  while (read(fd, &c, 1) == 1 && c != '\n') line += c;
  close(fd);
  return line;
}

// Writes `line` and '\n' to a pipe, then closes it; false when the write fell short.
bool WriteLineAndClose(int fd, const std::string& line) {
  const std::string text = line + "\n";
  const bool whole = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  return whole;
}

// A REP echo worker's whole life, in a context of its own: never returns.
[[noreturn]] void RunEchoWorker(const std::string& backend_endpoint, zmq::context_t& context) {
  zmq::socket_t worker(context, zmq::socket_type::rep);
  worker.connect(backend_endpoint);
  for (;;) {
    zmq::message_t request;
    if (!worker.recv(request)) continue;
    (void)worker.send(request, zmq::send_flags::none);  // echo: the same bytes back
  }
}

// Forks a worker process before the proxy has a ZeroMQ context (a context
// does not survive fork); it waits for the backend endpoint on the returned
// pipe. Dies with the proxy child.
int ForkWorkerProcess() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) _exit(1);
  const pid_t pid = ForkDyingWithParent();
  if (pid < 0) _exit(1);
  if (pid > 0) {
    close(fds[0]);
    return fds[1];
  }
  close(fds[1]);
  const std::string endpoint = ReadLineAndClose(fds[0]);
  if (endpoint.empty()) _exit(1);
  try {
    zmq::context_t context(1);
    RunEchoWorker(endpoint, context);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "proxy baseline worker: %s\n", e.what());
  }
  _exit(1);
}

// The proxy child's whole life: never returns.
[[noreturn]] void RunProxyChild(int workers, ProxyWorkers placement, int endpoint_pipe) {
  std::vector<int> worker_pipes;
  if (placement == ProxyWorkers::kProcesses) {
    for (int i = 0; i < workers; ++i) worker_pipes.push_back(ForkWorkerProcess());
  }
  try {
    zmq::context_t context(1);
    zmq::socket_t frontend(context, zmq::socket_type::router);
    zmq::socket_t backend(context, zmq::socket_type::dealer);
    frontend.bind("tcp://127.0.0.1:*");
    backend.bind("tcp://127.0.0.1:*");
    const std::string backend_endpoint = backend.get(zmq::sockopt::last_endpoint);
    for (int pipe : worker_pipes) {
      if (!WriteLineAndClose(pipe, backend_endpoint)) _exit(1);
    }
    if (placement == ProxyWorkers::kThreads) {
      for (int i = 0; i < workers; ++i) {
        std::thread([&context, backend_endpoint] { RunEchoWorker(backend_endpoint, context); }).detach();
      }
    }
    if (!WriteLineAndClose(endpoint_pipe, frontend.get(zmq::sockopt::last_endpoint))) _exit(1);
    zmq::proxy(frontend, backend);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "proxy baseline: %s\n", e.what());
  }
  _exit(1);
}

}  // namespace

ChildProcess::ChildProcess(ChildProcess&& other) noexcept : pid_(other.pid_) { other.pid_ = 0; }

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    Stop();
    pid_ = other.pid_;
    other.pid_ = 0;
  }
  return *this;
}

ChildProcess ChildProcess::Exec(const std::string& binary, const std::vector<std::string>& args,
                                const std::string& log_path) {
  // Everything the child needs is made before fork: between fork and exec
  // only async-signal-safe calls are allowed.
  std::vector<std::string> all = {binary};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : all) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) throw std::runtime_error("cannot open " + log_path);
  const pid_t pid = ForkDyingWithParent();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    dup2(log, STDOUT_FILENO);
    dup2(log, STDERR_FILENO);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  close(log);
  return ChildProcess(pid);
}

bool ChildProcess::Running() {
  if (pid_ == 0) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = 0;
    return false;
  }
  return true;
}

void ChildProcess::Stop() {
  if (pid_ == 0) return;
  kill(pid_, SIGTERM);
  if (!WaitFor([&] { return !Running(); }, 10s)) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  pid_ = 0;
}

ProxyBaseline StartProxyBaseline(int workers, ProxyWorkers placement) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  const pid_t pid = ForkDyingWithParent();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    close(fds[0]);
    RunProxyChild(workers, placement, fds[1]);
  }
  close(fds[1]);
  ProxyBaseline baseline{ChildProcess(pid), ReadLineAndClose(fds[0])};
  if (baseline.frontend.empty()) throw std::runtime_error("the proxy baseline did not start");
  return baseline;
}

RouterUnderTest::RouterUnderTest(const RouterOptions& options) {
  char pattern[] = "/tmp/bench-router-XXXXXX";
  if (!mkdtemp(pattern)) throw std::runtime_error("mkdtemp failed");
  dir_ = pattern;
  config_yaml_ = "http: {port: 0, threads: " + std::to_string(options.http_threads) + "}\n" +
                 "broker: {frontend: \"tcp://127.0.0.1:*\", backend: \"tcp://127.0.0.1:*\"}\n" +
                 "experts:\n  - {name: echo, kind: echo, replicas: " + std::to_string(options.replicas) +
                 ", concurrency: " + std::to_string(options.concurrency) +
                 ", queue_limit: " + std::to_string(options.queue_limit) + ", delay_ms: 0}\n";
  const std::string config = dir_ + "/thalamus.yaml";
  std::ofstream(config) << config_yaml_;
  const std::string ready = dir_ + "/ready.json";
  process_ = ChildProcess::Exec(options.binary, {"--config", config, "--ready-file", ready}, dir_ + "/log.txt");
  if (!WaitFor([&] { return !ReadFile(ready).empty() || !process_.Running(); }, 20s) || ReadFile(ready).empty()) {
    throw std::runtime_error("thalamus-router did not start:\n" + Log());
  }
  const auto info = nlohmann::json::parse(ReadFile(ready));
  http_port_ = info.at("http_port").get<int>();
  frontend_ = info.at("frontend").get<std::string>();
  WaitUntilServing(options.replicas);
}

void RouterUnderTest::WaitUntilServing(int replicas) {
  auto all_joined = [&] {
    const std::string body = HttpGet(http_port_, "/v1/models");
    if (body.empty()) return false;
    const nlohmann::json models = nlohmann::json::parse(body);
    for (const auto& model : models.at("data")) {
      if (model.value("id", "") == "echo") return model.value("live_workers", 0) == replicas;
    }
    return false;
  };
  if (!WaitFor(all_joined, 30s)) throw std::runtime_error("the echo experts did not all join:\n" + Log());
}

RouterUnderTest::~RouterUnderTest() {
  process_.Stop();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::string RouterUnderTest::Log() const { return ReadFile(dir_ + "/log.txt"); }

namespace {

// utime + stime in ticks and the parent of /proc/<pid>/stat; false when it is gone.
bool ReadStat(const std::string& pid, long& ticks, long& parent) {
  const std::string stat = ReadFile("/proc/" + pid + "/stat");
  const size_t name_end = stat.rfind(')');  // the command name may hold spaces
  if (name_end == std::string::npos) return false;
  std::istringstream fields(stat.substr(name_end + 2));
  std::string state;
  long skip = 0, utime = 0, stime = 0;
  fields >> state >> parent;
  for (int i = 0; i < 9; ++i) fields >> skip;  // pgrp .. cmajflt
  fields >> utime >> stime;
  ticks = utime + stime;
  return static_cast<bool>(fields);
}

}  // namespace

std::vector<pid_t> TreeProcesses(pid_t root) {
  std::vector<pid_t> tree = {root};
  const std::string root_name = std::to_string(root);
  long ticks = 0, parent = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos || name == root_name) continue;
    if (ReadStat(name, ticks, parent) && parent == root) tree.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return tree;
}

double TreeCpuSeconds(pid_t root) {
  long total = 0, ticks = 0, parent = 0;
  for (pid_t process : TreeProcesses(root)) {
    if (ReadStat(std::to_string(process), ticks, parent)) total += ticks;
  }
  return static_cast<double>(total) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::string OwnDirectory() { return std::filesystem::read_symlink("/proc/self/exe").parent_path().string(); }

}  // namespace thalamus::bench
