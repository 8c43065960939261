// ParallelFor: splits [0, tasks) into one contiguous range per thread.
//
// Not at::parallel_for: with ATen's OpenMP backend that is an inline template
// whose `#pragma omp parallel` is compiled in the caller, so it runs serially
// unless the caller is built with -fopenmp, and against a pip LibTorch (which
// bundles its own libgomp) it would read another OpenMP runtime's thread
// count than the one at::set_num_threads sets. Here the team size is asked of
// ATen explicitly, so at::set_num_threads / SetCpuThreads always apply.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>

#include <ATen/Parallel.h>

namespace thalamus::kernels::internal {

// Runs body(begin, end) on disjoint ranges covering [0, tasks); a range is at
// least `grain` tasks, so small problems stay on the calling thread. `body`
// must not throw.
template <typename Body>
void ParallelFor(int64_t tasks, int64_t grain, const Body& body) {
  if (tasks <= 0) return;
  const int64_t wanted = std::min<int64_t>(at::get_num_threads(), (tasks + grain - 1) / std::max<int64_t>(1, grain));
  if (wanted <= 1 || omp_in_parallel()) {
    body(0, tasks);
    return;
  }
#pragma omp parallel num_threads(static_cast <int>(wanted))
  {
    const int64_t threads = omp_get_num_threads(), id = omp_get_thread_num();
    const int64_t per_thread = (tasks + threads - 1) / threads;
    const int64_t begin = std::min(tasks, id * per_thread), end = std::min(tasks, begin + per_thread);
    if (begin < end) body(begin, end);
  }
}

}  // namespace thalamus::kernels::internal
