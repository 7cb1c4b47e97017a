#!/usr/bin/env bash
# Installs every Debian 12 package peakknn needs to build, test, benchmark and
# run. Idempotent; run as root (or with sudo). The CUDA toolkit is not a Debian
# package: it is used from /usr/local/cuda when present.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git clang-format
  clang-14 libclang-rt-14-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev prometheus-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libfaiss-dev libhnswlib-dev libopenblas-dev
  libisal-dev zlib1g-dev
  nats-server libnats-dev
  prometheus curl
  python3 python3-grpcio python3-grpc-tools python3-protobuf python3-numpy python3-matplotlib
  python3-yaml
  python3-venv python3-pip python3-setuptools python3-pytest python3-tqdm openssl
  dataset-fashion-mnist
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "install-deps: all ${#packages[@]} packages present"
