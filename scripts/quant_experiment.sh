#!/usr/bin/env bash
# Issue 5's results: does a quantized drafter stay as accurate and get faster? For an AR and a
# NAT drafter: fp32, int8 RTN, int4 RTN g32 and g128 (each also with the head in int4), int4
# GPTQ g32 (calibration from the corpus) and int4-g32 QAT (a short `augur distill ar|nat
# --qat int4-g32` continued from the fp32 drafter at a lower lr). Per variant: file size,
# held-out alpha on the teacher store (`augur distill ar|nat --eval-only`, the held-out
# sequences the drafters were trained without), tau and end-to-end speedup from one `augur
# eval` per drafter (greedy, gamma 4, held-out corpus prompts, --check; every variant on the
# native CPU engine, fp32 also on LibTorch), the drafter's wall time per round in that eval,
# and the draft step of bench/quant_draft_step (fp32 vs int8 / int4 RTN, both engines). A table
# is appended to docs/RESULTS.md with the commands, the machine and the date.
#
#   scripts/quant_experiment.sh [AR_DIR] [NAT_DIR]
#   AR_DIR=runs/exp/baseline NAT_DIR= NUM_PROMPTS=2 MAX_NEW=32 QAT_STEPS=4 CALIB_SAMPLES=8 \
#     EXP_DIR=/tmp/quant-smoke RESULTS=/tmp/quant-smoke/RESULTS.md scripts/quant_experiment.sh  # smoke run
#
# An empty AR_DIR or NAT_DIR (or one that does not exist) skips that drafter with a note.
# Rerunnable: quantized checkpoints, QAT runs (resumed), alpha files and eval reports that
# exist are kept; FORCE=1 remeasures alpha, eval and latency (the checkpoints stay).
# VARIANTS_ONLY=1 makes the quantized and QAT checkpoints and stops; ALPHA_ONLY=1 also
# measures the held-out alpha: the timings of a later run are then taken on a machine that
# is not busy quantizing and training.
set -euo pipefail
cd "$(dirname "$0")/.."
AR_DIR=${1:-${AR_DIR-runs/exp/ar-fkl-off-init-target/best}}
NAT_DIR=${2:-${NAT_DIR-runs/exp/nat-g4-init-target/best}}
AUGUR=${AUGUR:-build/bin/augur}
BENCH=${BENCH:-build/bin/quant_draft_step}
TARGET=${TARGET:-runs/qs/target}
CORPUS=${CORPUS:-runs/qs/corpus.h5}           # eval prompts (valid split) and GPTQ calibration (train split)
TEACHER=${TEACHER:-runs/exp/teacher.h5}       # held-out alpha and QAT data
EXP=${EXP_DIR:-runs/exp/quant}
EVAL_SEQ=${EVAL_SEQ:-64}                      # held out at the end of the teacher store (as in distill_experiment.sh)
NUM_PROMPTS=${NUM_PROMPTS:-16}
PROMPT_LEN=${PROMPT_LEN:-64}
MAX_NEW=${MAX_NEW:-128}
GAMMA=${GAMMA:-4}
QAT_STEPS=${QAT_STEPS:-100}                   # B=16 x T=128 tokens each
QAT_LR=${QAT_LR:-5e-4}
CALIB_SAMPLES=${CALIB_SAMPLES:-128}           # GPTQ calibration windows of 256 tokens
THREADS=${THREADS:-1}
RESULTS=${RESULTS:-docs/RESULTS.md}
FORCE=${FORCE:-0}
VARIANTS_ONLY=${VARIANTS_ONLY:-0}
ALPHA_ONLY=${ALPHA_ONLY:-0}
mkdir -p "$EXP"
[ -x "$AUGUR" ] || AUGUR_BUILD_TARGET=augur scripts/build.sh
[ -x "$BENCH" ] || cmake --build build -j1 --target quant_draft_step
touch "$EXP/commands.txt"

run() {  # run CMD...: echo (stderr), keep the command line for the table, run
  echo "+ $*" >&2
  echo "$*" >> "$EXP/commands.txt"
  "$@"
}
resume_flag() { [ -f "$1/trainer_state.json" ] && echo --resume || true; }
meta() { python3 -c "import json,sys; print(json.load(open(sys.argv[1] + '/augur.json')).get(sys.argv[2]) or '')" "$1" "$2"; }

# variants KIND SRC: quantize / QAT the fp32 drafter SRC into $EXP/KIND/<variant>; prints nothing.
variants() {
  local kind=$1 src=$2 d=$EXP/$1
  mkdir -p "$d"
  local q=(--model "$src" --threads "$THREADS")
  [ -f "$d/int8/augur.json" ] || run "$AUGUR" quantize "${q[@]}" --scheme int8 --out "$d/int8"
  [ -f "$d/int4-g32/augur.json" ] || run "$AUGUR" quantize "${q[@]}" --scheme int4 --group 32 --out "$d/int4-g32"
  [ -f "$d/int4-g128/augur.json" ] || run "$AUGUR" quantize "${q[@]}" --scheme int4 --group 128 --out "$d/int4-g128"
  # The head (tied to the embedding in draft-xs) is most of a small drafter's weights: also int4 there.
  [ -f "$d/int4-g32-head/augur.json" ] || run "$AUGUR" quantize "${q[@]}" --scheme int4 --group 32 --keep-head no \
    --out "$d/int4-g32-head"
  [ -f "$d/int4-g128-head/augur.json" ] || run "$AUGUR" quantize "${q[@]}" --scheme int4 --group 128 --keep-head no \
    --out "$d/int4-g128-head"
  [ -f "$d/int4-g32-gptq/augur.json" ] || run "$AUGUR" quantize "${q[@]}" --scheme int4 --group 32 --method gptq \
    --calib "$CORPUS" --calib-samples "$CALIB_SAMPLES" --out "$d/int4-g32-gptq"
  # QAT: continued from the fp32 drafter; <out>/quantized is the exported int4-g32 drafter.
  local qat=$d/qat-int4-g32
  if [ ! -f "$qat/quantized/augur.json" ]; then
    local extra=()
    [ "$kind" = nat ] && extra=(--gamma "$(meta "$src" gamma)" --mask-id "$(meta "$src" mask_token_id)")
    run "$AUGUR" distill "$kind" --target "$TARGET" --teacher "$TEACHER" --student "$src" --qat int4-g32 \
      --steps "$QAT_STEPS" --lr "$QAT_LR" --warmup $((QAT_STEPS / 10 + 1)) --batch 16 --seq-len 128 \
      --eval-every $((QAT_STEPS / 4 + 1)) --save-every "$QAT_STEPS" --eval-sequences "$EVAL_SEQ" \
      --threads "$THREADS" --quiet "${extra[@]}" --out "$qat" $(resume_flag "$qat")
  fi
}

# measure KIND SRC: held-out alpha per variant, one augur eval over all variants, the decode bench.
measure() {
  local kind=$1 src=$2 d=$EXP/$1
  local names=(fp32 int8 int4-g32 int4-g128 int4-g32-head int4-g128-head int4-g32-gptq qat-int4-g32)
  local dirs=("$src" "$d/int8" "$d/int4-g32" "$d/int4-g128" "$d/int4-g32-head" "$d/int4-g128-head" "$d/int4-g32-gptq"
              "$d/qat-int4-g32/quantized")
  local extra=()
  [ "$kind" = nat ] && extra=(--gamma "$(meta "$src" gamma)" --mask-id "$(meta "$src" mask_token_id)")
  for i in "${!names[@]}"; do
    local out=$d/${names[$i]}.alpha
    if [ "$FORCE" = 1 ] || [ ! -s "$out" ]; then
      run "$AUGUR" distill "$kind" --target "$TARGET" --teacher "$TEACHER" --student "${dirs[$i]}" --eval-only \
        --seq-len 128 --eval-sequences "$EVAL_SEQ" --threads "$THREADS" "${extra[@]}" --out "$d/eval-only" > "$out.tmp"
      mv "$out.tmp" "$out"
    fi
  done
  [ "$ALPHA_ONLY" = 1 ] && return 0
  if [ "$FORCE" = 1 ] || [ ! -f "$d/report/report.json" ]; then
    local specs=()
    # Every variant on the default (native) CPU engine, and fp32 on LibTorch too for reference.
    for i in "${!names[@]}"; do specs+=(--drafter "$kind:${dirs[$i]}"); done
    specs+=(--drafter "$kind:$src,engine=torch")
    run "$AUGUR" eval --target "$TARGET" "${specs[@]}" --prompts "$CORPUS" --split valid --num-prompts "$NUM_PROMPTS" \
      --prompt-len "$PROMPT_LEN" --max-new "$MAX_NEW" --gamma "$GAMMA" --temperature 0 --threads "$THREADS" --check \
      --report "$d/report"
  fi
  if [ "$FORCE" = 1 ] || [ ! -s "$d/draft_step.json" ]; then
    # AR: one token per step; NAT: one forward of the uncached real tokens (~2) + gamma-1 mask slots.
    local rows=1
    [ "$kind" = nat ] && rows=$(($(meta "$src" gamma) + 2))
    run "$BENCH" --model "$src" --schemes int8,int4-g32,int4-g128 --engines torch,native --new "$rows" \
      --threads "$THREADS" --json "$d/draft_step.json"
  fi
  printf '%s\n' "${names[@]}" > "$d/variants.txt"
  printf '%s\n' "${dirs[@]}" > "$d/dirs.txt"
}

done_kinds=()
for kind in ar nat; do
  src=$([ "$kind" = ar ] && echo "$AR_DIR" || echo "$NAT_DIR")
  if [ -z "$src" ] || [ ! -f "$src/augur.json" ]; then
    echo "== $kind drafter '${src}' not found; skipped" | tee -a "$EXP/skipped.txt"
    continue
  fi
  echo "== $kind drafter: $src"
  variants "$kind" "$src"
  [ "$VARIANTS_ONLY" = 1 ] && continue
  measure "$kind" "$src"
  done_kinds+=("$kind:$src")
done
[ "$VARIANTS_ONLY" = 1 ] || [ "$ALPHA_ONLY" = 1 ] && { echo "quant_experiment: checkpoints (and alpha) made; no table"; exit 0; }
[ ${#done_kinds[@]} -gt 0 ] || { echo "quant_experiment: no drafter to measure" >&2; exit 1; }

# The table.
[ -f "$RESULTS" ] || printf '# Results\n\nMeasured tables, each with the commands that made it.\n' > "$RESULTS"
python3 - "$EXP" "$THREADS" "$NUM_PROMPTS" "$MAX_NEW" "$GAMMA" "$EVAL_SEQ" "$QAT_STEPS" "$QAT_LR" "${done_kinds[@]}" \
  >> "$RESULTS" <<'EOF'
import datetime, json, os, platform, subprocess, sys
exp, threads, num_prompts, max_new, gamma, eval_seq, qat_steps, qat_lr = sys.argv[1:9]
kinds = [k.split(":", 1) for k in sys.argv[9:]]

def cpu():
    try:
        for l in open("/proc/cpuinfo"):
            if l.startswith("model name"):
                return l.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"

def figures(path):  # "k v k v ..." from --eval-only
    toks = open(path).read().split()
    return {k: float(v) for k, v in zip(toks[::2], toks[1::2])}

def size(d):
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d) if f.endswith(".safetensors"))

print(f"\n## Quantized drafters ({datetime.date.today()}, {os.cpu_count()}-vCPU VM: {cpu()}, {threads} torch thread(s))\n")
print(f"scripts/quant_experiment.sh: held-out alpha = `augur distill ar|nat --eval-only` on the last {eval_seq} "
      f"sequences of the teacher store (exact expected acceptance, target online; NAT: mean over offsets). "
      f"tau / speedup / draft time = one `augur eval` per drafter over all its variants (greedy, gamma {gamma}, "
      f"{num_prompts} held-out corpus prompts x {max_new} new tokens, --check passed); draft ms/round = the "
      f"drafter's wall time per speculation round in that eval (AR: gamma one-token steps; NAT: one forward). "
      f"Every drafter runs on the native CPU engine (runtime/native_llama.h) except 'fp32-torch', the same fp32 "
      f"drafter on LibTorch; 'vs fp32' compares with fp32 on the native engine. "
      f"QAT = `--qat int4-g32`, {qat_steps} steps at lr {qat_lr} continued from the fp32 drafter, exported from "
      f"its best checkpoint. Sizes are the safetensors files; embeddings stay fp32, the head too except in the '-head' variants "
      f"(augur quantize --keep-head no).\n")
verdicts = []
for kind, src in kinds:
    d = os.path.join(exp, kind)
    names = open(os.path.join(d, "variants.txt")).read().split()
    dirs = open(os.path.join(d, "dirs.txt")).read().split("\n")
    rep = json.load(open(os.path.join(d, "report", "report.json")))
    runs = {r["label"].split(":", 1)[1]: r for r in rep["runs"]}
    check = rep.get("check", {})
    print(f"### {kind.upper()} drafter `{src}`\n")
    print(f"target-only: {rep['baseline']['summary']['tokens_per_s']:.1f} tokens/s; --check: "
          f"{'passed' if check.get('ran') and check.get('passed') else 'FAILED or not run'}\n")
    print("| variant | file MB | held-out alpha | eval alpha | tau | tau vs fp32 | speedup | draft ms/round | draft time vs fp32 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = {}
    # fp32-torch: the fp32 drafter on the LibTorch engine (same weights, so the same alpha).
    variants = [(name, path, path) for name, path in zip(names, dirs)]  # (row, checkpoint, eval spec)
    variants.append(("fp32-torch", dirs[0], dirs[0] + ",engine=torch"))
    for name, path, spec in variants:
        r = runs.get(spec)
        if r is None and name == "fp32-torch":
            continue  # a report made before the engines existed
        a = figures(os.path.join(d, ("fp32" if name == "fp32-torch" else name) + ".alpha")).get("alpha")
        s = r["summary"] if r else None
        per_round = s["draft_s"] / max(s["rounds_with_draft"], 1) * 1e3 if s else None
        rows[name] = dict(mb=size(path) / 1e6, alpha=a, eval_alpha=s and s["alpha"], tau=s and s["tau"],
                          speedup=r and r["speedup"], ms=per_round)
    base = rows["fp32"]  # the native engine, like every quantized row
    for name, v in rows.items():
        tau_rel = v["tau"] / base["tau"] if v["tau"] and base["tau"] else None
        ms_rel = v["ms"] / base["ms"] if v["ms"] and base["ms"] else None
        v["tau_rel"], v["ms_rel"] = tau_rel, ms_rel
        f = lambda x, fmt: "n/a" if x is None else fmt % x
        print(f"| {name} | {v['mb']:.2f} | {f(v['alpha'], '%.4f')} | {f(v['eval_alpha'], '%.3f')} | {f(v['tau'], '%.3f')} | "
              f"{f(tau_rel and 100 * tau_rel, '%.1f%%')} | {f(v['speedup'], '%.2fx')} | {f(v['ms'], '%.2f')} | "
              f"{f(ms_rel, '%.2fx')} |")
    step = os.path.join(d, "draft_step.json")
    if os.path.exists(step):
        print("\nDraft step (bench/quant_draft_step: AR one token, NAT one forward of gamma + 2 rows, warm cache of "
              "64 tokens, RTN weights; GPTQ and QAT run the same kernels as RTN of their scheme):\n")
        print("| variant | engine | linears MB | us/step | vs fp32 torch | vs fp32 same engine |\n|---|---|---:|---:|---:|---:|")
        for v in json.load(open(step)):
            print(f"| {v['variant']} | {v.get('engine', 'torch')} | {v['bytes'] / 1e6:.3f} | {v['us_per_step']:.1f} | "
                  f"{v.get('speedup_vs_fp32_torch', v.get('speedup_vs_fp32', 0)):.2f}x | "
                  f"{v.get('speedup_vs_fp32_same_engine', v.get('speedup_vs_fp32', 0)):.2f}x |")
    int4 = {k: v for k, v in rows.items() if k.startswith(("int4", "qat")) and v["tau_rel"] is not None}
    keep = [k for k, v in int4.items() if v["tau_rel"] >= 0.98]
    halve = [k for k, v in int4.items() if v["ms_rel"] is not None and v["ms_rel"] <= 0.5]
    both = [k for k in keep if k in halve]
    torch_ms = rows.get("fp32-torch", {}).get("ms")
    vs_torch = ""
    if torch_ms:
        best = min((v["ms"] / torch_ms for v in int4.values() if v["ms"]), default=float("nan"))
        vs_torch = (f" Against the fp32 drafter on LibTorch (the engine before the native one) the best int4 "
                    f"variant takes {best:.2f}x of its time per round.")
    verdicts.append(
        f"- {kind.upper()}: int4 variants keeping >= 98% of fp32 tau: {', '.join(keep) or 'none'}; halving the "
        f"drafter's time per round against fp32 on the same engine: {', '.join(halve) or 'none'} (best "
        f"{min((v['ms_rel'] for v in int4.values() if v['ms_rel']), default=float('nan')):.2f}x of fp32); "
        f"both: **{'yes (' + ', '.join(both) + ')' if both else 'no'}**.{vs_torch}")
    print()
print("Aim (issue 5): int4 keeps >= 98% of fp32 tau and cuts draft latency at least in half.\n")
print("\n".join(verdicts))
print("\nCommands:\n\n```")
seen = []  # every command of this and earlier runs of the script, once, in first-run order
for line in open(os.path.join(exp, "commands.txt")):
    if line.strip() and line not in seen:
        seen.append(line)
print("".join(seen).rstrip())
print("```")
EOF
tail -n 40 "$RESULTS"
