#!/usr/bin/env bash
# The main job on the embedded default corpus (the machine's Python standard library):
# set up, build, train a tokenizer, build the token store, train the target-s model, and
# generate from it. Later stages (distill, quantize, evaluate, report) join as they land.
#
#   scripts/quickstart.sh            # full run (~40 min of target training on 2 cores)
#   STEPS=200 scripts/quickstart.sh  # a quick smoke run
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
AUGUR=build/bin/augur
RUN=${RUN_DIR:-runs/quickstart}
STEPS=${STEPS:-3000}
mkdir -p "$RUN"

if [ ! -f "$RUN/tokenizer/tokenizer.model" ]; then
  echo "== 1/4 tokenizer (SentencePiece BPE on the default corpus)"
  $AUGUR data tokenizer --vocab-size 4096 --out "$RUN/tokenizer"
fi
if [ ! -f "$RUN/corpus.h5" ]; then
  echo "== 2/4 token store"
  $AUGUR data build --tokenizer "$RUN/tokenizer" --out "$RUN/corpus.h5"
fi
if [ ! -f "$RUN/target/model.safetensors" ]; then
  echo "== 3/4 train the target (target-s, $STEPS steps)"
  resume=""; [ -d "$RUN/target" ] && resume="--resume"
  $AUGUR train --data "$RUN/corpus.h5" --config target-s --out "$RUN/target" --steps "$STEPS" $resume
fi
echo "== 4/4 generate"
$AUGUR generate --model "$RUN/target" --prompt "def " --max-new 120 --temperature 0
echo "quickstart: done; artifacts in $RUN"
