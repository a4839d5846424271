#!/usr/bin/env python3
"""Acceptance by prompt kind from an `augur eval` report.

The quickstart's held-out prompts (scripts/make_prompts.py) are of three kinds: code
continuation, chat requests built from docstrings, and chat requests that rework given code.
A drafter trained on all three can still hold up on one kind and not another; this prints, per
drafter and kind, tau (new tokens per target forward), alpha and the wall-clock speedup over
the prompts of that kind, from the per-prompt records of report.json.

  scripts/report_by_kind.py REPORT_DIR/report.json PROMPTS.jsonl [--markdown]
"""
import argparse
import json
import sys
from collections import defaultdict


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", help="report.json of augur eval")
    ap.add_argument("prompts", help="the prompts JSONL the report was made from (its 'kind' fields)")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    a = ap.parse_args()
    try:
        with open(a.report, encoding="utf-8") as f:
            report = json.load(f)
        with open(a.prompts, encoding="utf-8") as f:
            kinds = [json.loads(line).get("kind", "?") for line in f if line.strip()]
    except (OSError, ValueError) as e:
        print(f"report_by_kind: {e}", file=sys.stderr)
        return 1
    rows = []
    runs = [report["baseline"]] if isinstance(report.get("baseline"), dict) else []
    for run in runs + report.get("runs", []):
        agg = defaultdict(lambda: {"new": 0, "forwards": 0, "accepted": 0, "proposed": 0, "total_s": 0.0, "n": 0})
        for p in run.get("prompts", []):
            # "source" is "FILE:LINE" (1-based) for JSONL prompts.
            try:
                line = int(str(p.get("source", "")).rsplit(":", 1)[1])
                kind = kinds[line - 1]
            except (IndexError, ValueError):
                kind = "?"
            s = p["stats"]
            g = agg[kind]
            g["new"] += p["new_tokens"]
            g["forwards"] += s["target_forwards"]
            g["accepted"] += s["accepted"]
            g["proposed"] += s["proposed"]
            g["total_s"] += s["total_s"]
            g["n"] += 1
        for kind, g in sorted(agg.items()):
            rows.append((run["label"], kind, g["n"], g["new"] / max(1, g["forwards"]),
                         g["accepted"] / max(1, g["proposed"]), g["new"] / max(1e-9, g["total_s"])))
    base = {}
    for label, kind, n, tau, acc, tps in rows:
        if label == report.get("baseline", {}).get("label", "target-only"):
            base[kind] = tps
    if a.markdown:
        print("| drafter | kind | prompts | tau | accepted/proposed | tok/s | speedup |")
        print("|---|---|---:|---:|---:|---:|---:|")
    for label, kind, n, tau, acc, tps in rows:
        sp = tps / base[kind] if kind in base and base[kind] > 0 else float("nan")
        if a.markdown:
            print(f"| {label} | {kind} | {n} | {tau:.2f} | {acc:.3f} | {tps:.1f} | {sp:.2f}x |")
        else:
            print(f"{label:44s} {kind:8s} n={n:3d} tau {tau:5.2f} acc {acc:.3f} tok/s {tps:6.1f} speedup {sp:5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
