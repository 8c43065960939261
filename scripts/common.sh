# Shared by scripts/run.sh and scripts/test.sh: install what Thalamus needs on
# Debian 12 and build it. Sourced, not run.
set -euo pipefail

THALAMUS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$THALAMUS_ROOT/build}

DEBIAN_PACKAGES=(
  build-essential cmake pkg-config git python3 python3-venv curl
  libzmq3-dev cppzmq-dev libflatbuffers-dev flatbuffers-compiler
  libboost-dev libboost-system-dev libboost-program-options-dev
  prometheus-cpp-dev libyaml-cpp-dev nlohmann-json3-dev libicu-dev
  libtorch-dev libopenblas0-pthread libfaiss-dev libomp-dev
  libgtest-dev libgmock-dev libbenchmark-dev libjemalloc-dev ccache
  clang libclang-rt-14-dev iproute2 libsodium-dev prometheus python3-yaml
)

install_packages() {
  local missing=()
  for package in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  # kubectl (deploy/kubernetes is rendered with its kustomize): Debian's, unless
  # one is installed already (the kubectl package of Kubernetes' own repository
  # holds the same file, so the two cannot both be installed).
  command -v kubectl > /dev/null || missing+=(kubernetes-client)
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "Installing: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

build_thalamus() {
  # CUDA kernels are compiled when the toolkit is there (it is not a Debian package).
  [ -d /usr/local/cuda/bin ] && export PATH="$PATH:/usr/local/cuda/bin"
  # ccache keeps compiled files between builds, also across clones in other
  # folders (paths are hashed relative to the repository root).
  local launcher=()
  if command -v ccache > /dev/null; then
    export CCACHE_BASEDIR="$THALAMUS_ROOT" CCACHE_NOHASHDIR=1
    launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
  fi
  cmake -S "$THALAMUS_ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" "$@" >&2
  cmake --build "$BUILD_DIR" -j"$(nproc)" >&2
}
