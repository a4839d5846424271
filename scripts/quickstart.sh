#!/usr/bin/env bash
# The main job on the embedded default corpus (the machine's Python standard library):
# set up, build, train a tokenizer, build the token store, train the target-s model,
# generate from it, make teacher data, distill an AR and a NAT drafter from it, quantize the
# AR drafter to int4, build an n-gram datastore, and evaluate every drafter (alone and all
# together as a token tree) against the target with `augur eval`, ending with a report
# (report.json, report.md, PNG plots) in $RUN_DIR/report.
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
TEACHER_PROMPTS=${TEACHER_PROMPTS:-400}   # target continuations for distillation (32 + 96 tokens)
DISTILL_STEPS=${DISTILL_STEPS:-400}       # optimizer steps per drafter (16 x 128 tokens each)
mkdir -p "$RUN"

STAGES=(tokenizer store target generate teacher drafter_ar drafter_nat quantize datastore eval)

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

stage_teacher() {
  [ -f "$RUN/teacher.h5" ] && return 0
  echo "== teacher data (target continuations of train-split windows, top-32 log-probs)"
  local resume=""
  [ -d "$RUN/teacher.h5.parts" ] && resume="--resume"
  $AUGUR distill gen --target "$RUN/target" --prompts "$RUN/corpus.h5" --split train --out "$RUN/teacher.h5" \
    --num-prompts "$TEACHER_PROMPTS" --prompt-len 32 --max-new 96 --mode sample --temperature 0.8 --top-k 32 \
    --batch 16 $resume
}

# Drafters start from 2 of the target's 6 layers (embeddings, head and layers 0 and 5): on
# this target that is what distils into the best acceptance per unit of drafting cost
# (docs/RESULTS.md).
distill_stage() {  # distill_stage ar|nat OUT FLAGS...
  local kind=$1 out=$2; shift 2
  [ -f "$out/.quickstart-done" ] && return 0
  echo "== distill $kind drafter -> $out"
  local resume=""
  [ -f "$out/trainer_state.json" ] && resume="--resume"
  $AUGUR distill "$kind" --target "$RUN/target" --teacher "$RUN/teacher.h5" --student target --init target \
    --init-layers 0,5 --steps "$DISTILL_STEPS" --batch 16 --seq-len 128 --lr 2e-3 --warmup 50 --eval-every 100 \
    --out "$out" "$@" $resume
  touch "$out/.quickstart-done"
}
stage_drafter_ar() { distill_stage ar "$RUN/drafter-ar" --loss fkl; }
stage_drafter_nat() { distill_stage nat "$RUN/drafter-nat" --gamma 4; }

# The AR drafter's best checkpoint quantized (weight-only int4, groups of 128, head included;
# docs/RESULTS.md "Quantized drafters"): a quarter of the bytes, run by the native engine's
# int4 kernels. QUANT_FLAGS changes the scheme, e.g. "--scheme int8".
stage_quantize() {
  local src="$RUN/drafter-ar/best" out="$RUN/drafter-ar-int4"
  [ -f "$out/augur.json" ] && return 0
  [ -f "$src/augur.json" ] || src="$RUN/drafter-ar"
  echo "== quantize the AR drafter -> $out"
  # shellcheck disable=SC2086
  $AUGUR quantize --model "$src" ${QUANT_FLAGS:---scheme int4 --group 128 --keep-head no} --out "$out"
}

stage_datastore() {
  [ -f "$RUN/datastore.h5" ] && return 0
  echo "== n-gram datastore (retrieval drafter) over the train split"
  $AUGUR data datastore --store "$RUN/corpus.h5" --out "$RUN/datastore.h5"
}

# The drafters to evaluate: prompt lookup always; every finished drafter checkpoint in the
# run directory ($RUN/drafter-*/ with a config.json), as ar: or nat: by its augur.json kind;
# the n-gram datastore when built.
# With "fp32", quantized drafters are left out (the tree takes each model drafter once).
eval_drafters_single() {
  echo "prompt-lookup"
  [ -f "$RUN/datastore.h5" ] && echo "ngram:$RUN/datastore.h5"
  local d kind
  for d in "$RUN"/drafter-*/; do
    [ -f "$d/config.json" ] || continue
    [ "${1:-}" = fp32 ] && grep -q '"quantization"' "$d/augur.json" 2>/dev/null && continue
    d=${d%/}
    kind="ar"
    grep -q '"nat-drafter"' "$d/augur.json" 2>/dev/null && kind=nat
    echo "$kind:$d"
  done
}

# Each drafter alone, then all of them at once as one token tree (A+B+...).
eval_drafters() {
  eval_drafters_single
  [ "$(eval_drafters_single fp32 | wc -l)" -gt 1 ] && eval_drafters_single fp32 | paste -sd+
  return 0
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
