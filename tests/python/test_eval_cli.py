"""`augur eval` / `augur bench` / scripts/plot_report.py end to end (label: interop).

A tiny tokenizer, token store, target and AR drafter are made here with the augur CLI (a
few stdlib files, a few dozen training steps), then evaluated. The report's figures are
checked against their definitions recomputed from the raw counts and times it records:
alpha = accepted / proposed in [0, 1], tau = new tokens / target forwards, speedup =
target-only time / speculative time (equal lengths), predicted speedup = E / (g c + v);
--check passes; greedy outputs equal the target-only outputs token for token; the PNGs
are valid PNG files.
"""

import json
import math
import os
import shutil
import struct
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

AUGUR = os.environ.get("AUGUR_BIN", "build/bin/augur")
SRC = os.environ.get("AUGUR_SOURCE_DIR", ".")
STDLIB = sysconfig.get_paths()["stdlib"]
MAX_NEW = 20
GAMMA = 3
NUM_PROMPTS = 3


def run(*args, check=True):
    proc = subprocess.run([AUGUR, *map(str, args)], capture_output=True, text=True)
    if check:
        assert proc.returncode == 0, f"augur {' '.join(map(str, args))}: {proc.stderr[-2000:]}"
    return proc


def tiny_config(path, vocab, hidden, layers):
    cfg = dict(architectures=["LlamaForCausalLM"], vocab_size=vocab, hidden_size=hidden,
               intermediate_size=2 * hidden, num_hidden_layers=layers, num_attention_heads=4,
               num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=True,
               bos_token_id=1, eos_token_id=2, rms_norm_eps=1e-5, rope_theta=10000.0)
    path.write_text(json.dumps(cfg))
    return path


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval_cli")
    inputs = [os.path.join(STDLIB, p) for p in ("json", "argparse.py", "textwrap.py", "string.py", "shlex.py")]
    run("data", "tokenizer", "--input", *inputs, "--vocab-size", "512", "--out", root / "tok",
        "--valid-fraction", "0")
    store = root / "s.h5"
    run("data", "build", "--input", *inputs, "--tokenizer", root / "tok", "--out", store, "--valid-fraction", "0.4")
    common = ["--data", store, "--batch", "8", "--seq-len", "64", "--lr", "3e-3", "--warmup", "5",
              "--eval-every", "1000", "--save-every", "1000", "--threads", "1"]
    run("train", *common, "--config", tiny_config(root / "t.json", 512, 64, 2), "--out", root / "target",
        "--steps", "60")
    run("train", *common, "--config", tiny_config(root / "d.json", 512, 32, 1), "--out", root / "draft",
        "--steps", "40")
    (root / "prompts.jsonl").write_text(
        json.dumps({"prompt": "def parse(self, text):\n    "}) + "\n" +
        json.dumps({"prompt": "import os\nimport sys\n\nclass Reader:\n"}) + "\n")
    return {"root": root, "store": store, "target": root / "target", "draft": root / "draft"}


def eval_args(work, report, *extra):
    return ["eval", "--target", work["target"], "--drafter", "prompt-lookup", "--drafter", f"ar:{work['draft']}",
            "--prompts", work["store"], "--num-prompts", NUM_PROMPTS, "--prompt-len", 16, "--max-new", MAX_NEW,
            "--gamma", GAMMA, "--threads", 1, "--probe-iters", 3, "--report", report, *extra]


def check_run_figures(run_, baseline, gamma):
    s, b = run_["summary"], baseline["summary"]
    assert 0.0 <= s["alpha"] <= 1.0
    assert s["proposed"] > 0
    assert s["alpha"] == pytest.approx(s["accepted"] / s["proposed"], rel=1e-12)
    assert s["tau"] == pytest.approx(s["new_tokens"] / s["target_forwards"], rel=1e-12)
    # Every round keeps the accepted tokens plus one of the target's (EOS ignored).
    assert s["accepted"] + s["target_forwards"] == s["new_tokens"]
    assert s["new_tokens"] == b["new_tokens"] == MAX_NEW * NUM_PROMPTS
    # Equal lengths: speedup = baseline time / speculative time.
    assert run_["speedup"] == pytest.approx(b["total_s"] / s["total_s"], rel=1e-9)
    assert s["other_s"] == pytest.approx(s["total_s"] - s["prefill_s"] - s["draft_s"] - s["verify_s"], abs=1e-12)
    assert 0 < s["prefill_s"] + s["draft_s"] + s["verify_s"] <= s["total_s"]
    for i, (o, a) in enumerate(zip(s["offered_at"], s["accepted_at"])):
        assert 0 <= a <= o
        assert s["acceptance_by_position"][i] == pytest.approx(a / o if o else 0.0)
    assert sum(s["accepted_at"]) == s["accepted"] and sum(s["offered_at"]) == s["proposed"]
    p = run_["predicted"]
    t1 = b["verify_s"] / b["target_forwards"]
    assert p["t_target_1_s"] == pytest.approx(t1, rel=1e-9)
    assert p["v"] == pytest.approx(s["verify_s"] / s["target_forwards"] / t1, rel=1e-9)
    assert p["c"] == pytest.approx(s["draft_s"] / s["target_forwards"] / gamma / t1, rel=1e-9)
    a = s["alpha"]
    e = gamma + 1 if a >= 1 else (1 - a ** (gamma + 1)) / (1 - a)
    assert p["expected_tokens_per_round"] == pytest.approx(e, rel=1e-9)
    assert p["speedup"] == pytest.approx(e / (gamma * p["c"] + p["v"]), rel=1e-9)
    for pr in run_["prompts"]:
        assert len(pr["tokens"]) == pr["new_tokens"] == MAX_NEW
        st = pr["stats"]
        assert pr["tau"] == pytest.approx(MAX_NEW / st["target_forwards"], rel=1e-12)
        assert isinstance(pr["text"], str) and pr["text"]


def is_png(path):
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return False
    w, h = struct.unpack(">II", head[16:24])
    return w > 100 and h > 100


def plot(report_dir):
    proc = subprocess.run([sys.executable, os.path.join(SRC, "scripts", "plot_report.py"), str(report_dir)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_eval_greedy_report_and_check(work):
    rep = work["root"] / "rep_greedy"
    proc = run(*eval_args(work, rep, "--check"))
    assert "--check passed" in proc.stderr
    report = json.loads((rep / "report.json").read_text())
    assert report["format"] == "augur-eval-report" and report["command"] == "eval"
    assert report["config"]["gammas"] == [GAMMA] and report["config"]["max_new"] == MAX_NEW
    assert report["config"]["check"] is True
    for key in ("cpu_model", "cores", "torch_threads", "torch_version", "augur_version", "device"):
        assert key in report["machine"]
    assert report["machine"]["torch_threads"] == 1
    assert report["check"] == {"ran": True, "passed": True, "first_mismatch": ""}
    assert [r["spec"] for r in report["runs"]] == ["prompt-lookup", f"ar:{work['draft']}"]
    # Labels are short: the checkpoint directory's own name, not its path.
    assert [r["label"] for r in report["runs"]] == ["prompt-lookup", f"ar:{Path(work['draft']).name}"]
    base = report["baseline"]
    assert base["summary"]["tau"] == 1.0 and base["summary"]["proposed"] == 0
    assert len(base["prompts"]) == NUM_PROMPTS
    assert set(report["cost"]["forward_ms"]) == {"1", str(GAMMA + 1)}
    for r in report["runs"]:
        check_run_figures(r, base, GAMMA)
        # Greedy: identical to target-only, prompt by prompt.
        for pr, bp in zip(r["prompts"], base["prompts"]):
            assert pr["tokens"] == bp["tokens"] and pr["text"] == bp["text"]
    md = (rep / "report.md").read_text()
    assert "| prompt-lookup | 3 |" in md and "Passed" in md and "(1 - a^(g+1)) / (1 - a)" in md
    pngs = plot(rep)
    names = sorted(os.path.basename(p) for p in pngs)
    assert names == ["acceptance_by_position.png", "drafters.png"]
    for p in pngs:
        assert is_png(p), p


def test_eval_sampling_jsonl_prompts(work):
    rep = work["root"] / "rep_sampled"
    args = eval_args(work, rep, "--check", "--temperature", "0.8", "--top-p", "0.95")
    args[args.index("--prompts") + 1] = work["root"] / "prompts.jsonl"
    run(*args)
    report = json.loads((rep / "report.json").read_text())
    assert report["check"]["passed"] is True
    assert report["baseline"]["sampling"].startswith("T=0.8")
    assert [p["source"].rsplit(":", 1)[1] for p in report["baseline"]["prompts"]] == ["1", "2"]
    for r in report["runs"]:
        s = r["summary"]
        assert 0.0 <= s["alpha"] <= 1.0
        assert s["tau"] == pytest.approx(s["new_tokens"] / s["target_forwards"])
        assert r["speedup"] == pytest.approx(report["baseline"]["summary"]["total_s"] / s["total_s"], rel=1e-9)


def test_bench_sweeps_gamma_and_plots(work):
    rep = work["root"] / "rep_bench"
    proc = run("bench", "--target", work["target"], "--drafter", f"ar:{work['draft']}", "--drafter", "prompt-lookup",
               "--prompts", work["store"], "--num-prompts", 2, "--prompt-len", 16, "--max-new", 12,
               "--gammas", "1,2", "--threads", 1, "--probe-iters", 2, "--report", rep)
    lines = [l for l in proc.stdout.splitlines() if l.strip()]
    assert lines[0].split()[:6] == ["drafter", "gamma", "alpha", "tau", "tok/s", "speedup"]
    assert len(lines) == 1 + 1 + 4  # header, target-only, 2 drafters x 2 gammas
    report = json.loads((rep / "report.json").read_text())
    assert report["command"] == "bench"
    assert sorted((r["label"].split(":")[0], r["gamma"]) for r in report["runs"]) == [
        ("ar", 1), ("ar", 2), ("prompt-lookup", 1), ("prompt-lookup", 2)]
    for r in report["runs"]:
        assert r["summary"]["tau"] <= r["gamma"] + 1
        assert max(len(p["stats"]["offered_at"]) for p in r["prompts"]) == r["gamma"]
    pngs = plot(rep)
    assert "gamma_sweep.png" in [os.path.basename(p) for p in pngs]
    for p in pngs:
        assert is_png(p), p


def one_line_error(proc, *needles):
    assert proc.returncode != 0
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err, err


def test_bad_drafters_refused(work):
    base = ["eval", "--target", work["target"], "--prompts", work["store"], "--report", work["root"] / "bad",
            "--num-prompts", 1, "--max-new", 4]
    one_line_error(run(*base, "--drafter", "nat:/nowhere", check=False), "/nowhere: no such directory")
    one_line_error(run(*base, "--drafter", f"nat:{work['draft']}", check=False), "not 'nat-drafter'")
    one_line_error(run(*base, "--drafter", "ngram:x.h5", check=False), "x.h5: no such file")
    one_line_error(run(*base, "--drafter", "psychic", check=False), "unknown kind \"psychic\"")
    one_line_error(run(*base, "--drafter", "prompt-lookup:n=0", check=False), "positive integer")
    one_line_error(run(*base, "--drafter", f"ar:{work['draft']}+", check=False), "empty drafter in the set")
    one_line_error(run(*base, "--drafter", "prompt-lookup+psychic", check=False), "unknown kind \"psychic\"")
    one_line_error(run(*base, "--drafter", f"ar:{work['draft']},engine=gpu", check=False), "not torch or native")
    one_line_error(run(*base, "--drafter", f"ar:{work['draft']},speed=11", check=False), "unknown key \"speed\"")
    # A drafter made with another tokenizer is refused.
    other = work["root"] / "draft_other_tok"
    shutil.copytree(work["draft"], other, dirs_exist_ok=True)
    meta = json.loads((other / "augur.json").read_text())
    meta["provenance"]["tokenizer_fingerprint"] = "0123456789abcdef"
    (other / "augur.json").write_text(json.dumps(meta))
    one_line_error(run(*base, "--drafter", f"ar:{other}", check=False), "made with tokenizer 0123456789abcdef")
    assert not (work["root"] / "bad" / "report.json").exists()
    # --help explains every flag.
    h = run("eval", "--help").stdout
    for flag in ("--target", "--drafter", "--prompts", "--report", "--gamma", "--temperature", "--top-p",
                 "--max-new", "--num-prompts", "--prompt-len", "--split", "--seed", "--threads", "--device",
                 "--check", "--warmup", "prompt-lookup[:n=3,min=1]"):
        assert flag in h, flag


def test_drafter_engines_agree(work):
    # The native CPU runtime (default) and LibTorch draft the same greedy tokens: same acceptance
    # figures, and both outputs equal the target's own (--check).
    rep = work["root"] / "rep_engines"
    proc = run("eval", "--target", work["target"], "--drafter", f"ar:{work['draft']},engine=torch",
               "--drafter", f"ar:{work['draft']},engine=native", "--prompts", work["store"], "--num-prompts",
               NUM_PROMPTS, "--prompt-len", 16, "--max-new", MAX_NEW, "--gamma", GAMMA, "--threads", 1,
               "--probe-iters", 3, "--check", "--report", rep)
    assert "--check passed" in proc.stderr and "running on LibTorch" not in proc.stderr
    torch_run, native_run = json.loads((rep / "report.json").read_text())["runs"]
    assert native_run["spec"] == f"ar:{work['draft']},engine=native"
    assert native_run["label"] == f"ar:{Path(work['draft']).name},engine=native"
    for key in ("proposed", "accepted", "target_forwards", "new_tokens"):
        assert native_run["summary"][key] == torch_run["summary"][key], key


def test_drafter_set_tree(work):
    """An AR drafter and prompt lookup at once, as one token tree: greedy output equals
    target-only greedy (--check), and the tree verifies more than one node per step."""
    rep = work["root"] / "tree"
    run("eval", "--target", work["target"], "--prompts", work["store"], "--report", rep, "--num-prompts", 2,
        "--max-new", 16, "--gamma", 3, "--drafter", f"ar:{work['draft']}+prompt-lookup", "--check")
    report = json.loads((rep / "report.json").read_text())
    (tree,) = report["runs"]
    assert tree["spec"] == f"ar:{work['draft']}+prompt-lookup"
    assert tree["label"] == f"ar:{Path(work['draft']).name}+prompt-lookup"
    assert report["check"]["passed"] is True
    for p in tree["prompts"]:
        assert len(p["tokens"]) == 16
        assert p["stats"]["tree_nodes"] >= p["stats"]["proposed"] > 0
