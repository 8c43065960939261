// Torch-facing side of the optimized CPU kernels: converts inputs to the
// contiguous fp32 layouts cpu_loops.h expects, allocates outputs and splits
// the work over ATen's intra-op thread count (parallel.h).
#include "kernels/backends.h"
#include "kernels/cpu_loops.h"
#include "kernels/parallel.h"

namespace thalamus::kernels::internal {
namespace {

// Decode calls are a few microseconds of work, so skip the dispatcher when nothing needs converting.
torch::Tensor Float32(const torch::Tensor& t) {
  if (t.scalar_type() == torch::kFloat && t.is_contiguous()) return t;
  return t.to(torch::kFloat).contiguous();
}

std::optional<torch::Tensor> Float32(const std::optional<torch::Tensor>& t) {
  if (!t.has_value()) return std::nullopt;
  return Float32(*t);
}

const float* Data(const torch::Tensor& t) { return t.data_ptr<float>(); }
const float* Data(const std::optional<torch::Tensor>& t) { return t ? t->data_ptr<float>() : nullptr; }

// Tasks below this much work run on the calling thread: waking the pool costs more.
int64_t GrainFor(int64_t work_per_task) {
  constexpr int64_t kMinWorkPerChunk = 1 << 15;
  return std::max<int64_t>(1, kMinWorkPerChunk / std::max<int64_t>(1, work_per_task));
}

// Runs `update` on a contiguous fp32 view of `target` and writes the result
// back when `target` itself could not be used directly.
template <typename Update>
void UpdateInPlace(torch::Tensor& target, Update&& update) {
  const bool direct = target.is_contiguous() && target.scalar_type() == torch::kFloat;
  torch::Tensor work = direct ? target : target.to(torch::kFloat).contiguous();
  update(work.data_ptr<float>());
  if (!direct) target.copy_(work);
}

}  // namespace

ScanResult CpuSelectiveScan(const ScanDims& dims, const torch::Tensor& u, const torch::Tensor& delta,
                            const torch::Tensor& A, const torch::Tensor& B, const torch::Tensor& C,
                            const std::optional<torch::Tensor>& D, const std::optional<torch::Tensor>& z,
                            const std::optional<torch::Tensor>& delta_bias, bool delta_softplus) {
  const auto u32 = Float32(u), delta32 = Float32(delta), A32 = Float32(A);
  const auto B_by_time = Float32(B.transpose(1, 2)), C_by_time = Float32(C.transpose(1, 2));
  const auto D32 = Float32(D), z32 = Float32(z), bias32 = Float32(delta_bias);
  auto y = torch::empty({dims.batch, dims.dim, dims.seqlen}, torch::kFloat);
  auto last_state = torch::empty({dims.batch, dims.dim, dims.dstate}, torch::kFloat);

  CpuScanArgs args;
  args.batch = dims.batch, args.dim = dims.dim, args.seqlen = dims.seqlen, args.dstate = dims.dstate;
  args.u = Data(u32), args.delta = Data(delta32), args.z = Data(z32), args.A = Data(A32);
  args.B_by_time = Data(B_by_time), args.C_by_time = Data(C_by_time);
  args.D = Data(D32), args.delta_bias = Data(bias32), args.delta_softplus = delta_softplus;
  args.y = y.data_ptr<float>(), args.last_state = last_state.data_ptr<float>();
  const int64_t tasks = ScanTaskCount(args);
  ParallelFor(tasks, GrainFor(kScanLanes * dims.seqlen * dims.dstate),
              [&](int64_t begin, int64_t end) { RunScanTasks(args, begin, end); });
  return {u.scalar_type() == torch::kFloat ? y : y.to(u.scalar_type()), last_state};
}

torch::Tensor CpuSelectiveStateUpdate(const ScanDims& dims, torch::Tensor& state, const torch::Tensor& x,
                                      const torch::Tensor& dt, const torch::Tensor& A, const torch::Tensor& B,
                                      const torch::Tensor& C, const std::optional<torch::Tensor>& D,
                                      const std::optional<torch::Tensor>& z,
                                      const std::optional<torch::Tensor>& dt_bias, bool dt_softplus) {
  const auto x32 = Float32(x), dt32 = Float32(dt), A32 = Float32(A), B32 = Float32(B), C32 = Float32(C);
  const auto D32 = Float32(D), z32 = Float32(z), bias32 = Float32(dt_bias);
  auto y = torch::empty({dims.batch, dims.dim}, torch::kFloat);

  CpuStateUpdateArgs args;
  args.batch = dims.batch, args.dim = dims.dim, args.dstate = dims.dstate;
  args.x = Data(x32), args.dt = Data(dt32), args.z = Data(z32), args.A = Data(A32);
  args.B = Data(B32), args.C = Data(C32), args.D = Data(D32), args.dt_bias = Data(bias32);
  args.dt_softplus = dt_softplus, args.y = y.data_ptr<float>();
  UpdateInPlace(state, [&](float* data) {
    args.state = data;
    ParallelFor(dims.batch * dims.dim, GrainFor(dims.dstate),
                [&](int64_t begin, int64_t end) { RunStateUpdateRows(args, begin, end); });
  });
  return x.scalar_type() == torch::kFloat ? y : y.to(x.scalar_type());
}

torch::Tensor CpuCausalConv1d(const ConvDims& dims, const torch::Tensor& x, const torch::Tensor& weight,
                              const std::optional<torch::Tensor>& bias, bool silu) {
  const auto x32 = Float32(x), w32 = Float32(weight);
  const auto bias32 = Float32(bias);
  auto out = torch::empty({dims.batch, dims.dim, dims.seqlen}, torch::kFloat);
  CpuConvArgs args;
  args.batch = dims.batch, args.dim = dims.dim, args.seqlen = dims.seqlen, args.width = dims.width;
  args.x = Data(x32), args.weight = Data(w32), args.bias = Data(bias32), args.silu = silu;
  args.out = out.data_ptr<float>();
  ParallelFor(dims.batch * dims.dim, GrainFor(dims.seqlen * (dims.width + 4)),
              [&](int64_t begin, int64_t end) { RunConvRows(args, begin, end); });
  return x.scalar_type() == torch::kFloat ? out : out.to(x.scalar_type());
}

torch::Tensor CpuCausalConv1dUpdate(const ConvDims& dims, const torch::Tensor& x, torch::Tensor& conv_state,
                                    const torch::Tensor& weight, const std::optional<torch::Tensor>& bias, bool silu) {
  const auto x32 = Float32(x), w32 = Float32(weight);
  const auto bias32 = Float32(bias);
  auto out = torch::empty({dims.batch, dims.dim}, torch::kFloat);
  CpuConvUpdateArgs args;
  args.batch = dims.batch, args.dim = dims.dim, args.width = dims.width;
  args.x = Data(x32), args.weight = Data(w32), args.bias = Data(bias32), args.silu = silu;
  args.out = out.data_ptr<float>();
  UpdateInPlace(conv_state, [&](float* data) {
    args.conv_state = data;
    ParallelFor(dims.batch * dims.dim, GrainFor(dims.width),
                [&](int64_t begin, int64_t end) { RunConvUpdateRows(args, begin, end); });
  });
  return x.scalar_type() == torch::kFloat ? out : out.to(x.scalar_type());
}

}  // namespace thalamus::kernels::internal
