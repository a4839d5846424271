#!/usr/bin/env bash
# Peers side by side (issue 11): augur against llama.cpp and transformers on the quickstart's
# target, drafters and held-out prompts, same tokens, lengths and threads, greedy. Sets up
# (scripts/setup.sh), builds augur (unless --augur PATH) and llama.cpp (scripts/build_llamacpp.sh,
# unless --skip-build), then runs scripts/bench_peers.py, which prints one table and writes
# peers.json and peers.md (docs/PERF.md, "Peers").
#
#   scripts/quickstart.sh                                  # once: the target, drafters, prompts
#   scripts/bench_peers.sh                                 # the full benchmark
#   scripts/bench_peers.sh --prompts-limit 2 --max-new 16  # smoke run
#   scripts/bench_peers.sh --help                          # every option
set -euo pipefail
cd "$(dirname "$0")/.."
skip_build=0 augur_given=0
for a in "$@"; do
  case "$a" in
    --skip-build) skip_build=1 ;;
    --augur|--augur=*) augur_given=1 ;;
    -h|--help) exec .venv/bin/python scripts/bench_peers.py --help ;;
  esac
done
scripts/setup.sh
if [ "$skip_build" = 0 ]; then
  [ "$augur_given" = 1 ] || AUGUR_BUILD_TARGET=augur scripts/build.sh
  scripts/build_llamacpp.sh
fi
exec .venv/bin/python scripts/bench_peers.py "$@"
