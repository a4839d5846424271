#!/usr/bin/env bash
# The README's test command: set up, build, run every test this machine allows
# (labels: unit, model, interop; gpu tests skip themselves without a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
cd build
ctest --output-on-failure -j"${AUGUR_TEST_JOBS:-2}" "$@"
