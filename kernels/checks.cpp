#include "kernels/checks.h"

#include <initializer_list>
#include <string>
#include <vector>

namespace thalamus::kernels::internal {
namespace {

std::string ShapeString(std::initializer_list<std::pair<const char*, int64_t>> dims) {
  std::string text = "(";
  bool first = true;
  for (const auto& [name, size] : dims) {
    if (!first) text += ", ";
    text += name;
    text += "=";
    text += std::to_string(size);
    first = false;
  }
  return text + ")";
}

void CheckFloating(const char* op, const char* name, const torch::Tensor& t) {
  TORCH_CHECK(t.defined(), op, ": ", name, " is an undefined tensor");
  const auto type = t.scalar_type();
  TORCH_CHECK(type == torch::kFloat || type == torch::kHalf || type == torch::kBFloat16, op, ": ", name,
              " must be float32, float16 or bfloat16, got ", type);
}

void CheckShape(const char* op, const char* name, const torch::Tensor& t,
                std::initializer_list<std::pair<const char*, int64_t>> dims) {
  CheckFloating(op, name, t);
  std::vector<int64_t> expected;
  for (const auto& dim : dims) expected.push_back(dim.second);
  TORCH_CHECK(t.sizes() == c10::IntArrayRef(expected), op, ": ", name, " must have shape ", ShapeString(dims), ", got ",
              t.sizes());
}

void CheckDevice(const char* op, const char* name, const torch::Tensor& t, const torch::Tensor& first) {
  TORCH_CHECK(t.device() == first.device(), op, ": ", name, " is on ", t.device(), " but the other inputs are on ",
              first.device());
}

void CheckOptional(const char* op, const char* name, const std::optional<torch::Tensor>& t, const torch::Tensor& first,
                   std::initializer_list<std::pair<const char*, int64_t>> dims) {
  if (!t.has_value()) return;
  CheckShape(op, name, *t, dims);
  CheckDevice(op, name, *t, first);
}

int64_t RequireDims(const char* op, const char* name, const torch::Tensor& t, int64_t rank, const char* layout) {
  CheckFloating(op, name, t);
  TORCH_CHECK(t.dim() == rank, op, ": ", name, " must be ", layout, ", got shape ", t.sizes());
  return rank;
}

}  // namespace

ScanDims CheckScanArgs(const char* op, const torch::Tensor& u, const torch::Tensor& delta, const torch::Tensor& A,
                       const torch::Tensor& B, const torch::Tensor& C, const std::optional<torch::Tensor>& D,
                       const std::optional<torch::Tensor>& z, const std::optional<torch::Tensor>& delta_bias) {
  RequireDims(op, "u", u, 3, "(batch, dim, seqlen)");
  RequireDims(op, "A", A, 2, "(dim, dstate)");
  const ScanDims dims{u.size(0), u.size(1), u.size(2), A.size(1)};
  const auto bds = {std::pair{"batch", dims.batch}, std::pair{"dim", dims.dim}, std::pair{"seqlen", dims.seqlen}};
  CheckShape(op, "delta", delta, bds);
  CheckShape(op, "A", A, {{"dim", dims.dim}, {"dstate", dims.dstate}});
  CheckShape(op, "B", B, {{"batch", dims.batch}, {"dstate", dims.dstate}, {"seqlen", dims.seqlen}});
  CheckShape(op, "C", C, {{"batch", dims.batch}, {"dstate", dims.dstate}, {"seqlen", dims.seqlen}});
  TORCH_CHECK(dims.dstate >= 1, op, ": A must have at least one state column (dstate >= 1)");
  for (const auto& [name, t] :
       {std::pair{"delta", &delta}, std::pair{"A", &A}, std::pair{"B", &B}, std::pair{"C", &C}}) {
    CheckDevice(op, name, *t, u);
  }
  CheckOptional(op, "D", D, u, {{"dim", dims.dim}});
  CheckOptional(op, "z", z, u, bds);
  CheckOptional(op, "delta_bias", delta_bias, u, {{"dim", dims.dim}});
  return dims;
}

ScanDims CheckStateUpdateArgs(const char* op, const torch::Tensor& state, const torch::Tensor& x,
                              const torch::Tensor& dt, const torch::Tensor& A, const torch::Tensor& B,
                              const torch::Tensor& C, const std::optional<torch::Tensor>& D,
                              const std::optional<torch::Tensor>& z, const std::optional<torch::Tensor>& dt_bias) {
  RequireDims(op, "x", x, 2, "(batch, dim)");
  RequireDims(op, "A", A, 2, "(dim, dstate)");
  const ScanDims dims{x.size(0), x.size(1), 1, A.size(1)};
  TORCH_CHECK(dims.dstate >= 1, op, ": A must have at least one state column (dstate >= 1)");
  CheckShape(op, "state", state, {{"batch", dims.batch}, {"dim", dims.dim}, {"dstate", dims.dstate}});
  TORCH_CHECK(state.scalar_type() == torch::kFloat, op, ": state must be float32, got ", state.scalar_type());
  CheckShape(op, "dt", dt, {{"batch", dims.batch}, {"dim", dims.dim}});
  CheckShape(op, "B", B, {{"batch", dims.batch}, {"dstate", dims.dstate}});
  CheckShape(op, "C", C, {{"batch", dims.batch}, {"dstate", dims.dstate}});
  for (const auto& [name, t] :
       {std::pair{"state", &state}, std::pair{"dt", &dt}, std::pair{"A", &A}, std::pair{"B", &B}, std::pair{"C", &C}}) {
    CheckDevice(op, name, *t, x);
  }
  CheckOptional(op, "D", D, x, {{"dim", dims.dim}});
  CheckOptional(op, "z", z, x, {{"batch", dims.batch}, {"dim", dims.dim}});
  CheckOptional(op, "dt_bias", dt_bias, x, {{"dim", dims.dim}});
  return dims;
}

ConvDims CheckConvArgs(const char* op, const torch::Tensor& x, const torch::Tensor& weight,
                       const std::optional<torch::Tensor>& bias) {
  RequireDims(op, "x", x, 3, "(batch, dim, seqlen)");
  RequireDims(op, "weight", weight, 2, "(dim, width)");
  const ConvDims dims{x.size(0), x.size(1), x.size(2), weight.size(1)};
  CheckShape(op, "weight", weight, {{"dim", dims.dim}, {"width", dims.width}});
  TORCH_CHECK(dims.width >= 1, op, ": weight must have width >= 1");
  CheckDevice(op, "weight", weight, x);
  CheckOptional(op, "bias", bias, x, {{"dim", dims.dim}});
  return dims;
}

ConvDims CheckConvUpdateArgs(const char* op, const torch::Tensor& x, const torch::Tensor& conv_state,
                             const torch::Tensor& weight, const std::optional<torch::Tensor>& bias) {
  RequireDims(op, "x", x, 2, "(batch, dim)");
  RequireDims(op, "weight", weight, 2, "(dim, width)");
  const ConvDims dims{x.size(0), x.size(1), 1, weight.size(1)};
  CheckShape(op, "weight", weight, {{"dim", dims.dim}, {"width", dims.width}});
  TORCH_CHECK(dims.width >= 1, op, ": weight must have width >= 1");
  CheckShape(op, "conv_state", conv_state, {{"batch", dims.batch}, {"dim", dims.dim}, {"width", dims.width}});
  TORCH_CHECK(conv_state.scalar_type() == x.scalar_type(), op, ": conv_state must have x's dtype ", x.scalar_type(),
              ", got ", conv_state.scalar_type());
  CheckDevice(op, "conv_state", conv_state, x);
  CheckDevice(op, "weight", weight, x);
  CheckOptional(op, "bias", bias, x, {{"dim", dims.dim}});
  return dims;
}

}  // namespace thalamus::kernels::internal
