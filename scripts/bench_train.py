#!/usr/bin/env python3
"""Training throughput: `augur train` vs the same model in PyTorch eager, in one run.

Both sides train the same model (the config.json augur resolves from --config), with the
same batch, sequence length, thread count, AdamW settings (decay on matrices only),
gradient clipping and float32 weights, on windows of the same token store. augur's
figure comes from its metrics.jsonl (per-step intervals); PyTorch's from timing its own
steps. The first --skip steps of each side are excluded (allocator and thread-pool
warm-up). With --repeat N the two sides alternate N times and the best of each is kept
(on a shared machine the best run is the least disturbed one).

  .venv/bin/python scripts/bench_train.py --data runs/qs/corpus.h5 --config target-s \
      --steps 30 --batch 8 --seq-len 256 --threads 2

Needs the project venv (torch, transformers, h5py) and a built augur (build/bin/augur).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

import h5py
import numpy as np


def run_augur(args, out_dir: str) -> tuple[float, dict]:
    cmd = [
        args.augur, "train", "--data", args.data, "--config", args.config, "--out", out_dir,
        "--steps", str(args.steps), "--batch", str(args.batch), "--seq-len", str(args.seq_len),
        "--threads", str(args.threads), "--lr", str(args.lr), "--warmup", "0",
        "--weight-decay", str(args.weight_decay), "--clip", str(args.clip),
        "--log-every", "1", "--eval-batches", "0", "--save-every", "0", "--quiet",
    ]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"bench_train: augur train failed ({proc.returncode}):\n{proc.stderr}")
    steps = []
    with open(os.path.join(out_dir, "metrics.jsonl")) as f:
        for line in f:
            rec = json.loads(line)
            if rec.get("event") == "step":
                steps.append(rec)
    timed = [s for s in steps if s["step"] > args.skip]
    if not timed:
        sys.exit("bench_train: no timed augur steps; raise --steps or lower --skip")
    tokens = sum(s["interval_steps"] for s in timed) * args.batch * args.seq_len
    seconds = sum(s["interval_s"] for s in timed)
    with open(os.path.join(out_dir, "config.json")) as f:
        config = json.load(f)
    return tokens / seconds, config


def window_batches(path: str, batch: int, seq_len: int, steps: int, seed: int):
    """Random windows of the store's train split (the speed does not depend on which)."""
    with h5py.File(path, "r") as f:
        offsets = f["doc_offsets"][:]
        train_docs = f["split/train"][:]
        # The train split as one stream, like augur's SplitStream (documents concatenated).
        spans = [(int(offsets[d]), int(offsets[d + 1])) for d in train_docs]
        total = sum(b - a for a, b in spans)
        need = min(total, (seq_len + 1) * batch * 64)
        parts, got = [], 0
        for a, b in spans:
            take = min(b - a, need - got)
            parts.append(f["tokens"][a:a + take].astype(np.int64))
            got += take
            if got >= need:
                break
    stream = np.concatenate(parts)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        starts = rng.integers(0, len(stream) - seq_len - 1, size=batch)
        yield np.stack([stream[s:s + seq_len + 1] for s in starts])


def run_torch(args, config: dict) -> float:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = LlamaConfig(**{k: v for k, v in config.items() if k not in ("architectures", "torch_dtype", "dtype")})
    model = LlamaForCausalLM._from_config(cfg, attn_implementation="sdpa", torch_dtype=torch.float32)
    model.train()
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    times, parts = [], []
    for b in window_batches(args.data, args.batch, args.seq_len, args.steps, seed=args.seed):
        t0 = time.perf_counter()
        ids = torch.from_numpy(b)
        opt.zero_grad(set_to_none=True)
        logits = model(input_ids=ids[:, :-1]).logits
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1))
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        if args.clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        t3 = time.perf_counter()
        opt.step()
        loss.item()
        t4 = time.perf_counter()
        times.append(t4 - t0)
        parts.append((t1 - t0, t2 - t1, t3 - t2, t4 - t3))
    timed = times[args.skip:]
    if args.breakdown:
        mean = [1e3 * sum(p[i] for p in parts[args.skip:]) / len(timed) for i in range(4)]
        print("pytorch step (ms): forward+loss %.1f, backward %.1f, clip %.1f, adamw %.1f, total %.1f"
              % (*mean, sum(mean)), file=sys.stderr)
    return len(timed) * args.batch * args.seq_len / sum(timed)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="token store (augur data build)")
    ap.add_argument("--config", default="target-s", help="preset or config.json, as for augur train")
    ap.add_argument("--augur", default=os.path.join(os.path.dirname(__file__), "..", "build", "bin", "augur"))
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--skip", type=int, default=3, help="warm-up steps left out of the figure")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1, help="alternate the two sides N times, keep the best of each")
    ap.add_argument("--json", help="write the figures here too")
    ap.add_argument("--breakdown", action="store_true",
                    help="print where a PyTorch step goes (augur's side: build/bin/train_step)")
    args = ap.parse_args()
    if args.steps <= args.skip:
        sys.exit("bench_train: --steps must exceed --skip")
    if not os.path.exists(args.augur):
        sys.exit(f"bench_train: {args.augur}: not found; build augur first (scripts/build.sh) or pass --augur")

    import torch
    import transformers

    augur_runs, torch_runs = [], []
    for r in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
            tok_s, config = run_augur(args, os.path.join(tmp, "run"))
        augur_runs.append(tok_s)
        torch_runs.append(run_torch(args, config))
        print(f"round {r + 1}/{args.repeat}: augur {augur_runs[-1]:.0f} tok/s, pytorch {torch_runs[-1]:.0f} tok/s",
              file=sys.stderr)
    a, p = max(augur_runs), max(torch_runs)
    # Each round runs the two sides back to back, so the per-round ratio is the least
    # sensitive to other load on the machine.
    round_ratios = sorted(x / y for x, y in zip(augur_runs, torch_runs))
    median_ratio = round_ratios[len(round_ratios) // 2] if len(round_ratios) % 2 else \
        0.5 * (round_ratios[len(round_ratios) // 2 - 1] + round_ratios[len(round_ratios) // 2])
    result = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{cpu_name()}, {os.cpu_count()} CPUs",
        "torch": torch.__version__, "transformers": transformers.__version__,
        "config": args.config, "batch": args.batch, "seq_len": args.seq_len, "threads": args.threads,
        "steps": args.steps, "skip": args.skip, "repeat": args.repeat,
        "augur_tok_s": a, "pytorch_tok_s": p, "ratio": a / p,
        "augur_runs": augur_runs, "pytorch_runs": torch_runs, "median_round_ratio": median_ratio,
    }
    print(f"{result['date']}, {result['machine']}")
    print(f"model {args.config}, batch {args.batch} x seq {args.seq_len}, {args.threads} threads, "
          f"{args.steps - args.skip} timed steps, best of {args.repeat}")
    print(f"augur train      {a:10.0f} tokens/s")
    print(f"pytorch eager    {p:10.0f} tokens/s   (transformers {transformers.__version__} LlamaForCausalLM, "
          f"torch {torch.__version__})")
    print(f"ratio augur/pytorch {a / p:.2f} (best vs best); median of per-round ratios {median_ratio:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
