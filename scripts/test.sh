#!/usr/bin/env bash
# Installs what Thalamus needs (Debian 12), builds it, and runs the whole test
# suite with CTest: unit tests in parallel, integration tests (real processes
# on loopback) one at a time; then every fuzz target for a bounded time
# (scripts/fuzz.sh; THALAMUS_FUZZ_SECONDS per target, 60 by default).
source "$(dirname "$0")/common.sh"
install_packages
source "$THALAMUS_ROOT/scripts/test_data.sh"
prepare_test_data
build_thalamus "${TEST_CMAKE_ARGS[@]}"
cd "$BUILD_DIR"
ctest --output-on-failure -j"$(nproc)" --timeout 600
bash "$THALAMUS_ROOT/scripts/fuzz.sh"
