// Instructions retired by the server side of one mode (the router and its
// experts, or the proxy and its workers), from the CPU's performance counters
// through perf_event_open(2). On a shared machine the CPU time a request
// costs moves with whatever else runs; the instructions it costs hardly do,
// so they are what compares a change, or the router with the proxy, when
// timings are noise. Where counters are not to be had (a VM without them,
// kernel.perf_event_paranoid, no permission) the count says so and the
// benchmark prints "-": never fatal.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <vector>

namespace thalamus::bench {

class InstructionCounter {
 public:
  // Starts counting, user and kernel, on every thread that `root` and its
  // direct children have now (the servers start theirs at start-up).
  explicit InstructionCounter(pid_t root);
  ~InstructionCounter();
  InstructionCounter(const InstructionCounter&) = delete;
  InstructionCounter& operator=(const InstructionCounter&) = delete;

  bool available() const { return !counters_.empty(); }
  // Instructions retired since construction, summed over the threads.
  uint64_t Read() const;

 private:
  std::vector<int> counters_;  // one perf event file descriptor per thread
};

}  // namespace thalamus::bench
