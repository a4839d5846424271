#!/usr/bin/env bash
# Builds the libFuzzer harnesses (tests/fuzz/: every reader of a file users download, compiled
# with clang -fsanitize=fuzzer,address,undefined) into build-fuzz/ and runs each for SECONDS
# (default 60), one after another, starting from the seed corpus tests/fuzz/corpus/<target>/.
#   scripts/fuzz.sh [SECONDS] [TARGET...]   targets: safetensors gguf tokenizer_json bpe_encode
#                                           chat_template config_json prompts_jsonl token_store
#                                           teacher_store (default: all)
#   scripts/fuzz.sh --seeds                 rewrite the seed corpora with augur's writers
# Each run keeps its growing corpus in build-fuzz/corpus/<target>/ (reused by the next run) and
# writes what it finds to build-fuzz/findings/<target>/ (crash-*, leak-*, oom-*, timeout-*).
# A finding becomes a unit test: copy the input to tests/fuzz/regress/<target>/ and name the
# error it must give in tests/fuzz_regress_test.cc. The summary (executions, time, findings per
# target) is printed and written to build-fuzz/fuzz-report.md; docs/RELIABILITY.md records it.
# Environment: AUGUR_FUZZ_NICE (default 15), AUGUR_FUZZ_RSS_MB (default 2048), AUGUR_FUZZ_ARGS
# (extra libFuzzer flags), AUGUR_SMOLLM2_GGUF (bpe_encode's vocabulary).
set -euo pipefail
cd "$(dirname "$0")/.."

ALL=(safetensors gguf tokenizer_json bpe_encode chat_template config_json prompts_jsonl token_store teacher_store)
SECONDS_EACH=60
SEEDS=0
targets=()
for a in "$@"; do
  case "$a" in
    --seeds) SEEDS=1 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    ''|*[!0-9]*)
      if [[ " ${ALL[*]} " == *" $a "* ]]; then targets+=("$a")
      else echo "fuzz.sh: unknown target or option '$a' (targets: ${ALL[*]})" >&2; exit 2; fi ;;
    *) SECONDS_EACH=$a ;;
  esac
done
((${#targets[@]})) || targets=("${ALL[@]}")

for tool in clang-14 clang++-14; do
  command -v "$tool" >/dev/null || { echo "fuzz.sh: $tool not found; run scripts/setup.sh (Debian clang-14, libclang-rt-14-dev)" >&2; exit 1; }
done
[ -e "$(clang-14 -print-resource-dir)/lib/linux/libclang_rt.fuzzer-x86_64.a" ] ||
  { echo "fuzz.sh: libFuzzer runtime missing; run scripts/setup.sh (libclang-rt-14-dev)" >&2; exit 1; }

export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
if [ ! -f build-fuzz/build.ninja ]; then
  CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Release -DAUGUR_FUZZ=ON >/dev/null
fi
cmake --build build-fuzz -j"${AUGUR_JOBS:-$(nproc)}"

if ((SEEDS)); then
  build-fuzz/bin/fuzz_seeds tests/fuzz
  exit 0
fi

# Inputs go to a file per harness (the readers open paths): a tmpfs when there is one.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
report=build-fuzz/fuzz-report.md
{
  echo "| harness | seconds | executions | exec/s | corpus | findings |"
  echo "|---|---:|---:|---:|---:|---|"
} > "$report"
status=0
for t in "${targets[@]}"; do
  work=build-fuzz/corpus/$t
  found=build-fuzz/findings/$t
  mkdir -p "$work" "$found"
  log=build-fuzz/fuzz-$t.log
  echo "fuzz: $t for ${SECONDS_EACH}s (log $log)"
  start=$(date +%s)
  rc=0
  # shellcheck disable=SC2086
  nice -n "${AUGUR_FUZZ_NICE:-15}" "build-fuzz/bin/${t}_fuzz" -max_total_time="$SECONDS_EACH" \
    -rss_limit_mb="${AUGUR_FUZZ_RSS_MB:-2048}" -malloc_limit_mb="${AUGUR_FUZZ_RSS_MB:-2048}" -timeout=20 \
    -max_len=131072 -print_final_stats=1 -artifact_prefix="$found/" ${AUGUR_FUZZ_ARGS:-} \
    "$work" "tests/fuzz/corpus/$t" > "$log" 2>&1 || rc=$?
  wall=$(( $(date +%s) - start ))
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  execs=${execs:-0}
  rate=$(( wall > 0 ? execs / wall : 0 ))
  corpus=$(find "$work" -type f | wc -l)
  n_found=$(find "$found" -type f | wc -l)
  what="none"
  if ((rc != 0 || n_found > 0)); then
    what="$n_found file(s) in $found (exit $rc): $(grep -m1 -E 'ERROR: |fuzz: property|runtime error|internal check' "$log" | cut -c1-160)"
    status=1
  fi
  printf '| %s | %d | %d | %d | %d | %s |\n' "$t" "$wall" "$execs" "$rate" "$corpus" "$what" >> "$report"
  echo "fuzz: $t: $execs executions in ${wall}s, findings: $what"
done
echo
cat "$report"
exit $status
