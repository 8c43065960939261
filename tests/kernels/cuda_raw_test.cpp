// The raw CUDA kernels (kernels/cuda/launch.h) against plain CPU loops, using
// only the CUDA runtime: this runs wherever thalamus_kernels_cuda builds, even
// against a CPU-only LibTorch. GPU tests skip when no device is visible.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/launch.h"

namespace thalamus::kernels::cuda {
namespace {

#define REQUIRE_GPU() \
  if (VisibleDeviceCount() == 0) GTEST_SKIP() << "no CUDA device visible"

// Device memory holding `count` elements of the storage type of `dtype`.
class DeviceArray {
 public:
  DeviceArray(const std::vector<float>& host, DType dtype) : dtype_(dtype), count_(host.size()) {
    std::vector<unsigned char> bytes(count_ * ElementSize());
    for (size_t i = 0; i < count_; ++i) Encode(host[i], bytes.data() + i * ElementSize());
    EXPECT_EQ(cudaMalloc(&ptr_, std::max<size_t>(1, bytes.size())), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(ptr_, bytes.data(), bytes.size(), cudaMemcpyHostToDevice), cudaSuccess);
  }
  ~DeviceArray() { cudaFree(ptr_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;

  void* get() const { return ptr_; }
  float* floats() const { return static_cast<float*>(ptr_); }

  std::vector<float> Download() const {
    std::vector<unsigned char> bytes(count_ * ElementSize());
    EXPECT_EQ(cudaMemcpy(bytes.data(), ptr_, bytes.size(), cudaMemcpyDeviceToHost), cudaSuccess);
    std::vector<float> host(count_);
    for (size_t i = 0; i < count_; ++i) host[i] = Decode(bytes.data() + i * ElementSize());
    return host;
  }

 private:
  size_t ElementSize() const { return dtype_ == DType::kFloat32 ? 4 : 2; }
  void Encode(float v, unsigned char* out) const {
    if (dtype_ == DType::kFloat32) std::memcpy(out, &v, 4);
    if (dtype_ == DType::kFloat16) {
      const __half h = __float2half(v);
      std::memcpy(out, &h, 2);
    }
    if (dtype_ == DType::kBFloat16) {
      const __nv_bfloat16 h = __float2bfloat16(v);
      std::memcpy(out, &h, 2);
    }
  }
  float Decode(const unsigned char* in) const {
    if (dtype_ == DType::kFloat16) {
      __half h;
      std::memcpy(&h, in, 2);
      return __half2float(h);
    }
    if (dtype_ == DType::kBFloat16) {
      __nv_bfloat16 h;
      std::memcpy(&h, in, 2);
      return __bfloat162float(h);
    }
    float v;
    std::memcpy(&v, in, 4);
    return v;
  }

  DType dtype_;
  size_t count_;
  void* ptr_ = nullptr;
};

// What the device sees after rounding to its storage type.
std::vector<float> RoundTrip(const std::vector<float>& v, DType dtype) { return DeviceArray(v, dtype).Download(); }

std::vector<float> Random(size_t count, float lo, float hi, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(count);
  for (auto& x : v) x = dist(rng);
  return v;
}

double Tolerance(DType dtype, double expected) {
  if (dtype == DType::kBFloat16) return 5e-2 + 3e-2 * std::abs(expected);
  if (dtype == DType::kFloat16) return 5e-3 + 3e-3 * std::abs(expected);
  return 2e-3 + 6e-4 * std::abs(expected);
}

void ExpectNear(const std::vector<float>& actual, const std::vector<float>& expected, DType dtype,
                const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    ASSERT_LE(std::abs(actual[i] - expected[i]), Tolerance(dtype, expected[i])) << what << " element " << i;
  }
}

float Softplus(float v) { return v <= 20.0f ? std::log1p(std::exp(v)) : v; }
float Silu(float v) { return v / (1.0f + std::exp(-v)); }

struct ScanCase {
  int batch, dim, seqlen, dstate;
  DType dtype;
  bool with_options;
};

void RunScanCase(const ScanCase& c) {
  SCOPED_TRACE("b=" + std::to_string(c.batch) + " d=" + std::to_string(c.dim) + " l=" + std::to_string(c.seqlen) +
               " n=" + std::to_string(c.dstate) + " dtype=" + std::to_string(static_cast<int>(c.dtype)));
  std::mt19937 rng(c.seqlen * 31 + c.dstate);
  const size_t bdl = size_t(c.batch) * c.dim * c.seqlen, bnl = size_t(c.batch) * c.dstate * c.seqlen;
  const auto u = RoundTrip(Random(bdl, -2, 2, rng), c.dtype), delta = RoundTrip(Random(bdl, 0, 0.5, rng), c.dtype);
  const auto z = RoundTrip(Random(bdl, -2, 2, rng), c.dtype);
  const auto B = RoundTrip(Random(bnl, -2, 2, rng), c.dtype), C = RoundTrip(Random(bnl, -2, 2, rng), c.dtype);
  const auto A = Random(size_t(c.dim) * c.dstate, -1, 0, rng);
  const auto D = Random(c.dim, -1, 1, rng), bias = Random(c.dim, 0, 0.5, rng);

  // The CPU loop: the recurrence exactly as written in kernels.h.
  std::vector<float> y(bdl), state(size_t(c.batch) * c.dim * c.dstate, 0.0f);
  for (int b = 0; b < c.batch; ++b) {
    for (int d = 0; d < c.dim; ++d) {
      float* x = &state[(size_t(b) * c.dim + d) * c.dstate];
      for (int t = 0; t < c.seqlen; ++t) {
        const size_t i = (size_t(b) * c.dim + d) * c.seqlen + t;
        const float dt = c.with_options ? Softplus(delta[i] + bias[d]) : delta[i];
        float out = 0.0f;
        for (int n = 0; n < c.dstate; ++n) {
          const size_t bn = (size_t(b) * c.dstate + n) * c.seqlen + t;
          x[n] = std::exp(dt * A[d * c.dstate + n]) * x[n] + dt * B[bn] * u[i];
          out += C[bn] * x[n];
        }
        y[i] = c.with_options ? (out + D[d] * u[i]) * Silu(z[i]) : out;
      }
    }
  }

  DeviceArray du(u, c.dtype), ddelta(delta, c.dtype), dz(z, c.dtype), dB(B, c.dtype), dC(C, c.dtype);
  DeviceArray dA(A, DType::kFloat32), dD(D, DType::kFloat32), dbias(bias, DType::kFloat32);
  DeviceArray dy(std::vector<float>(bdl), c.dtype), dstate(std::vector<float>(state.size()), DType::kFloat32);
  ScanLaunch p;
  p.batch = c.batch, p.dim = c.dim, p.seqlen = c.seqlen, p.dstate = c.dstate, p.dtype = c.dtype;
  const Strides2 activations{int64_t(c.dim) * c.seqlen, c.seqlen}, by_state{int64_t(c.dstate) * c.seqlen, c.seqlen};
  p.u = du.get(), p.u_stride = activations, p.delta = ddelta.get(), p.delta_stride = activations;
  p.z = c.with_options ? dz.get() : nullptr, p.z_stride = activations;
  p.B = dB.get(), p.B_stride = by_state, p.C = dC.get(), p.C_stride = by_state;
  p.A = dA.floats(), p.A_stride = {c.dstate, 1};
  p.D = c.with_options ? dD.floats() : nullptr, p.delta_bias = c.with_options ? dbias.floats() : nullptr;
  p.delta_softplus = c.with_options;
  p.y = dy.get(), p.y_stride = activations, p.last_state = dstate.floats();
  ASSERT_EQ(LaunchSelectiveScan(p, nullptr), nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  ExpectNear(dy.Download(), y, c.dtype, "y");
  ExpectNear(dstate.Download(), state, DType::kFloat32, "last_state");
}

TEST(CudaRawScan, MatchesCpuLoop) {
  REQUIRE_GPU();
  for (int seqlen : {1, 3, 127, 256, 257, 1000, 1025, 3000}) RunScanCase({2, 5, seqlen, 16, DType::kFloat32, true});
  for (int dstate : {1, 2, 17, 64, 256}) RunScanCase({1, 3, 300, dstate, DType::kFloat32, true});
  RunScanCase({2, 4, 200, 16, DType::kFloat32, false});
  for (DType dtype : {DType::kFloat16, DType::kBFloat16}) RunScanCase({2, 6, 700, 16, dtype, true});
}

TEST(CudaRawStateUpdate, MatchesCpuLoop) {
  REQUIRE_GPU();
  for (int dstate : {1, 16, 17, 256}) {
    const int batch = 3, dim = 45;
    std::mt19937 rng(dstate);
    auto state = Random(size_t(batch) * dim * dstate, -1, 1, rng);
    const auto x = Random(batch * dim, -2, 2, rng), dt = Random(batch * dim, 0, 1, rng);
    const auto z = Random(batch * dim, -2, 2, rng), A = Random(size_t(dim) * dstate, -1, 0, rng);
    const auto B = Random(batch * dstate, -1, 1, rng), C = Random(batch * dstate, -1, 1, rng);
    const auto D = Random(dim, -1, 1, rng), bias = Random(dim, 0, 0.5, rng);
    DeviceArray dstate_arr(state, DType::kFloat32), dx(x, DType::kFloat32), ddt(dt, DType::kFloat32);
    DeviceArray dz(z, DType::kFloat32), dA(A, DType::kFloat32), dB(B, DType::kFloat32), dC(C, DType::kFloat32);
    DeviceArray dD(D, DType::kFloat32), dbias(bias, DType::kFloat32),
        dy(std::vector<float>(batch * dim), DType::kFloat32);
    std::vector<float> y(batch * dim);
    for (int b = 0; b < batch; ++b) {
      for (int d = 0; d < dim; ++d) {
        const float step = Softplus(dt[b * dim + d] + bias[d]);
        float out = 0.0f;
        for (int n = 0; n < dstate; ++n) {
          float& s = state[(size_t(b) * dim + d) * dstate + n];
          s = std::exp(step * A[d * dstate + n]) * s + step * B[b * dstate + n] * x[b * dim + d];
          out += C[b * dstate + n] * s;
        }
        y[b * dim + d] = (out + D[d] * x[b * dim + d]) * Silu(z[b * dim + d]);
      }
    }
    StateUpdateLaunch p;
    p.batch = batch, p.dim = dim, p.dstate = dstate, p.dtype = DType::kFloat32;
    p.state = dstate_arr.floats(), p.state_stride[0] = int64_t(dim) * dstate, p.state_stride[1] = dstate;
    p.state_stride[2] = 1;
    p.x = dx.get(), p.x_stride = {dim, 1}, p.dt = ddt.get(), p.dt_stride = {dim, 1}, p.z = dz.get();
    p.z_stride = {dim, 1}, p.B = dB.get(), p.B_stride = {dstate, 1}, p.C = dC.get(), p.C_stride = {dstate, 1};
    p.A = dA.floats(), p.A_stride = {dstate, 1}, p.D = dD.floats(), p.dt_bias = dbias.floats();
    p.dt_softplus = true, p.y = dy.get();
    ASSERT_EQ(LaunchSelectiveStateUpdate(p, nullptr), nullptr);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    ExpectNear(dy.Download(), y, DType::kFloat32, "y dstate=" + std::to_string(dstate));
    ExpectNear(dstate_arr.Download(), state, DType::kFloat32, "state dstate=" + std::to_string(dstate));
  }
}

TEST(CudaRawConv, PrefillAndUpdateMatchCpuLoop) {
  REQUIRE_GPU();
  for (int width : {1, 4, 9}) {
    const int batch = 2, dim = 7, seqlen = 600;
    std::mt19937 rng(width);
    const auto x = Random(size_t(batch) * dim * seqlen, -2, 2, rng), w = Random(size_t(dim) * width, -1, 1, rng);
    const auto bias = Random(dim, -1, 1, rng);
    std::vector<float> out(x.size());
    for (int row = 0; row < batch * dim; ++row) {
      for (int t = 0; t < seqlen; ++t) {
        float acc = bias[row % dim];
        for (int k = 0; k < width; ++k) {
          const int source = t - (width - 1) + k;
          if (source >= 0) acc += w[(row % dim) * width + k] * x[size_t(row) * seqlen + source];
        }
        out[size_t(row) * seqlen + t] = Silu(acc);
      }
    }
    DeviceArray dx(x, DType::kFloat32), dw(w, DType::kFloat32), dbias(bias, DType::kFloat32);
    DeviceArray dout(std::vector<float>(x.size()), DType::kFloat32);
    ConvLaunch p;
    p.batch = batch, p.dim = dim, p.seqlen = seqlen, p.width = width, p.dtype = DType::kFloat32;
    p.x = dx.get(), p.x_stride = {int64_t(dim) * seqlen, seqlen}, p.weight = dw.floats(), p.bias = dbias.floats();
    p.silu = true, p.out = dout.get(), p.out_stride = {int64_t(dim) * seqlen, seqlen};
    ASSERT_EQ(LaunchCausalConv1d(p, nullptr), nullptr);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    ExpectNear(dout.Download(), out, DType::kFloat32, "conv width=" + std::to_string(width));

    // Token by token from a zero window reproduces the prefill.
    DeviceArray window(std::vector<float>(size_t(batch) * dim * width, 0.0f), DType::kFloat32);
    std::vector<float> stepped(x.size());
    for (int t = 0; t < seqlen; ++t) {
      std::vector<float> xt(batch * dim);
      for (int row = 0; row < batch * dim; ++row) xt[row] = x[size_t(row) * seqlen + t];
      DeviceArray dxt(xt, DType::kFloat32), dyt(std::vector<float>(batch * dim), DType::kFloat32);
      ConvUpdateLaunch u;
      u.batch = batch, u.dim = dim, u.width = width, u.dtype = DType::kFloat32, u.conv_state = window.get();
      u.state_stride[0] = int64_t(dim) * width, u.state_stride[1] = width, u.state_stride[2] = 1;
      u.x = dxt.get(), u.x_stride = {dim, 1}, u.weight = dw.floats(), u.bias = dbias.floats(), u.silu = true;
      u.out = dyt.get();
      ASSERT_EQ(LaunchCausalConv1dUpdate(u, nullptr), nullptr);
      const auto yt = dyt.Download();
      for (int row = 0; row < batch * dim; ++row) stepped[size_t(row) * seqlen + t] = yt[row];
    }
    ExpectNear(stepped, out, DType::kFloat32, "conv update width=" + std::to_string(width));
  }
}

// Argument checks happen before any CUDA call, so these run without a GPU.
TEST(CudaRawLaunch, RejectsOutOfRangeArguments) {
  ScanLaunch scan;
  scan.batch = 1, scan.dim = 1, scan.seqlen = 1, scan.dstate = kMaxScanState + 1;
  ASSERT_NE(LaunchSelectiveScan(scan, nullptr), nullptr);
  EXPECT_NE(std::string(LaunchSelectiveScan(scan, nullptr)).find("dstate"), std::string::npos);
  scan.dstate = 0;
  EXPECT_NE(LaunchSelectiveScan(scan, nullptr), nullptr);
  ConvLaunch conv;
  conv.batch = 1, conv.dim = 1, conv.seqlen = 1, conv.width = kMaxConvWidth + 1;
  EXPECT_NE(LaunchCausalConv1d(conv, nullptr), nullptr);
  StateUpdateLaunch update;
  update.batch = 1, update.dim = 1, update.dstate = 0;
  EXPECT_NE(LaunchSelectiveStateUpdate(update, nullptr), nullptr);
  ConvUpdateLaunch conv_update;
  conv_update.batch = -1, conv_update.dim = 1, conv_update.width = 4;
  EXPECT_NE(LaunchCausalConv1dUpdate(conv_update, nullptr), nullptr);
}

}  // namespace
}  // namespace thalamus::kernels::cuda
