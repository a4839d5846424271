#!/usr/bin/env python3
"""PNG plots from an `augur eval` / `augur bench` report.json (docs/FORMATS.md, "Eval report").

    .venv/bin/python scripts/plot_report.py RUN/report            # PNGs next to report.json
    .venv/bin/python scripts/plot_report.py RUN/report/report.json --out figs/

Writes:
  acceptance_by_position.png  share of drafts offering position i whose tokens 1..i were all
                              kept, one line per drafter (and gamma)
  drafters.png                speedup and tau per drafter side by side (bench: each drafter's
                              best gamma), with the predicted speedup and the 1x line
  gamma_sweep.png             tau and speedup vs gamma per drafter (when a drafter ran at
                              two or more gammas, i.e. bench reports)
Prints the paths written, one per line.
"""

import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(path):
    if os.path.isdir(path):
        path = os.path.join(path, "report.json")
    try:
        with open(path) as f:
            report = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"plot_report: {path}: {e}")
    if report.get("format") != "augur-eval-report":
        sys.exit(f"plot_report: {path}: not an augur eval report (format {report.get('format')!r})")
    return path, report


def title(report):
    m, c = report.get("machine", {}), report.get("config", {})
    temp = c.get("temperature", 0)
    mode = "greedy" if not temp else f"T={temp}"
    return f"{report.get('command', 'eval')}: {mode}, {m.get('device', '?')}, {m.get('torch_threads', '?')} threads"


def run_name(run, with_gamma):
    return f"{run['label']} (g={run['gamma']})" if with_gamma else run["label"]


def plot_acceptance(report, out):
    runs = report["runs"]
    labels = {r["label"] for r in runs}
    with_gamma = len(runs) > len(labels)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for run in runs:
        acc = run["summary"]["acceptance_by_position"]
        offered = run["summary"]["offered_at"]
        xs = [i + 1 for i in range(len(acc)) if offered[i] > 0]
        ys = [acc[i] for i in range(len(acc)) if offered[i] > 0]
        ax.plot(xs, ys, marker="o", label=run_name(run, with_gamma))
    ax.set_xlabel("draft position")
    ax.set_ylabel("P(draft tokens 1..i all kept | offered)")
    ax.set_ylim(0, 1.02)
    ax.set_title("Acceptance by draft position\n" + title(report), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def best_per_label(runs):
    best = {}
    for run in runs:
        cur = best.get(run["label"])
        if cur is None or run.get("speedup", 0) > cur.get("speedup", 0):
            best[run["label"]] = run
    return list(best.values())


def plot_drafters(report, out):
    runs = best_per_label(report["runs"])
    names = [f"{r['label']}\n(g={r['gamma']})" for r in runs]
    xs = range(len(runs))
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(max(7, 2.2 * len(runs) + 3), 4.5))
    w = 0.38
    a1.bar([x - w / 2 for x in xs], [r.get("speedup", 0) for r in runs], w, label="measured")
    a1.bar([x + w / 2 for x in xs], [r.get("predicted", {}).get("speedup", 0) for r in runs], w, label="predicted")
    a1.axhline(1.0, color="k", lw=0.8, ls="--")
    a1.set_ylabel("speedup vs target-only (wall clock)")
    a1.set_xticks(list(xs), names, fontsize=8)
    a1.legend(fontsize=8)
    a2.bar(list(xs), [r["summary"]["tau"] for r in runs], 0.6, color="tab:green")
    a2.axhline(1.0, color="k", lw=0.8, ls="--")
    a2.set_ylabel("tau (tokens per target forward)")
    a2.set_xticks(list(xs), names, fontsize=8)
    fig.suptitle("Drafters side by side\n" + title(report), fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_gamma_sweep(report, out):
    by_label = {}
    for run in report["runs"]:
        by_label.setdefault(run["label"], []).append(run)
    swept = {k: sorted(v, key=lambda r: r["gamma"]) for k, v in by_label.items() if len(v) >= 2}
    if not swept:
        return False
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.5))
    for label, runs in swept.items():
        gs = [r["gamma"] for r in runs]
        a1.plot(gs, [r["summary"]["tau"] for r in runs], marker="o", label=label)
        line, = a2.plot(gs, [r.get("speedup", 0) for r in runs], marker="o", label=f"{label} measured")
        a2.plot(gs, [r.get("predicted", {}).get("speedup", 0) for r in runs], ls=":", color=line.get_color(),
                label=f"{label} predicted")
    a1.set_xlabel("gamma")
    a1.set_ylabel("tau (tokens per target forward)")
    a1.grid(alpha=0.3)
    a1.legend(fontsize=8)
    a2.axhline(1.0, color="k", lw=0.8, ls="--")
    a2.set_xlabel("gamma")
    a2.set_ylabel("speedup vs target-only")
    a2.grid(alpha=0.3)
    a2.legend(fontsize=7)
    fig.suptitle("tau and speedup vs gamma\n" + title(report), fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("report", help="report.json or the directory holding it")
    ap.add_argument("--out", help="directory for the PNGs (default: next to report.json)")
    args = ap.parse_args()
    path, report = load(args.report)
    if not report.get("runs"):
        sys.exit(f"plot_report: {path}: no runs to plot")
    out = args.out or os.path.dirname(os.path.abspath(path))
    os.makedirs(out, exist_ok=True)
    written = []
    for name, fn in (("acceptance_by_position.png", plot_acceptance), ("drafters.png", plot_drafters),
                     ("gamma_sweep.png", plot_gamma_sweep)):
        target = os.path.join(out, name)
        tmp = target + ".tmp.png"
        if fn(report, tmp) is False:
            continue
        os.replace(tmp, target)  # a reader never sees a half-written PNG
        written.append(target)
    for w in written:
        print(w)


if __name__ == "__main__":
    main()
