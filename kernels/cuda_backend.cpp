// Torch-facing side of the CUDA kernels: puts tensors into the layouts the
// launchers accept (activations in u's/x's dtype with unit time stride,
// parameters in fp32), allocates outputs, and launches on torch's current
// stream for the inputs' device. Built only against a CUDA LibTorch.
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <climits>

#include "kernels/backends.h"
#include "kernels/cuda/launch.h"

namespace thalamus::kernels::internal {
namespace {

namespace kc = thalamus::kernels::cuda;

kc::DType StorageType(torch::ScalarType type) {
  switch (type) {
    case torch::kHalf: return kc::DType::kFloat16;
    case torch::kBFloat16: return kc::DType::kBFloat16;
    default: return kc::DType::kFloat32;
  }
}

// In the kernel's activation dtype, with stride 1 along the last (time) axis.
torch::Tensor Activation(const torch::Tensor& t, torch::ScalarType type) {
  torch::Tensor out = t.scalar_type() == type ? t : t.to(type);
  if (out.size(-1) > 1 && out.stride(-1) != 1) out = out.contiguous();
  return out;
}

std::optional<torch::Tensor> Activation(const std::optional<torch::Tensor>& t, torch::ScalarType type) {
  if (!t) return std::nullopt;
  return Activation(*t, type);
}

torch::Tensor Param(const torch::Tensor& t) { return t.to(torch::kFloat).contiguous(); }

std::optional<torch::Tensor> Param(const std::optional<torch::Tensor>& t) {
  if (!t) return std::nullopt;
  return Param(*t);
}

const void* Ptr(const std::optional<torch::Tensor>& t) { return t ? t->data_ptr() : nullptr; }
const float* FloatPtr(const std::optional<torch::Tensor>& t) { return t ? t->data_ptr<float>() : nullptr; }

kc::Strides2 Strides(const torch::Tensor& t) { return {t.stride(0), t.stride(1)}; }
kc::Strides2 Strides(const std::optional<torch::Tensor>& t) { return t ? Strides(*t) : kc::Strides2{}; }

int Narrow(const char* op, const char* what, int64_t value) {
  TORCH_CHECK(value <= INT_MAX, op, ": ", what, " = ", value, " is too large for the CUDA kernels");
  return static_cast<int>(value);
}

void* CurrentStream() { return c10::cuda::getCurrentCUDAStream().stream(); }

void Check(const char* op, const char* error) { TORCH_CHECK(error == nullptr, op, ": ", error); }

}  // namespace

ScanResult CudaSelectiveScan(const ScanDims& dims, const torch::Tensor& u, const torch::Tensor& delta,
                             const torch::Tensor& A, const torch::Tensor& B, const torch::Tensor& C,
                             const std::optional<torch::Tensor>& D, const std::optional<torch::Tensor>& z,
                             const std::optional<torch::Tensor>& delta_bias, bool delta_softplus) {
  const char* op = "SelectiveScan";
  TORCH_CHECK(dims.dstate <= kc::kMaxScanState, op, ": dstate must be at most ", kc::kMaxScanState, " on CUDA, got ",
              dims.dstate);
  const c10::cuda::CUDAGuard guard(u.device());
  const auto type = u.scalar_type();
  const auto uu = Activation(u, type), dd = Activation(delta, type), bb = Activation(B, type);
  const auto cc = Activation(C, type);
  const auto zz = Activation(z, type);
  const auto aa = Param(A);
  const auto skip = Param(D), bias = Param(delta_bias);
  auto y = torch::empty({dims.batch, dims.dim, dims.seqlen}, u.options());
  auto last_state = torch::empty({dims.batch, dims.dim, dims.dstate}, u.options().dtype(torch::kFloat));

  kc::ScanLaunch p;
  p.batch = Narrow(op, "batch", dims.batch), p.dim = Narrow(op, "dim", dims.dim);
  p.seqlen = Narrow(op, "seqlen", dims.seqlen), p.dstate = static_cast<int>(dims.dstate);
  p.dtype = StorageType(type);
  p.u = uu.data_ptr(), p.u_stride = Strides(uu);
  p.delta = dd.data_ptr(), p.delta_stride = Strides(dd);
  p.z = Ptr(zz), p.z_stride = Strides(zz);
  p.B = bb.data_ptr(), p.B_stride = Strides(bb);
  p.C = cc.data_ptr(), p.C_stride = Strides(cc);
  p.A = aa.data_ptr<float>(), p.A_stride = Strides(aa);
  p.D = FloatPtr(skip), p.delta_bias = FloatPtr(bias), p.delta_softplus = delta_softplus;
  p.y = y.data_ptr(), p.y_stride = Strides(y);
  p.last_state = last_state.data_ptr<float>();
  Check(op, kc::LaunchSelectiveScan(p, CurrentStream()));
  return {y, last_state};
}

torch::Tensor CudaSelectiveStateUpdate(const ScanDims& dims, torch::Tensor& state, const torch::Tensor& x,
                                       const torch::Tensor& dt, const torch::Tensor& A, const torch::Tensor& B,
                                       const torch::Tensor& C, const std::optional<torch::Tensor>& D,
                                       const std::optional<torch::Tensor>& z,
                                       const std::optional<torch::Tensor>& dt_bias, bool dt_softplus) {
  const char* op = "SelectiveStateUpdate";
  const c10::cuda::CUDAGuard guard(x.device());
  const auto type = x.scalar_type();
  // (batch, dim) and (batch, dstate) inputs: any strides work, only the dtype is unified.
  const auto xx = x.to(type), dd = dt.to(type), bb = B.to(type), cc = C.to(type);
  const auto zz = z ? std::optional<torch::Tensor>(z->to(type)) : std::nullopt;
  const auto aa = Param(A);
  const auto skip = Param(D), bias = Param(dt_bias);
  auto y = torch::empty({dims.batch, dims.dim}, x.options());

  kc::StateUpdateLaunch p;
  p.batch = Narrow(op, "batch", dims.batch), p.dim = Narrow(op, "dim", dims.dim);
  p.dstate = Narrow(op, "dstate", dims.dstate), p.dtype = StorageType(type);
  p.state = state.data_ptr<float>();
  for (int i = 0; i < 3; ++i) p.state_stride[i] = state.stride(i);
  p.x = xx.data_ptr(), p.x_stride = Strides(xx);
  p.dt = dd.data_ptr(), p.dt_stride = Strides(dd);
  p.z = Ptr(zz), p.z_stride = Strides(zz);
  p.B = bb.data_ptr(), p.B_stride = Strides(bb);
  p.C = cc.data_ptr(), p.C_stride = Strides(cc);
  p.A = aa.data_ptr<float>(), p.A_stride = Strides(aa);
  p.D = FloatPtr(skip), p.dt_bias = FloatPtr(bias), p.dt_softplus = dt_softplus;
  p.y = y.data_ptr();
  Check(op, kc::LaunchSelectiveStateUpdate(p, CurrentStream()));
  return y;
}

torch::Tensor CudaCausalConv1d(const ConvDims& dims, const torch::Tensor& x, const torch::Tensor& weight,
                               const std::optional<torch::Tensor>& bias, bool silu) {
  const char* op = "CausalConv1d";
  TORCH_CHECK(dims.width <= kc::kMaxConvWidth, op, ": width must be at most ", kc::kMaxConvWidth, " on CUDA, got ",
              dims.width);
  const c10::cuda::CUDAGuard guard(x.device());
  const auto xx = Activation(x, x.scalar_type());
  const auto ww = Param(weight);
  const auto bb = Param(bias);
  auto out = torch::empty({dims.batch, dims.dim, dims.seqlen}, x.options());
  kc::ConvLaunch p;
  p.batch = Narrow(op, "batch", dims.batch), p.dim = Narrow(op, "dim", dims.dim);
  p.seqlen = Narrow(op, "seqlen", dims.seqlen), p.width = static_cast<int>(dims.width);
  p.dtype = StorageType(x.scalar_type());
  p.x = xx.data_ptr(), p.x_stride = Strides(xx);
  p.weight = ww.data_ptr<float>(), p.bias = FloatPtr(bb), p.silu = silu;
  p.out = out.data_ptr(), p.out_stride = Strides(out);
  Check(op, kc::LaunchCausalConv1d(p, CurrentStream()));
  return out;
}

torch::Tensor CudaCausalConv1dUpdate(const ConvDims& dims, const torch::Tensor& x, torch::Tensor& conv_state,
                                     const torch::Tensor& weight, const std::optional<torch::Tensor>& bias, bool silu) {
  const char* op = "CausalConv1dUpdate";
  const c10::cuda::CUDAGuard guard(x.device());
  const auto ww = Param(weight);
  const auto bb = Param(bias);
  auto out = torch::empty({dims.batch, dims.dim}, x.options());
  kc::ConvUpdateLaunch p;
  p.batch = Narrow(op, "batch", dims.batch), p.dim = Narrow(op, "dim", dims.dim);
  p.width = Narrow(op, "width", dims.width), p.dtype = StorageType(x.scalar_type());
  p.conv_state = conv_state.data_ptr();
  for (int i = 0; i < 3; ++i) p.state_stride[i] = conv_state.stride(i);
  p.x = x.data_ptr(), p.x_stride = Strides(x);
  p.weight = ww.data_ptr<float>(), p.bias = FloatPtr(bb), p.silu = silu;
  p.out = out.data_ptr();
  Check(op, kc::LaunchCausalConv1dUpdate(p, CurrentStream()));
  return out;
}

bool CudaDeviceVisible() { return c10::cuda::device_count() > 0; }

}  // namespace thalamus::kernels::internal
