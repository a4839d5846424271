#!/usr/bin/env bash
# The main job on the embedded default corpus (the machine's Python standard library):
# set up, build, train a tokenizer, build the token store, train the target-s model, and
# generate from it. Later stages (distill, quantize, evaluate, report) join as they land.
#
#   scripts/quickstart.sh            # full run (~30 min of target training on 2 cores)
#   STEPS=200 scripts/quickstart.sh  # a quick smoke run
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
AUGUR_BUILD_TARGET=augur scripts/build.sh
AUGUR=build/bin/augur
RUN=${RUN_DIR:-runs/quickstart}
STEPS=${STEPS:-1600}
mkdir -p "$RUN"

if [ ! -f "$RUN/tokenizer/tokenizer.model" ]; then
  echo "== 1/4 tokenizer (SentencePiece BPE on the default corpus)"
  $AUGUR data tokenizer --vocab-size 4096 --out "$RUN/tokenizer"
fi
if [ ! -f "$RUN/corpus.h5" ]; then
  echo "== 2/4 token store"
  $AUGUR data build --tokenizer "$RUN/tokenizer" --out "$RUN/corpus.h5"
fi
# A killed run resumes from its last checkpoint; a finished one is skipped.
if [ ! -f "$RUN/target/.quickstart-done" ]; then
  echo "== 3/4 train the target (target-s, $STEPS steps)"
  resume=""; [ -f "$RUN/target/trainer_state.json" ] && resume="--resume"
  $AUGUR train --data "$RUN/corpus.h5" --config target-s --out "$RUN/target" --steps "$STEPS" \
    --batch 16 --seq-len 256 --lr 1e-3 --warmup 100 --eval-every 200 --save-every 200 $resume
  touch "$RUN/target/.quickstart-done"
fi
echo "== 4/4 generate"
$AUGUR generate --model "$RUN/target" --prompt $'class Parser:\n    def __init__(self, ' \
  --max-new 120 --temperature 0.7 --seed 1
echo "quickstart: done; artifacts in $RUN"
