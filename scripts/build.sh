#!/usr/bin/env bash
# Release build into build/ (binary at build/bin/augur). Extra args go to CMake, e.g.
#   scripts/build.sh -DAUGUR_CUDA=OFF
# AUGUR_BUILD_TARGET=augur builds only the binary (quickstart does; tests need everything).
set -euo pipefail
cd "$(dirname "$0")/.."
# Paths relative to the checkout, so clones and worktrees share ccache hits.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}
if [ ! -f build/build.ninja ] || [ $# -gt 0 ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
fi
target=()
[ -n "${AUGUR_BUILD_TARGET:-}" ] && target=(--target "$AUGUR_BUILD_TARGET")
cmake --build build -j"${AUGUR_JOBS:-$(nproc)}" "${target[@]}"
echo "build: ok -> build/bin/augur"
