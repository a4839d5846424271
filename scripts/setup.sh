#!/usr/bin/env bash
# Installs everything augur needs on a fresh Debian 12 machine, idempotently: a second run
# checks and returns in seconds.
#   - Debian packages: compilers, CMake/Ninja, ccache, Eigen, HDF5, Abseil, GoogleTest,
#     nlohmann-json, SentencePiece.
#   - .venv/: the PyPI torch wheel (LibTorch for C++, pinned to the GPU hosts' 2.11.0) and the
#     Python tools the interop tests and plots use.
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH_VERSION=2.11.0
APT_PACKAGES=(build-essential cmake ninja-build ccache pkg-config git
  libeigen3-dev libhdf5-dev libabsl-dev libgtest-dev libgmock-dev nlohmann-json3-dev
  libsentencepiece-dev sentencepiece python3-venv)
PY_PACKAGES=(transformers safetensors h5py matplotlib sentencepiece pytest numpy protobuf gguf)
STAMP=.venv/.augur-setup-ok

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY=${AUGUR_PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PY --version)"
  $PY -m venv .venv
fi
want="torch==$TORCH_VERSION ${PY_PACKAGES[*]}"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$want" ]; then
  echo "setup: installing Python packages into .venv (torch $TORCH_VERSION is a large download, once)"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q "torch==$TORCH_VERSION" "${PY_PACKAGES[@]}"
  echo "$want" > "$STAMP"
fi
.venv/bin/python -c "import torch, transformers, safetensors, h5py, sentencepiece; assert torch.__version__.startswith('$TORCH_VERSION')" \
  || { echo "setup: .venv is broken; remove it and rerun scripts/setup.sh" >&2; exit 1; }
echo "setup: ok (torch $(.venv/bin/python -c 'import torch;print(torch.__version__)'))"
