#!/usr/bin/env bash
# Installs the Debian packages pcmsim needs, or, when not root, prints the exact apt-get line.
# Usage: scripts/install-deps.sh [build|test|train]
#   build: compile and run (the default); test (and train): + Python, notebook and PyTorch tools
#   and the Debian build backend of `pip install .` (docs/python-package.md).
set -euo pipefail
level="${1:-build}"
packages=(g++ make cmake pkg-config libeigen3-dev libhdf5-dev libboost-program-options-dev
          libgtest-dev libbenchmark-dev pybind11-dev python3-dev python3-numpy
          libopenmpi-dev openmpi-bin zlib1g-dev dataset-fashion-mnist ccache
          libsuitesparse-dev libonnx-dev libprotobuf-dev libopenblas-dev)
if [[ "$level" == test || "$level" == train ]]; then
  packages+=(python3-pytest python3-h5py python3-matplotlib jupyter-nbconvert python3-ipykernel
             python3-nbformat python3-torch python3-onnx python3-pip python3-setuptools
             python3-wheel python3-venv ngspice)
fi
missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [[ $(id -u) -ne 0 ]]; then
  echo "pcmsim needs these Debian packages. As root, run:" >&2
  echo "  apt-get update && $cmd" >&2
  exit 1
fi
echo "Installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
$cmd
