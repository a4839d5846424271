"""augur's EAGLE-3 export in a real client: the llama.cpp that llama-cpp-python vendors
(scripts/build_llamacpp.sh builds its tools). The drafter (AUGUR_EAGLE_DRAFTER: a trained
eagle-drafter checkpoint; default: a random-weight one sized for the target, see
eagle3_checkpoint.py) is exported with `augur export --format eagle3`, converted by the vendored
convert_hf_to_gguf.py with --target-model-dir = the SmolLM2 target imported by `augur import`,
and checked: the GGUF's EAGLE-3 keys and tensors are what docs/FORMATS.md says the converter
makes of our names (d2t as absolute target ids, no token_embd), and llama-speculative-simple
--spec-type draft-eagle3 on the target's own GGUF, greedy, prints the same text as
llama-completion's target-only greedy decoding on every prompt, with the acceptance it reports.
Random weights give acceptance near 0 (every draft is still verified: p_min is 0 and 3 tokens are
drafted each step); a trained drafter gives real figures. Acceptance is written to
AUGUR_EAGLE3_REPORT (JSON) when set, and printed. Skips with the reason when llama.cpp's tools,
the SmolLM2 GGUF or the augur binary are missing."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
import eagle3_checkpoint  # noqa: E402
import smollm2  # noqa: E402

ROOT = os.environ.get("AUGUR_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
LLAMA_DIR = os.environ.get("AUGUR_LLAMA_CPP_DIR", os.path.join(ROOT, ".venv", "llama.cpp"))
TOOLS = ["llama-speculative-simple", "llama-completion"]
PROMPTS = [
    "The three primary colors are",
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
    "<|im_start|>user\nName two planets of the solar system.<|im_end|>\n<|im_start|>assistant\n",
]
MAX_NEW = 32
GAMMA = 3  # draft tokens per step, both engines (llama.cpp's default n_max)
SPECIAL_TEXTS = ["<|im_end|>", "<|endoftext|>"]
N_DRAFTED = re.compile(r"n_drafted\s*=\s*(\d+)")
N_ACCEPT = re.compile(r"n_accept\s*=\s*(\d+)")


def run(cmd, env=None, timeout=1200):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    assert p.returncode == 0, f"{' '.join(cmd[:3])} ... failed (rc {p.returncode}):\n{p.stderr[-3000:]}"
    return p.stdout, p.stderr


@pytest.fixture(scope="module")
def tools():
    bin_dir, src = os.path.join(LLAMA_DIR, "bin"), os.path.join(LLAMA_DIR, "src")
    missing = [t for t in TOOLS if not os.access(os.path.join(bin_dir, t), os.X_OK)]
    if missing or not os.path.isfile(os.path.join(src, "convert_hf_to_gguf.py")):
        pytest.skip(f"llama.cpp's tools are not built in {LLAMA_DIR} (missing: {', '.join(missing) or 'convert_hf_to_gguf.py'}); "
                    "run scripts/build_llamacpp.sh (AUGUR_LLAMA_CPP_DIR points elsewhere)")
    return {"bin": bin_dir, "src": src}


@pytest.fixture(scope="module")
def augur():
    path = os.environ.get("AUGUR_BIN", os.path.join(ROOT, "build", "bin", "augur"))
    if not os.access(path, os.X_OK):
        pytest.skip(f"augur binary not found at {path} (scripts/build.sh)")
    return path


@pytest.fixture(scope="module")
def pipeline(tools, augur, tmp_path_factory):
    gguf = smollm2.require_gguf()
    root = tmp_path_factory.mktemp("eagle3")
    target = root / "target"
    run([augur, "import", "--gguf", gguf, "--out", str(target)])
    drafter = os.environ.get("AUGUR_EAGLE_DRAFTER")
    if drafter:
        with open(os.path.join(drafter, "augur.json")) as f:
            layers = json.load(f)["extra"]["eagle"]["target_layers"]
    else:
        drafter = str(root / "random-eagle")
        layers = eagle3_checkpoint.write_random_eagle(drafter, str(target), draft_vocab=8192)["layers"]
    export = root / "export"
    run([augur, "export", "--model", drafter, "--format", "eagle3", "--out", str(export), "--quiet"])
    draft_gguf = root / "draft-eagle3-f32.gguf"
    env = dict(os.environ, PYTHONPATH=os.path.join(tools["src"], "gguf-py"))
    run([sys.executable, os.path.join(tools["src"], "convert_hf_to_gguf.py"), str(export), "--target-model-dir",
         str(target), "--outtype", "f32", "--outfile", str(draft_gguf)], env=env)
    return {"target_gguf": gguf, "target": target, "export": export, "draft": draft_gguf, "layers": layers,
            "drafter": drafter, "random": not os.environ.get("AUGUR_EAGLE_DRAFTER"), **tools}


def test_converted_draft_gguf(pipeline):
    """What convert_hf_to_gguf.py made of the export: architecture, EAGLE-3 keys, tensors."""
    sys.path.insert(0, os.path.join(pipeline["src"], "gguf-py"))
    try:
        import gguf  # the vendored gguf-py, which knows the eagle3 keys
        r = gguf.GGUFReader(str(pipeline["draft"]))
    finally:
        sys.path.pop(0)
    field = lambda k: r.fields[k].contents()  # noqa: E731
    with open(pipeline["export"] / "config.json") as f:
        cfg = json.load(f)
    assert field("general.architecture") == "eagle3"
    assert list(field("eagle3.target_layers")) == pipeline["layers"]
    assert field("eagle3.target_hidden_size") == cfg["target_hidden_size"]
    assert field("eagle3.block_count") == 1
    assert field("eagle3.embedding_length") == cfg["hidden_size"]
    tensors = {t.name: t for t in r.tensors}
    d, nd, v = cfg["hidden_size"], cfg["draft_vocab_size"], cfg["vocab_size"]
    hq, hkv = cfg["num_attention_heads"] * cfg["head_dim"], cfg["num_key_value_heads"] * cfg["head_dim"]
    # GGUF shapes are innermost first: a [rows, cols] matrix is (cols, rows).
    want = {"fc.weight": (3 * d, d), "blk.0.attn_norm.weight": (d,), "blk.0.attn_norm_2.weight": (d,),
            "blk.0.attn_q.weight": (2 * d, hq), "blk.0.attn_k.weight": (2 * d, hkv),
            "blk.0.attn_v.weight": (2 * d, hkv), "blk.0.attn_output.weight": (hq, d),
            "blk.0.ffn_norm.weight": (d,), "blk.0.ffn_gate.weight": (d, cfg["intermediate_size"]),
            "blk.0.ffn_up.weight": (d, cfg["intermediate_size"]), "blk.0.ffn_down.weight": (cfg["intermediate_size"], d),
            "output_norm.weight": (d,), "output.weight": (d, nd), "d2t": (nd,)}
    assert set(tensors) == set(want), f"tensors: {sorted(tensors)}"
    for name, shape in want.items():
        assert tuple(int(x) for x in tensors[name].shape) == shape, name
    assert "token_embd.weight" not in tensors  # the target's embedding is used
    from safetensors.numpy import load_file
    st = load_file(str(pipeline["export"] / "model.safetensors"))
    d2t = np.asarray(tensors["d2t"].data).reshape(-1)
    assert tensors["d2t"].tensor_type == gguf.GGMLQuantizationType.I64
    np.testing.assert_array_equal(d2t, st["d2t"] + np.arange(nd))  # absolute target ids
    assert d2t.max() < v and len(np.unique(d2t)) == nd
    np.testing.assert_array_equal(np.asarray(tensors["fc.weight"].data).reshape(d, 3 * d), st["fc.weight"])
    # q is permuted to llama.cpp's adjacent-pair rotary order; v is not.
    np.testing.assert_array_equal(np.asarray(tensors["blk.0.attn_v.weight"].data).reshape(hkv, 2 * d),
                                  st["midlayer.self_attn.v_proj.weight"])
    hd = cfg["head_dim"]
    q = st["midlayer.self_attn.q_proj.weight"].reshape(cfg["num_attention_heads"], 2, hd // 2, 2 * d)
    np.testing.assert_array_equal(np.asarray(tensors["blk.0.attn_q.weight"].data).reshape(hq, 2 * d),
                                  q.swapaxes(1, 2).reshape(hq, 2 * d))


def generated_spec(out, prompt):
    text = out.lstrip("\n")
    assert text.startswith(prompt), f"llama-speculative-simple did not echo the prompt: {text[:200]!r}"
    text = text[len(prompt):]
    for sp in SPECIAL_TEXTS:
        text = text.split(sp)[0]
    return text.rstrip("\n")


def test_greedy_eagle3_equals_target_only(pipeline, capsys):
    b = pipeline["bin"]
    common = ["-c", "512", "--temp", "0", "--seed", "0", "-t", "1", "-tb", "1", "--no-escape", "-n", str(MAX_NEW)]
    rows = []
    for prompt in PROMPTS:
        out, _ = run([os.path.join(b, "llama-completion"), "-m", pipeline["target_gguf"], "-no-cnv",
                      "--no-display-prompt", "-p", prompt] + common)
        own = out.replace(" [end of text]", "").rstrip("\n")
        out, err = run([os.path.join(b, "llama-speculative-simple"), "-m", pipeline["target_gguf"], "-md",
                        str(pipeline["draft"]), "--spec-type", "draft-eagle3", "-td", "1", "-tbd", "1",
                        "--spec-draft-n-max", str(GAMMA), "-p", prompt] + common)
        spec = generated_spec(out, prompt)
        assert len(own) > 0
        # The speculative tool may run past -n by up to a draft's length: its text starts with
        # the target's own greedy text (and equals it when the target stopped at EOS first).
        assert spec.startswith(own), f"prompt {prompt!r}:\n target-only {own!r}\n eagle3      {spec!r}"
        drafted, accepted = int(N_DRAFTED.search(err).group(1)), int(N_ACCEPT.search(err).group(1))
        assert drafted > 0, "llama.cpp drafted nothing: the EAGLE-3 drafter did not run"
        assert 0 <= accepted <= drafted
        rows.append({"prompt": prompt, "drafted": drafted, "accepted": accepted,
                     "acceptance": accepted / drafted, "same_output": True})
    total_d, total_a = sum(r["drafted"] for r in rows), sum(r["accepted"] for r in rows)
    report = {"drafter": pipeline["drafter"], "random_weights": pipeline["random"], "max_new": MAX_NEW,
              "llama_cpp": {"drafted": total_d, "accepted": total_a, "acceptance": total_a / total_d,
                            "per_prompt": rows}}
    report["augur"] = augur_eagle(pipeline, root=pipeline["export"].parent)
    if os.environ.get("AUGUR_EAGLE3_REPORT"):
        with open(os.environ["AUGUR_EAGLE3_REPORT"], "w") as f:
            json.dump(report, f, indent=2)
    with capsys.disabled():
        print(f"\nllama.cpp draft-eagle3 ({'random' if pipeline['random'] else pipeline['drafter']}): "
              f"accepted {total_a}/{total_d} drafted = {total_a / total_d:.3f} on {len(rows)} prompts, "
              "greedy output equal to target-only on all" +
              (f"; augur eagle: alpha {report['augur']['alpha']:.3f}" if "alpha" in report["augur"] else
               f"; augur: {report['augur']['skipped']}"))


def augur_eagle(pipeline, root):
    """augur's own acceptance with the same drafter on the same prompts (greedy, gamma GAMMA),
    when this augur's eval takes eagle:DIR; else why not."""
    augur = os.environ.get("AUGUR_BIN", os.path.join(ROOT, "build", "bin", "augur"))
    h = subprocess.run([augur, "eval", "--help"], capture_output=True, text=True)
    if "eagle:" not in h.stdout + h.stderr:
        return {"skipped": "this augur's eval has no eagle: drafter yet"}
    prompts = root / "prompts.jsonl"
    with open(prompts, "w") as f:
        for p in PROMPTS:
            f.write(json.dumps({"prompt": p}) + "\n")
    rdir = root / "augur-eval"
    run([augur, "eval", "--target", str(pipeline["target"]), "--drafter", f"eagle:{pipeline['drafter']}",
         "--prompts", str(prompts), "--max-new", str(MAX_NEW), "--gamma", str(GAMMA), "--temperature", "0",
         "--threads", "1", "--report", str(rdir)])
    with open(rdir / "report.json") as f:
        rep = json.load(f)
    s = rep["runs"][0]["summary"]
    return {"alpha": s["alpha"], "tau": s.get("tau"), "spec": f"eagle:{pipeline['drafter']}"}


def test_augur_drafts_the_same_after_export(pipeline):
    """augur reads its export back as the same drafter: `augur eval` with eagle:SOURCE and
    eagle:EXPORT on the same prompts proposes and accepts the same tokens and prints the same
    output (greedy). Runs once this augur's eval takes eagle:DIR."""
    augur = os.environ.get("AUGUR_BIN", os.path.join(ROOT, "build", "bin", "augur"))
    h = subprocess.run([augur, "eval", "--help"], capture_output=True, text=True)
    if "eagle:" not in h.stdout + h.stderr:
        pytest.skip("this augur's eval has no eagle: drafter yet (the lead's eval/eagle_drafter)")
    root = pipeline["export"].parent
    prompts = root / "prompts-same.jsonl"
    with open(prompts, "w") as f:
        for p in PROMPTS:
            f.write(json.dumps({"prompt": p}) + "\n")
    rdir = root / "augur-same"
    run([augur, "eval", "--target", str(pipeline["target"]), "--drafter", f"eagle:{pipeline['drafter']}",
         "--drafter", f"eagle:{pipeline['export']}", "--prompts", str(prompts), "--max-new", str(MAX_NEW),
         "--gamma", str(GAMMA), "--temperature", "0", "--threads", "1", "--report", str(rdir)])
    with open(rdir / "report.json") as f:
        runs = json.load(f)["runs"]
    assert len(runs) == 2
    a, b = runs
    for key in ("proposed", "accepted", "new_tokens"):
        if key in a["summary"]:
            assert a["summary"][key] == b["summary"][key], key
    assert a["summary"]["alpha"] == b["summary"]["alpha"]
    assert [p.get("tokens") for p in a["prompts"]] == [p.get("tokens") for p in b["prompts"]]
