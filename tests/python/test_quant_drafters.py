"""Quantized drafters from the CLI end to end (label: interop).

A tiny tokenizer, token store, target, teacher store, AR drafter and NAT drafter are made with
the augur CLI; then:
- `augur quantize` (int4-g32 RTN) of the AR drafter and `augur distill ar|nat --qat` outputs
  (<out>/quantized) run in `augur eval --drafter ar:DIR / nat:DIR` with --check passing, the
  report naming the scheme, and the figures consistent with their definitions;
- the --qat runs say where the quantized drafter went, and its augur.json keeps kind, gamma
  and mask id;
- `--eval-only` measures a quantized student, and `augur generate --model` runs one;
- a --qat scheme that does not exist is refused with a one-line error.
"""

import json
import os
import sysconfig

import pytest

from test_eval_cli import AUGUR, run, tiny_config, one_line_error  # noqa: F401 (shared helpers)

STDLIB = sysconfig.get_paths()["stdlib"]
MAX_NEW, GAMMA, NUM_PROMPTS = 16, 3, 2
MASK_ID = 3  # any id inside the vocabulary; the tiny tokenizer has no <mask> piece


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("quant_drafters")
    inputs = [os.path.join(STDLIB, p) for p in ("json", "argparse.py", "textwrap.py", "string.py", "shlex.py")]
    run("data", "tokenizer", "--input", *inputs, "--vocab-size", "512", "--out", root / "tok", "--valid-fraction", "0")
    store = root / "s.h5"
    run("data", "build", "--input", *inputs, "--tokenizer", root / "tok", "--out", store, "--valid-fraction", "0.4")
    run("train", "--data", store, "--batch", "8", "--seq-len", "64", "--lr", "3e-3", "--warmup", "5",
        "--eval-every", "1000", "--save-every", "1000", "--threads", "1",
        "--config", tiny_config(root / "t.json", 512, 64, 2), "--out", root / "target", "--steps", "40")
    teacher = root / "teacher.h5"
    run("distill", "gen", "--target", root / "target", "--prompts", store, "--out", teacher, "--num-prompts", "24",
        "--prompt-len", "16", "--max-new", "24", "--top-k", "8", "--threads", "1", "--no-progress")
    draft_cfg = tiny_config(root / "d.json", 512, 32, 1)
    common = ["--target", root / "target", "--teacher", teacher, "--batch", "4", "--seq-len", "32",
              "--warmup", "1", "--eval-every", "2", "--eval-sequences", "4", "--threads", "1", "--quiet"]
    run("distill", "ar", *common, "--student", draft_cfg, "--out", root / "ar", "--steps", "6", "--lr", "1e-2")
    run("distill", "nat", *common, "--student", draft_cfg, "--gamma", "2", "--mask-id", MASK_ID, "--out", root / "nat",
        "--steps", "6", "--lr", "1e-2")
    # QAT continued from the fp32 drafters (what scripts/quant_experiment.sh does).
    ar_qat = run("distill", "ar", *common, "--student", root / "ar", "--qat", "int4-g32", "--out", root / "ar_qat",
                 "--steps", "4", "--lr", "2e-3")
    nat_qat = run("distill", "nat", *common, "--student", root / "nat", "--gamma", "2", "--mask-id", MASK_ID,
                  "--qat", "int8", "--out", root / "nat_qat", "--steps", "4", "--lr", "2e-3")
    run("quantize", "--model", root / "ar", "--scheme", "int4", "--group", "32", "--out", root / "ar_int4",
        "--threads", "1")
    return {"root": root, "store": store, "teacher": teacher, "target": root / "target", "common": common,
            "ar_qat_err": ar_qat.stderr, "nat_qat_err": nat_qat.stderr}


def test_qat_runs_export_the_quantized_drafter(work):
    root = work["root"]
    for name, scheme, kind in (("ar_qat", "int4-g32", "ar-drafter"), ("nat_qat", "int8", "nat-drafter")):
        qdir = root / name / "quantized"
        assert f"quantized drafter ({scheme}, qat) of {root / name}/best" in work[f"{name}_err"], work[f"{name}_err"]
        assert f"-> {qdir}" in work[f"{name}_err"]
        meta = json.loads((qdir / "augur.json").read_text())
        assert meta["kind"] == kind
        assert meta["quantization"] == scheme
        assert meta["extra"]["quantization"]["method"] == "qat"
        if kind == "nat-drafter":
            assert meta["gamma"] == 2 and meta["mask_token_id"] == MASK_ID
        # The fp32 checkpoints of a QAT run say what they were trained for.
        fp32 = json.loads((root / name / "augur.json").read_text())
        assert fp32["quantization"] is None and fp32["extra"]["qat"]["scheme"] == scheme
    # A scheme that does not exist: one line, non-zero exit, nothing trained.
    bad = run("distill", "ar", *work["common"], "--student", root / "ar", "--qat", "int3", "--out", root / "bad",
              check=False)
    one_line_error(bad, "--qat int3")
    assert not (root / "bad" / "model.safetensors").exists()


def test_eval_runs_quantized_drafters_with_check(work):
    root = work["root"]
    report = root / "report"
    specs = [f"ar:{root / 'ar'}", f"ar:{root / 'ar_int4'}", f"ar:{root / 'ar_qat' / 'quantized'}",
             f"nat:{root / 'nat_qat' / 'quantized'}"]
    args = ["eval", "--target", work["target"], "--prompts", work["store"], "--num-prompts", NUM_PROMPTS,
            "--prompt-len", 16, "--max-new", MAX_NEW, "--gamma", GAMMA, "--threads", 1, "--probe-iters", 2,
            "--report", report, "--check"]
    for s in specs:
        args += ["--drafter", s]
    proc = run(*args)
    assert "--check passed" in proc.stderr
    rep = json.loads((report / "report.json").read_text())
    # spec = as given; drafter (and label) = what ran, short: the checkpoint directory's name
    # and the scheme of a quantized checkpoint.
    assert [r["spec"] for r in rep["runs"]] == specs
    short = [s.split(":", 1)[0] + ":" + s.rsplit("/", 1)[1] for s in specs]
    assert [r["drafter"] for r in rep["runs"]] == [short[0], f"{short[1]} (int4-g32)", f"{short[2]} (int4-g32)",
                                                  f"{short[3]} (int8)"]
    assert [r["label"] for r in rep["runs"]] == [r["drafter"] for r in rep["runs"]]
    base = rep["baseline"]["summary"]
    for r in rep["runs"]:
        s = r["summary"]
        assert s["new_tokens"] == base["new_tokens"] == MAX_NEW * NUM_PROMPTS
        assert 0.0 <= s["alpha"] <= 1.0 and s["proposed"] > 0
        assert s["alpha"] == pytest.approx(s["accepted"] / s["proposed"], rel=1e-12)
        assert s["tau"] == pytest.approx(s["new_tokens"] / s["target_forwards"], rel=1e-12)
        assert s["accepted"] + s["target_forwards"] == s["new_tokens"]
        # Greedy speculative output is the target's own greedy output (what --check enforces).
        for pr, pb in zip(r["prompts"], rep["baseline"]["prompts"]):
            assert pr["tokens"] == pb["tokens"]


def test_eval_only_and_generate_take_quantized_checkpoints(work):
    root = work["root"]
    out = run("distill", "ar", *work["common"], "--student", root / "ar_qat" / "quantized", "--eval-only",
              "--out", root / "evo").stdout.split()
    figures = dict(zip(out[::2], map(float, out[1::2])))
    assert 0.0 < figures["alpha"] <= 1.0 and figures["valid_positions"] > 0
    # The QAT run's best was selected by the fake-quant alpha of the same weights; the default
    # int8-activation kernels move it only slightly.
    best = json.loads((root / "ar_qat" / "best" / "augur.json").read_text())["extra"]["selected_by"]["value"]
    assert figures["alpha"] == pytest.approx(best, abs=0.02)
    out = run("distill", "nat", *work["common"], "--student", root / "nat_qat" / "quantized", "--gamma", "2",
              "--mask-id", MASK_ID, "--eval-only", "--out", root / "evo").stdout
    assert "alpha_1" in out and "alpha_2" in out
    gen = run("generate", "--model", root / "ar_int4", "--prompt", "import os\n", "--max-new", 8, "--temperature", 0,
              "--ignore-eos", "--print-ids", "--threads", 1)
    ids = json.loads(gen.stdout.strip().splitlines()[-1])
    assert len(ids["ids"]) == 8 and all(0 <= t < 512 for t in ids["ids"])
