#!/usr/bin/env bash
# The README's test command: set up, build, run every test this machine allows
# (labels: unit, model, interop; gpu tests skip themselves without a GPU), then the unit label
# under the sanitizers.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
(cd build && ctest --output-on-failure -j"${AUGUR_TEST_JOBS:-2}" "$@")

# The unit label again under AddressSanitizer + UndefinedBehaviorSanitizer (+ LeakSanitizer),
# built into build-asan/ with -DAUGUR_SANITIZE=address,undefined. LibTorch and the Debian
# libraries are not instrumented; tests/lsan.supp lists the leaks inside them, each explained.
# Opt-in for now (AUGUR_SANITIZE_TESTS=1): its first full run found a heap-use-after-free in
# native_llama_test (docs/RELIABILITY.md); make it the default once the unit label is clean.
# AUGUR_NO_SANITIZE=1 skips it even when enabled (docs/DEVELOPING.md has its time).
if [ "${AUGUR_SANITIZE_TESTS:-0}" = 1 ] && [ "${AUGUR_NO_SANITIZE:-0}" != 1 ]; then
  echo "test: the unit label under -fsanitize=address,undefined (build-asan/; AUGUR_NO_SANITIZE=1 skips)"
  export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
  if [ ! -f build-asan/build.ninja ]; then
    cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Release -DAUGUR_SANITIZE=address,undefined \
      -DAUGUR_BUILD_BENCH=OFF >/dev/null
  fi
  cmake --build build-asan -j"${AUGUR_JOBS:-$(nproc)}"
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0}"
  export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
  (cd build-asan && ctest -L unit --output-on-failure -j"${AUGUR_TEST_JOBS:-2}")
fi
