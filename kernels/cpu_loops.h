// The hot loops of the optimized CPU kernels, on raw fp32 pointers.
//
// cpu_loops.cpp is compiled with -O3 -ffast-math and no torch headers: fast-math
// lets GCC vectorize expf/log1pf through glibc's libmvec and reassociate the
// sums, and keeping torch out of that translation unit keeps fast-math
// semantics out of any inline torch function the linker might pick from it.
// Each Run* function processes tasks [begin, end) so that cpu_kernels.cpp can
// hand ranges to at::parallel_for. Every pointer is to a contiguous fp32 array.
#pragma once

#include <cstdint>

namespace thalamus::kernels::internal {

// The scan is vectorized across channels, not across dstate: kScanLanes
// channels advance together, so the state update and the C.x sum are
// element-wise in every lane and no horizontal reduction is needed, whatever dstate is.
inline constexpr int64_t kScanLanes = 16;

struct CpuScanArgs {
  int64_t batch = 0, dim = 0, seqlen = 0, dstate = 0;
  const float* u = nullptr;           // (batch, dim, seqlen)
  const float* delta = nullptr;       // (batch, dim, seqlen)
  const float* z = nullptr;           // (batch, dim, seqlen) or null
  const float* A = nullptr;           // (dim, dstate)
  const float* B_by_time = nullptr;   // (batch, seqlen, dstate): B transposed so one step reads one row
  const float* C_by_time = nullptr;   // (batch, seqlen, dstate)
  const float* D = nullptr;           // (dim) or null
  const float* delta_bias = nullptr;  // (dim) or null
  bool delta_softplus = false;
  float* y = nullptr;           // (batch, dim, seqlen)
  float* last_state = nullptr;  // (batch, dim, dstate)
};

// A task is one batch row times kScanLanes channels.
inline int64_t ScanTaskCount(const CpuScanArgs& args) {
  return args.batch * ((args.dim + kScanLanes - 1) / kScanLanes);
}
void RunScanTasks(const CpuScanArgs& args, int64_t begin, int64_t end);

struct CpuStateUpdateArgs {
  int64_t batch = 0, dim = 0, dstate = 0;
  float* state = nullptr;          // (batch, dim, dstate), updated in place
  const float* x = nullptr;        // (batch, dim)
  const float* dt = nullptr;       // (batch, dim)
  const float* z = nullptr;        // (batch, dim) or null
  const float* A = nullptr;        // (dim, dstate)
  const float* B = nullptr;        // (batch, dstate)
  const float* C = nullptr;        // (batch, dstate)
  const float* D = nullptr;        // (dim) or null
  const float* dt_bias = nullptr;  // (dim) or null
  bool dt_softplus = false;
  float* y = nullptr;  // (batch, dim)
};

// A task is one (batch, channel) row.
void RunStateUpdateRows(const CpuStateUpdateArgs& args, int64_t begin, int64_t end);

struct CpuConvArgs {
  int64_t batch = 0, dim = 0, seqlen = 0, width = 0;
  const float* x = nullptr;       // (batch, dim, seqlen)
  const float* weight = nullptr;  // (dim, width)
  const float* bias = nullptr;    // (dim) or null
  bool silu = false;
  float* out = nullptr;  // (batch, dim, seqlen)
};

// A task is one (batch, channel) row.
void RunConvRows(const CpuConvArgs& args, int64_t begin, int64_t end);

struct CpuConvUpdateArgs {
  int64_t batch = 0, dim = 0, width = 0;
  float* conv_state = nullptr;    // (batch, dim, width), shifted in place
  const float* x = nullptr;       // (batch, dim)
  const float* weight = nullptr;  // (dim, width)
  const float* bias = nullptr;    // (dim) or null
  bool silu = false;
  float* out = nullptr;  // (batch, dim)
};

void RunConvUpdateRows(const CpuConvUpdateArgs& args, int64_t begin, int64_t end);

// "avx512" (x86-64-v4 code), "avx2" (x86-64-v3) or "baseline" (x86-64-v2, or
// the target's default elsewhere): the widest the CPU runs, chosen once.
// THALAMUS_KERNELS_CPU_ISA=avx2|baseline caps it so tests can cover each.
const char* SelectedCpuIsa();

}  // namespace thalamus::kernels::internal
