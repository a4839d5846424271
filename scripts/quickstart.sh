#!/usr/bin/env bash
# The main job on the embedded default corpus (the machine's Python standard library):
# set up, build, train a tokenizer, build the token store, train the target-s model,
# generate from it, and evaluate drafters against it with `augur eval`, ending with a
# report (report.json, report.md, PNG plots) in $RUN_DIR/report.
#
#   scripts/quickstart.sh            # full run (~30 min of target training on 2 cores)
#   STEPS=200 scripts/quickstart.sh  # a quick smoke run
#
# Stages run in the order of STAGES; each one that finishes leaves a marker, so a rerun
# skips it (a killed training resumes from its last checkpoint). Adding a stage = a
# stage_<name> function + its name in STAGES.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
AUGUR_BUILD_TARGET=augur scripts/build.sh
AUGUR=build/bin/augur
PY=.venv/bin/python
RUN=${RUN_DIR:-runs/quickstart}
STEPS=${STEPS:-1600}
EVAL_PROMPTS=${EVAL_PROMPTS:-8}
EVAL_MAX_NEW=${EVAL_MAX_NEW:-128}
mkdir -p "$RUN"

STAGES=(tokenizer store target generate eval)

stage_tokenizer() {
  [ -f "$RUN/tokenizer/tokenizer.model" ] && return 0
  echo "== tokenizer (SentencePiece BPE on the default corpus)"
  $AUGUR data tokenizer --vocab-size 4096 --out "$RUN/tokenizer"
}

stage_store() {
  [ -f "$RUN/corpus.h5" ] && return 0
  echo "== token store"
  $AUGUR data build --tokenizer "$RUN/tokenizer" --out "$RUN/corpus.h5"
}

stage_target() {
  [ -f "$RUN/target/.quickstart-done" ] && return 0
  echo "== train the target (target-s, $STEPS steps)"
  local resume=""
  [ -f "$RUN/target/trainer_state.json" ] && resume="--resume"
  $AUGUR train --data "$RUN/corpus.h5" --config target-s --out "$RUN/target" --steps "$STEPS" \
    --batch 16 --seq-len 256 --lr 1e-3 --warmup 100 --eval-every 200 --save-every 200 $resume
  touch "$RUN/target/.quickstart-done"
}

stage_generate() {
  echo "== generate"
  $AUGUR generate --model "$RUN/target" --prompt $'class Parser:\n    def __init__(self, ' \
    --max-new 120 --temperature 0.7 --seed 1
}

# The drafters to evaluate: prompt lookup always; every finished drafter checkpoint in the
# run directory ($RUN/drafter-*/ with a config.json), as ar: or nat: by its augur.json kind
# (nat: only once this build has the NAT drafter).
eval_drafters() {
  echo "prompt-lookup"
  local d kind
  for d in "$RUN"/drafter-*/; do
    [ -f "$d/config.json" ] || continue
    d=${d%/}
    kind="ar"
    grep -q '"nat-drafter"' "$d/augur.json" 2>/dev/null && kind=nat
    if [ "$kind" = nat ] && $AUGUR eval --help | grep -q 'nat:DIR.*not available'; then continue; fi
    echo "$kind:$d"
  done
}

stage_eval() {
  local specs marker="$RUN/report/.quickstart-done"
  specs=$(eval_drafters)
  # Rerun when the set of drafters changed (a later stage added one).
  if [ -f "$marker" ] && [ "$(cat "$marker")" = "$specs" ]; then
    echo "== eval: done (report in $RUN/report)"
    return 0
  fi
  echo "== eval: $(echo "$specs" | tr '\n' ' ')"
  local args=()
  while read -r s; do args+=(--drafter "$s"); done <<< "$specs"
  $AUGUR eval --target "$RUN/target" "${args[@]}" --prompts "$RUN/corpus.h5" --split valid \
    --num-prompts "$EVAL_PROMPTS" --prompt-len 64 --max-new "$EVAL_MAX_NEW" --gamma 4 --temperature 0 \
    --check --report "$RUN/report"
  $PY scripts/plot_report.py "$RUN/report"
  echo "$specs" > "$marker"
}

for s in "${STAGES[@]}"; do "stage_$s"; done
echo "quickstart: done; artifacts in $RUN, evaluation report in $RUN/report/report.md"
