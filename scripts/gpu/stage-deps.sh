#!/usr/bin/env bash
# Run here (Debian 12 with the packages of scripts/common.sh): copies what
# kernels/ and models/ need beyond CUDA and a pip LibTorch — nlohmann_json and
# ICU headers and libraries, GoogleTest and Google Benchmark — into .gpu-deps/ (git-ignored), a
# prefix to carry to a GPU machine that has no Debian packages. x86-64 only;
# Debian's libraries run on newer glibc systems.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
out="$repo/.gpu-deps/usr"
arch=x86_64-linux-gnu
rm -rf "$repo/.gpu-deps"
mkdir -p "$out/include" "$out/lib/$arch/cmake" "$out/share/cmake"

for dir in nlohmann unicode gtest gmock benchmark; do cp -r "/usr/include/$dir" "$out/include/"; done
cp -r /usr/share/cmake/nlohmann_json "$out/share/cmake/"
cp -r "/usr/lib/$arch/cmake/GTest" "/usr/lib/$arch/cmake/benchmark" "$out/lib/$arch/cmake/"
cp "/usr/lib/$arch/"lib{gtest,gtest_main,gmock,gmock_main}.a "$out/lib/$arch/"
# Real files under the names the link and the loader ask for; relative links for ICU's big data file.
cp -L "/usr/lib/$arch/libbenchmark.so.1.7.1" "$out/lib/$arch/"
cp "/usr/lib/$arch/libbenchmark_main.a" "$out/lib/$arch/"
(cd "$out/lib/$arch" && ln -sf libbenchmark.so.1.7.1 libbenchmark.so.1debian && ln -sf libbenchmark.so.1debian libbenchmark.so)
for lib in icuuc icudata; do
  real=$(readlink -f "/usr/lib/$arch/lib$lib.so")
  cp "$real" "$out/lib/$arch/"
  major=$(echo "${real##*.so.}" | cut -d. -f1)
  (cd "$out/lib/$arch" && ln -sf "$(basename "$real")" "lib$lib.so.$major" && ln -sf "$(basename "$real")" "lib$lib.so")
done

du -sh "$repo/.gpu-deps"
