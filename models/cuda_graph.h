// models/cuda_graph: a stretch of CUDA work captured once and replayed as one
// CUDA graph launch. A Mamba decode step is ~300 small kernels; launched one
// by one from LibTorch the host's launch overhead, not the GPU, sets the
// token rate (mamba_ssm replays torch.cuda graphs for the same reason).
//
// Built on at::cuda::CUDAGraph when LibTorch has CUDA; in other builds
// CudaGraphsBuilt() is false and every member throws std::logic_error.
//
// The captured work bakes in the addresses of everything it touches: it may
// only read and write tensors that outlive the graph (static inputs the
// caller refills before Replay, in-place state), plus what it allocates
// itself, which lives in the graph's private memory pool. Not thread-safe.
#pragma once

#include <functional>
#include <memory>

#include <torch/types.h>

namespace thalamus::models {

// True when this build can capture CUDA graphs (a CUDA LibTorch).
bool CudaGraphsBuilt();

class CudaGraph {
 public:
  explicit CudaGraph(torch::Device device);
  ~CudaGraph();
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;

  // Runs `work` eagerly on the stream the capture will use, after the current
  // stream's queued work, and waits for it: the warm-up a capture needs once
  // (cuBLAS handles and workspaces, lazy allocations). Returns its result.
  torch::Tensor WarmUp(const std::function<torch::Tensor()>& work);

  // Records `work` without running it; its result becomes the output that
  // each Replay refreshes. Call once, after WarmUp.
  void Capture(const std::function<torch::Tensor()>& work);
  bool captured() const;

  // Runs the captured work on the current stream. The returned tensor is
  // overwritten by the next Replay: clone it to keep it.
  const torch::Tensor& Replay();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace thalamus::models
