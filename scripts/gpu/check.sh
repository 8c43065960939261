#!/usr/bin/env bash
# Run on a GPU machine with CUDA (nvcc), a pip LibTorch with CUDA, CMake and a
# C++20 compiler, from the repository root, after scripts/gpu/stage-deps.sh
# has filled .gpu-deps/ (carried along). Builds kernels/ and models/ with their
# tests and benchmarks (THALAMUS_COMPUTE_ONLY) and runs, each step whatever
# the previous one gave:
#   test   every kernels/ and models/ test, CUDA ones included (ctest)
#   check  kernels_gpu_check: CUDA kernels vs the CPU reference, then bandwidth
#   bench  bench_models_cuda: Mamba-130m decode (graphs vs eager) and prefill
# Usage: scripts/gpu/check.sh [test] [check] [bench]   (default: all three)
# Logs go to $OUT (or ./gpu-out) as build.log, test.log, gpu_check.log,
# bench.log and bench.json; the last lines printed are a summary.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
out=${OUT:-$repo/gpu-out}
mkdir -p "$out"
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(test check bench)
deps="$repo/.gpu-deps/usr"
lib="$deps/lib/x86_64-linux-gnu"
export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
[ -d /usr/local/cuda/bin ] && export PATH="/usr/local/cuda/bin:$PATH"
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
summary=()

{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv
  nvcc --version | tail -1
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
  g++ --version | head -1
  nproc
} 2>&1 | tee "$out/machine.txt"

torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
generator=()
command -v ninja > /dev/null && generator=(-G Ninja)
start=$(date +%s)
if cmake -S . -B build-gpu "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DTHALAMUS_COMPUTE_ONLY=ON \
     -DTHALAMUS_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_CUDA_COMPILER="${CUDACXX:-/usr/local/cuda/bin/nvcc}" \
     -DCMAKE_PREFIX_PATH="$torch_prefix;$deps" -DICU_ROOT="$deps" \
     -DCMAKE_GTEST_DISCOVER_TESTS_DISCOVERY_MODE=PRE_TEST \
     > "$out/build.log" 2>&1 &&
   cmake --build build-gpu -j "$(nproc)" >> "$out/build.log" 2>&1; then
  summary+=("build: ok in $(( $(date +%s) - start )) s")
else
  tail -40 "$out/build.log"
  echo "build: FAILED (see build.log)"
  exit 1
fi
grep -E "^-- (kernels|models|tests|bench)" "$out/build.log"

for step in "${steps[@]}"; do
  case $step in
    test)
      # pip's libtorch.so exports unversioned copies of libstdc++'s std::filesystem
      # functions; they interpose the system's, and its remove_all jumps to address 0
      # (the tests' temp-directory cleanup). Product code does not call it.
      LD_PRELOAD="$(g++ -print-file-name=libstdc++.so.6)" \
        ctest --test-dir build-gpu --output-on-failure -j 4 > "$out/test.log" 2>&1
      summary+=("test: $(grep -E 'tests passed|tests failed' "$out/test.log" | tail -1)")
      summary+=("      CUDA tests run (not skipped): $(grep -cE 'Cuda.*Passed' "$out/test.log")")
      grep -E "Failed|\*\*\*" "$out/test.log" | head -20 ;;
    check)
      build-gpu/bin/kernels_gpu_check > "$out/gpu_check.log" 2>&1
      summary+=("check: $(tail -1 "$out/gpu_check.log")")
      grep -E "^FAIL|memcpy|scan |torch per-step|state update" "$out/gpu_check.log" ;;
    bench)
      build-gpu/bin/bench_models_cuda --benchmark_out="$out/bench.json" --benchmark_out_format=json \
        > "$out/bench.log" 2>&1
      summary+=("bench: exit $?")
      cat "$out/bench.log" ;;
    *) echo "unknown step '$step' (test, check, bench)"; exit 2 ;;
  esac
done
printf '%s\n' "${summary[@]}"
