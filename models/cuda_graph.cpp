// CudaGraph over at::cuda::CUDAGraph (THALAMUS_MODELS_TORCH_CUDA), or the
// build-without-CUDA answer.
#include "models/cuda_graph.h"

#include <stdexcept>

#ifdef THALAMUS_MODELS_TORCH_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace thalamus::models {

#ifdef THALAMUS_MODELS_TORCH_CUDA

struct CudaGraph::Impl {
  explicit Impl(torch::Device device)
      : device(device), capture_stream(c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device.index())) {}

  // Runs `work` on capture_stream, ordered after the current stream's queued work.
  template <typename Work>
  void OnCaptureStream(Work&& work) {
    const c10::cuda::CUDAGuard device_guard(device);
    at::cuda::CUDAEvent queued;
    queued.record(c10::cuda::getCurrentCUDAStream());
    queued.block(capture_stream);
    const c10::cuda::CUDAStreamGuard stream_guard(capture_stream);
    work();
  }

  torch::Device device;
  c10::cuda::CUDAStream capture_stream;
  at::cuda::CUDAGraph graph;
  torch::Tensor output;
  bool captured = false;
};

bool CudaGraphsBuilt() { return true; }

CudaGraph::CudaGraph(torch::Device device) {
  if (!device.is_cuda()) throw std::invalid_argument("CudaGraph: not a CUDA device: " + device.str());
  impl_ = std::make_unique<Impl>(device);
}

CudaGraph::~CudaGraph() = default;

torch::Tensor CudaGraph::WarmUp(const std::function<torch::Tensor()>& work) {
  torch::Tensor result;
  impl_->OnCaptureStream([&] {
    result = work();
    // Once per graph: later users of `result` on any stream then need no event.
    impl_->capture_stream.synchronize();
  });
  return result;
}

void CudaGraph::Capture(const std::function<torch::Tensor()>& work) {
  if (impl_->captured) throw std::logic_error("CudaGraph: already captured");
  impl_->OnCaptureStream([&] {
    // Thread-local mode: other threads (the expert's I/O) may keep using CUDA meanwhile.
    impl_->graph.capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
    try {
      impl_->output = work();
    } catch (...) {
      try {
        impl_->graph.capture_end();
      } catch (...) {
      }
      throw;
    }
    impl_->graph.capture_end();
  });
  impl_->captured = true;
}

bool CudaGraph::captured() const { return impl_->captured; }

const torch::Tensor& CudaGraph::Replay() {
  if (!impl_->captured) throw std::logic_error("CudaGraph: Replay before Capture");
  const c10::cuda::CUDAGuard device_guard(impl_->device);
  impl_->graph.replay();
  return impl_->output;
}

#else  // LibTorch without CUDA

struct CudaGraph::Impl {};

bool CudaGraphsBuilt() { return false; }

CudaGraph::CudaGraph(torch::Device device) { throw std::logic_error("CudaGraph: this build's LibTorch has no CUDA"); }

CudaGraph::~CudaGraph() = default;

torch::Tensor CudaGraph::WarmUp(const std::function<torch::Tensor()>&) {
  throw std::logic_error("CudaGraph: this build's LibTorch has no CUDA");
}

void CudaGraph::Capture(const std::function<torch::Tensor()>&) {
  throw std::logic_error("CudaGraph: this build's LibTorch has no CUDA");
}

bool CudaGraph::captured() const { return false; }

const torch::Tensor& CudaGraph::Replay() { throw std::logic_error("CudaGraph: this build's LibTorch has no CUDA"); }

#endif

}  // namespace thalamus::models
