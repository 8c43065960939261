// --threads=N for the CPU benchmarks (bench/kernels, bench/models): taken out
// of argv before Google Benchmark, which rejects flags it does not know.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace thalamus::bench {

// Returns N (2 when absent); exits with status 2 when N < 1.
inline int TakeThreadsFlag(int* argc, char** argv) {
  int threads = 2;
  int kept = 1;
  for (int i = 1; i < *argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0) {
      threads = std::atoi(argv[i] + 10);
    } else {
      argv[kept++] = argv[i];
    }
  }
  *argc = kept;
  if (threads < 1) {
    std::fprintf(stderr, "--threads must be >= 1\n");
    std::exit(2);
  }
  return threads;
}

}  // namespace thalamus::bench
