// Test support: child processes and a small blocking HTTP client, for
// integration tests that run the real binaries on loopback.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace thalamus::testing {

// The folder holding thalamus-router, thalamus-expert and thalamus.
std::string BinDir();

// A child process, SIGKILLed and reaped when destroyed unless already reaped.
class Process {
 public:
  Process() = default;
  // Starts `binary` (a path) with `args`; stdout/stderr go to `log_path` when given.
  Process(const std::string& binary, const std::vector<std::string>& args, const std::string& log_path = "");
  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;
  ~Process();

  pid_t pid() const { return pid_; }
  void Signal(int signal_number);
  // Waits up to `timeout` for the exit; returns the exit status (or 128 +
  // signal), or -1 on timeout.
  int Wait(std::chrono::milliseconds timeout);
  bool Running();

 private:
  pid_t pid_ = 0;
};

// A fresh temporary directory, removed with its contents when destroyed.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string Write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

std::string ReadFile(const std::string& path);

// Polls `predicate` every 20 ms until it is true or `timeout` passes.
template <typename Predicate>
bool WaitFor(Predicate predicate, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (predicate()) return true;
    struct timespec pause = {0, 20'000'000};
    nanosleep(&pause, nullptr);
  }
  return predicate();
}

struct HttpResponse {
  int status = 0;                              // 0: connection failed
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

// One request on a fresh connection to 127.0.0.1:port.
HttpResponse HttpRequest(int port, const std::string& method, const std::string& target, const std::string& body = "",
                         const std::string& content_type = "application/json");

// The `data:` payloads of a server-sent-events body, in order.
std::vector<std::string> SseData(const std::string& body);

}  // namespace thalamus::testing
