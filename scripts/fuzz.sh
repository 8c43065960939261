#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/ with clang, AddressSanitizer and
# UndefinedBehaviorSanitizer (build-fuzz/), and runs each for
# THALAMUS_FUZZ_SECONDS (default 60) over its seed corpus, as CTest tests
# labelled fuzz. Any crash, sanitizer report, leak or timeout fails the run and
# leaves the input as build-fuzz/crash-<target>-*; make it a
# regression test. scripts/test.sh runs this after the other tests.
source "$(dirname "$0")/common.sh"
install_packages
FUZZ_DIR=${FUZZ_DIR:-$THALAMUS_ROOT/build-fuzz}
seconds=${THALAMUS_FUZZ_SECONDS:-60}
launcher=()
if command -v ccache > /dev/null; then
  export CCACHE_BASEDIR="$THALAMUS_ROOT" CCACHE_NOHASHDIR=1
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S "$THALAMUS_ROOT" -B "$FUZZ_DIR" -DTHALAMUS_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ \
  -DTHALAMUS_FUZZ_SECONDS="$seconds" "${launcher[@]}" >&2
cmake --build "$FUZZ_DIR" -j"$(nproc)" >&2
cd "$FUZZ_DIR"
ctest --output-on-failure -L fuzz -j"$(nproc)"
