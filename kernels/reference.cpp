// The plain references: one scalar loop per formula over TensorAccessors, in
// fp32, single-threaded. They are the ground truth in tests and the naive
// baseline in bench/kernels, so they stay deliberately simple.
#include <cmath>
#include <initializer_list>
#include <vector>

#include "kernels/checks.h"
#include "kernels/kernels.h"

namespace thalamus::kernels {
namespace {

torch::Tensor Float32(const torch::Tensor& t) { return t.to(torch::kFloat).contiguous(); }

// Absent optional inputs become the neutral value (D = 0, bias = 0) so the loops stay branch-light.
torch::Tensor Float32Or(const std::optional<torch::Tensor>& t, std::initializer_list<int64_t> sizes, float fill) {
  return t.has_value() ? Float32(*t) : torch::full(sizes, fill, torch::kFloat);
}

// Same threshold as torch.nn.functional.softplus: above 20 exp() would only add rounding error.
float Softplus(float v) { return v <= 20.0f ? std::log1p(std::exp(v)) : v; }

float Silu(float v) { return v / (1.0f + std::exp(-v)); }

void RequireCpu(const char* op, const torch::Tensor& t) {
  TORCH_CHECK(t.device().is_cpu(), op, ": the reference runs on CPU tensors only, got ", t.device());
}

}  // namespace

ScanResult ReferenceSelectiveScan(const torch::Tensor& u, const torch::Tensor& delta, const torch::Tensor& A,
                                  const torch::Tensor& B, const torch::Tensor& C, const std::optional<torch::Tensor>& D,
                                  const std::optional<torch::Tensor>& z, const std::optional<torch::Tensor>& delta_bias,
                                  bool delta_softplus) {
  const char* op = "ReferenceSelectiveScan";
  const auto dims = internal::CheckScanArgs(op, u, delta, A, B, C, D, z, delta_bias);
  RequireCpu(op, u);
  const auto u32 = Float32(u), delta32 = Float32(delta), A32 = Float32(A), B32 = Float32(B), C32 = Float32(C);
  const auto D32 = Float32Or(D, {dims.dim}, 0.0f), bias32 = Float32Or(delta_bias, {dims.dim}, 0.0f);
  const auto z32 = Float32Or(z, {dims.batch, dims.dim, dims.seqlen}, 0.0f);
  auto y = torch::zeros({dims.batch, dims.dim, dims.seqlen}, torch::kFloat);
  auto state = torch::zeros({dims.batch, dims.dim, dims.dstate}, torch::kFloat);

  const auto uu = u32.accessor<float, 3>(), dd = delta32.accessor<float, 3>();
  const auto aa = A32.accessor<float, 2>();
  const auto bb = B32.accessor<float, 3>(), cc = C32.accessor<float, 3>();
  const auto skip = D32.accessor<float, 1>(), bias = bias32.accessor<float, 1>();
  const auto gate = z32.accessor<float, 3>();
  auto yy = y.accessor<float, 3>();
  auto ss = state.accessor<float, 3>();
  for (int64_t b = 0; b < dims.batch; ++b) {
    for (int64_t d = 0; d < dims.dim; ++d) {
      for (int64_t t = 0; t < dims.seqlen; ++t) {
        float dt = dd[b][d][t] + bias[d];
        if (delta_softplus) dt = Softplus(dt);
        float out = 0.0f;
        for (int64_t n = 0; n < dims.dstate; ++n) {
          ss[b][d][n] = std::exp(dt * aa[d][n]) * ss[b][d][n] + dt * bb[b][n][t] * uu[b][d][t];
          out += cc[b][n][t] * ss[b][d][n];
        }
        out += skip[d] * uu[b][d][t];
        if (z) out *= Silu(gate[b][d][t]);
        yy[b][d][t] = out;
      }
    }
  }
  return {y.to(u.scalar_type()), state};
}

torch::Tensor ReferenceSelectiveStateUpdate(torch::Tensor& state, const torch::Tensor& x, const torch::Tensor& dt,
                                            const torch::Tensor& A, const torch::Tensor& B, const torch::Tensor& C,
                                            const std::optional<torch::Tensor>& D,
                                            const std::optional<torch::Tensor>& z,
                                            const std::optional<torch::Tensor>& dt_bias, bool dt_softplus) {
  const char* op = "ReferenceSelectiveStateUpdate";
  const auto dims = internal::CheckStateUpdateArgs(op, state, x, dt, A, B, C, D, z, dt_bias);
  RequireCpu(op, x);
  const auto x32 = Float32(x), dt32 = Float32(dt), A32 = Float32(A), B32 = Float32(B), C32 = Float32(C);
  const auto D32 = Float32Or(D, {dims.dim}, 0.0f), bias32 = Float32Or(dt_bias, {dims.dim}, 0.0f);
  const auto z32 = Float32Or(z, {dims.batch, dims.dim}, 0.0f);
  auto y = torch::zeros({dims.batch, dims.dim}, torch::kFloat);

  const auto xx = x32.accessor<float, 2>(), dd = dt32.accessor<float, 2>();
  const auto aa = A32.accessor<float, 2>(), bb = B32.accessor<float, 2>(), cc = C32.accessor<float, 2>();
  const auto skip = D32.accessor<float, 1>(), bias = bias32.accessor<float, 1>();
  const auto gate = z32.accessor<float, 2>();
  auto yy = y.accessor<float, 2>();
  auto ss = state.accessor<float, 3>();  // accessors honour any strides, so the update is truly in place
  for (int64_t b = 0; b < dims.batch; ++b) {
    for (int64_t d = 0; d < dims.dim; ++d) {
      float step = dd[b][d] + bias[d];
      if (dt_softplus) step = Softplus(step);
      float out = 0.0f;
      for (int64_t n = 0; n < dims.dstate; ++n) {
        ss[b][d][n] = std::exp(step * aa[d][n]) * ss[b][d][n] + step * bb[b][n] * xx[b][d];
        out += cc[b][n] * ss[b][d][n];
      }
      out += skip[d] * xx[b][d];
      if (z) out *= Silu(gate[b][d]);
      yy[b][d] = out;
    }
  }
  return y.to(x.scalar_type());
}

torch::Tensor ReferenceCausalConv1d(const torch::Tensor& x, const torch::Tensor& weight,
                                    const std::optional<torch::Tensor>& bias, bool silu) {
  const char* op = "ReferenceCausalConv1d";
  const auto dims = internal::CheckConvArgs(op, x, weight, bias);
  RequireCpu(op, x);
  const auto x32 = Float32(x), w32 = Float32(weight);
  const auto bias32 = Float32Or(bias, {dims.dim}, 0.0f);
  auto out = torch::zeros({dims.batch, dims.dim, dims.seqlen}, torch::kFloat);
  const auto xx = x32.accessor<float, 3>();
  const auto bb = bias32.accessor<float, 1>();
  const auto ww = w32.accessor<float, 2>();
  auto oo = out.accessor<float, 3>();
  for (int64_t b = 0; b < dims.batch; ++b) {
    for (int64_t d = 0; d < dims.dim; ++d) {
      for (int64_t t = 0; t < dims.seqlen; ++t) {
        float acc = bb[d];
        // Tap k multiplies the input k steps before the last one: weight[:, width-1] sees x[t].
        for (int64_t k = 0; k < dims.width; ++k) {
          const int64_t source = t - (dims.width - 1) + k;
          if (source >= 0) acc += ww[d][k] * xx[b][d][source];
        }
        oo[b][d][t] = silu ? Silu(acc) : acc;
      }
    }
  }
  return out.to(x.scalar_type());
}

}  // namespace thalamus::kernels

namespace thalamus::kernels {

ScanResult TorchOpsSelectiveScan(const torch::Tensor& u, const torch::Tensor& delta, const torch::Tensor& A,
                                 const torch::Tensor& B, const torch::Tensor& C, const std::optional<torch::Tensor>& D,
                                 const std::optional<torch::Tensor>& z, const std::optional<torch::Tensor>& delta_bias,
                                 bool delta_softplus) {
  const auto dims = internal::CheckScanArgs("TorchOpsSelectiveScan", u, delta, A, B, C, D, z, delta_bias);
  auto dt = delta.to(torch::kFloat);
  if (delta_bias) dt = dt + delta_bias->to(torch::kFloat).unsqueeze(-1);
  if (delta_softplus) dt = torch::softplus(dt);
  const auto u32 = u.to(torch::kFloat), A32 = A.to(torch::kFloat);
  const auto B32 = B.to(torch::kFloat), C32 = C.to(torch::kFloat);
  const auto drive = dt * u32;
  auto state = torch::zeros({dims.batch, dims.dim, dims.dstate}, u32.options());
  std::vector<torch::Tensor> ys;
  ys.reserve(dims.seqlen);
  for (int64_t t = 0; t < dims.seqlen; ++t) {
    const auto decay = torch::exp(dt.select(2, t).unsqueeze(-1) * A32);
    state = decay * state + drive.select(2, t).unsqueeze(-1) * B32.select(2, t).unsqueeze(1);
    ys.push_back((state * C32.select(2, t).unsqueeze(1)).sum(-1));
  }
  auto y = dims.seqlen > 0 ? torch::stack(ys, 2) : torch::zeros_like(u32);
  if (D) y = y + D->to(torch::kFloat).unsqueeze(-1) * u32;
  if (z) y = y * torch::silu(z->to(torch::kFloat));
  return {y.to(u.scalar_type()), state};
}

}  // namespace thalamus::kernels
