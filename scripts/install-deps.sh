#!/usr/bin/env bash
# Installs verbclip's build dependencies from Debian when they are missing. Idempotent:
# a second run installs nothing. Needs root (or sudo) only when something is missing.
set -euo pipefail

PACKAGES=(
  cmake g++ make pkg-config
  libeigen3-dev      # CPU tensor kernels (GEMM via Eigen::Map)
  doctest-dev        # tests
  libcxxopts-dev     # command-line flags
  libstb-dev         # image decoding (stb_image)
  libopenblas-dev    # benchmark anchor for sgemm; optional EIGEN_USE_BLAS
  nlohmann-json3-dev # safetensors headers, label maps
  libyaml-cpp-dev    # configs
  zlib1g-dev         # the gzip BPE vocabulary, gzip-compressed Fashion-MNIST
  # Video files (.mp4/.avi/.webm) decoded on the fly, as the CLIP video repos do with decord
  # (FFmpeg underneath), and Fashion-Motion written as videos (make-data --format mp4)
  libavformat-dev libavcodec-dev libswscale-dev libavutil-dev
  dataset-fashion-mnist # the built-in dataset's source images (/usr/share/datasets/fashion-mnist)
  libopenmpi-dev openmpi-bin # data-parallel training: `mpirun -np N verbclip train` (VERBCLIP_MPI)
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
