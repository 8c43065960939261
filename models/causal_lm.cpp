#include "models/causal_lm.h"

#include <torch/cuda.h>

#include <stdexcept>

#include "kernels/kernels.h"

namespace thalamus::models {

torch::ScalarType DTypeFromName(const std::string& name) {
  if (name == "float32" || name == "fp32") return torch::kFloat32;
  if (name == "bfloat16" || name == "bf16") return torch::kBFloat16;
  throw std::invalid_argument("dtype '" + name + "' is not supported (float32 or bfloat16)");
}

torch::Device AvailableDevice(torch::Device device) {
  if (device.is_cpu()) return device;
  const std::string name = device.str();
  if (!kernels::CudaAvailable())
    throw std::invalid_argument("device '" + name + "': this build or machine has no CUDA");
  const int64_t visible = static_cast<int64_t>(torch::cuda::device_count());
  if (device.has_index() && device.index() >= visible) {
    throw std::invalid_argument("device '" + name + "': this machine has " + std::to_string(visible) + " GPU(s)");
  }
  return device;
}

torch::Device DeviceFromName(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  if (name == "cuda" || name.starts_with("cuda:")) {
    torch::Device device = torch::kCPU;
    try {
      device = torch::Device(name);
    } catch (const c10::Error&) {
      throw std::invalid_argument("device '" + name + "' is malformed (cpu, cuda or cuda:N)");
    }
    return AvailableDevice(device);
  }
  throw std::invalid_argument("device '" + name + "' is not supported (cpu, cuda or cuda:N)");
}

torch::Tensor TokenIndex(std::span<const int32_t> ids, int64_t vocab_size, const std::string& model) {
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size) {
      throw std::invalid_argument(model + ": token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                                  std::to_string(vocab_size) + ")");
    }
  }
  return torch::from_blob(const_cast<int32_t*>(ids.data()), {static_cast<int64_t>(ids.size())}, torch::kInt32)
      .to(torch::kInt64);
}

void SetComputeThreads(int n) {
  if (n < 1) throw std::invalid_argument("threads must be >= 1, got " + std::to_string(n));
  kernels::SetCpuThreads(n);
}

}  // namespace thalamus::models
