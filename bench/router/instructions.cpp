#include "bench/router/instructions.h"

#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>

#include "bench/router/processes.h"

namespace thalamus::bench {
namespace {

// glibc has no wrapper for perf_event_open.
int OpenInstructionCounter(pid_t thread) {
  perf_event_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.size = sizeof(attr);
  attr.type = PERF_TYPE_HARDWARE;
  attr.config = PERF_COUNT_HW_INSTRUCTIONS;
  attr.exclude_hv = 1;
  return static_cast<int>(syscall(SYS_perf_event_open, &attr, thread, -1, -1, PERF_FLAG_FD_CLOEXEC));
}

std::vector<pid_t> Threads(pid_t process) {
  std::vector<pid_t> threads;
  std::error_code ignored;  // a process that is gone has no threads to count
  for (const auto& entry : std::filesystem::directory_iterator("/proc/" + std::to_string(process) + "/task", ignored)) {
    threads.push_back(static_cast<pid_t>(std::stol(entry.path().filename().string())));
  }
  return threads;
}

}  // namespace

InstructionCounter::InstructionCounter(pid_t root) {
  for (pid_t process : TreeProcesses(root)) {
    for (pid_t thread : Threads(process)) {
      const int fd = OpenInstructionCounter(thread);
      if (fd >= 0) counters_.push_back(fd);
    }
  }
}

InstructionCounter::~InstructionCounter() {
  for (int fd : counters_) close(fd);
}

uint64_t InstructionCounter::Read() const {
  uint64_t total = 0;
  for (int fd : counters_) {
    uint64_t count = 0;
    if (read(fd, &count, sizeof(count)) == static_cast<ssize_t>(sizeof(count))) total += count;
  }
  return total;
}

}  // namespace thalamus::bench
