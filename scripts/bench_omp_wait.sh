#!/usr/bin/env bash
# The native target's decode speed on the kernels' own thread pool and on OpenMP's threads, on a
# quiet machine and with one core kept busy by another process (more threads than free cores).
#
#   scripts/bench_omp_wait.sh --model runs/quickstart-smollm2/target [--threads 2] [--runs 3]
#                             [--max-new 64] [--quant int8]
#
# Each setting runs `augur generate` (greedy, the same chat prompt) --runs times and prints the
# median decode tokens/s. Settings: the pool (the default), OpenMP threads
# (AUGUR_KERNEL_THREADS=openmp) with libgomp's default wait policy and with OMP_WAIT_POLICY=passive,
# and one thread.
set -euo pipefail
cd "$(dirname "$0")/.."
AUGUR=${AUGUR:-build/bin/augur}
MODEL="" THREADS=2 RUNS=3 MAX_NEW=64 QUANT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --model) MODEL=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --max-new) MAX_NEW=$2; shift 2 ;;
    --quant) QUANT=$2; shift 2 ;;
    -h|--help) sed -n 2,10p "$0"; exit 0 ;;
    *) echo "bench_omp_wait: unknown flag $1" >&2; exit 2 ;;
  esac
done
[ -n "$MODEL" ] || { echo "bench_omp_wait: --model DIR is required" >&2; exit 2; }
quant_flag=()
[ -n "$QUANT" ] && quant_flag=(--quant "$QUANT")

decode_rate() {  # env... -> median decode tokens/s over RUNS runs
  local rates=()
  for _ in $(seq "$RUNS"); do
    local line
    line=$(env "$@" "$AUGUR" generate --model "$MODEL" --chat "Write a Python function that reverses a string." \
      --max-new "$MAX_NEW" --temperature 0 --ignore-eos --only-new --threads "${T:-$THREADS}" "${quant_flag[@]}" \
      2>&1 >/dev/null | grep 'augur generate:')
    rates+=("$(sed -E 's/.*decode ([0-9.]+) tokens\/s.*/\1/' <<<"$line")")
  done
  printf '%s\n' "${rates[@]}" | sort -g | sed -n "$(( (RUNS + 1) / 2 ))p"
}

hog_pid=""
start_hog() { ( while :; do :; done ) & hog_pid=$!; }
stop_hog() { [ -n "$hog_pid" ] && kill "$hog_pid" 2>/dev/null; wait "$hog_pid" 2>/dev/null || true; hog_pid=""; }
trap stop_hog EXIT

echo "bench_omp_wait: $(nproc) cores, $MODEL ${QUANT:-fp32}, $MAX_NEW new tokens, median of $RUNS; $(date -u +%F)"
printf '%-34s %12s %12s\n' "setting" "quiet" "1 core busy"
for setting in "kernel pool" "openmp" "openmp, passive" "1 thread"; do
  envs=(X=1)
  T=$THREADS
  case "$setting" in
    "openmp") envs=(AUGUR_KERNEL_THREADS=openmp) ;;
    "openmp, passive") envs=(AUGUR_KERNEL_THREADS=openmp OMP_WAIT_POLICY=passive) ;;
    "1 thread") T=1 ;;
  esac
  quiet=$(T=$T decode_rate "${envs[@]}")
  start_hog
  busy=$(T=$T decode_rate "${envs[@]}")
  stop_hog
  printf '%-34s %12s %12s\n' "$setting (t$T)" "$quiet" "$busy"
done
