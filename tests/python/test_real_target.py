"""Every command on a real target (labels: model, interop): the imported SmolLM2-135M-Instruct,
and the same model as a Hugging Face directory that transformers saved itself.

On each, with small settings: data encode / data build with the checkpoint's BPE tokenizer,
generate (--prompt and --chat), distill gen on JSONL prompts of both kinds ("prompt" and
"messages"), distill ar and nat from 2 of the target's layers (the NAT drafter gets a reserved
special token as its mask, recorded in augur.json), quantize, data datastore, and eval with
every drafter kind and a tree, greedy, with --check (speculative output equal to the target's
own, token for token). Then the round trip GGUF -> import -> export --format gguf -> llama.cpp
gives augur's greedy tokens, and encodes text to augur's ids.
"""

import json
import os
import subprocess

import pytest

from smollm2 import require_gguf

AUGUR = os.environ.get("AUGUR_BIN", "build/bin/augur")
CHAT = "Write a Python function that adds two numbers."
CODE = "def add(a, b):\n    "


def run(*args, check=True, env=None):
    proc = subprocess.run([AUGUR, *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    if check:
        assert proc.returncode == 0, f"augur {' '.join(map(str, args))}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("real")


@pytest.fixture(scope="module")
def imported(root):
    out = root / "smollm2"
    run("import", "--gguf", require_gguf(), "--out", out, "--quiet")
    return out


@pytest.fixture(scope="module")
def hf_saved(root, imported):
    """A directory transformers wrote itself: its save_pretrained of the model (loaded from the
    imported directory: a model loaded with gguf_file= is marked quantized and cannot be saved)
    and of the tokenizer transformers converts from the GGUF (its own tokenizer.json, without
    SmolLM's digit splitting, and its own tokenizer_config.json / chat template files)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    path = require_gguf()
    d, f = os.path.split(path)
    out = root / "hf"
    model = AutoModelForCausalLM.from_pretrained(imported, torch_dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    assert (out / "tokenizer.json").is_file() and not (out / "tokenizer.model").exists()
    return out


@pytest.fixture(scope="module")
def prompts(root):
    p = root / "prompts.jsonl"
    rows = [{"prompt": CODE}, {"messages": [{"role": "user", "content": CHAT}]},
            {"prompt": "import os\n\ndef list_files(path):\n"},
            {"messages": [{"role": "user", "content": "Rewrite with type hints:\n```python\ndef f(x):\n    return x * 2\n```"}]}]
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return p


def test_data_encode_and_build(imported, root):
    ids = json.loads(run("data", "encode", "--tokenizer", imported, "--text", "x = 12345\n").stdout)
    from transformers import AutoTokenizer
    hf = AutoTokenizer.from_pretrained(imported)
    assert ids == hf("x = 12345\n")["input_ids"]
    corpus = root / "corpus"
    corpus.mkdir()
    for i in range(12):
        (corpus / f"m{i}.py").write_text(f"def f{i}(x):\n    return x + {i}\n\n" * 20)
    run("data", "build", "--tokenizer", imported, "--input", corpus, "--out", root / "corpus.h5",
        "--valid-fraction", "0.2")
    run("data", "datastore", "--store", root / "corpus.h5", "--out", root / "ds.h5")


def test_generate_prompt_and_chat(imported):
    out = run("generate", "--model", imported, "--prompt", CODE, "--max-new", "8", "--temperature", "0",
              "--print-ids")
    assert len(json.loads(out.stdout)["ids"]) == 8
    chat = run("generate", "--model", imported, "--chat", CHAT, "--max-new", "48", "--temperature", "0",
               "--print-ids")
    got = json.loads(chat.stdout)
    from transformers import AutoTokenizer
    hf = AutoTokenizer.from_pretrained(imported)
    want = hf.apply_chat_template([{"role": "user", "content": CHAT}], add_generation_prompt=True, tokenize=True)
    if hasattr(want, "keys"):  # transformers 5 returns a BatchEncoding
        want = want["input_ids"]
    assert got["prompt_ids"] == list(want)
    assert 0 < len(got["ids"]) <= 48


@pytest.mark.parametrize("which", ["imported", "hf_saved"])
def test_pipeline(request, which, root, prompts):
    target = request.getfixturevalue(which)
    w = root / f"run-{which}"
    w.mkdir()
    run("distill", "gen", "--target", target, "--prompts", prompts, "--out", w / "teacher.h5", "--max-new", "24",
        "--mode", "greedy", "--top-k", "8", "--batch", "4", "--no-progress")
    common = ["--target", target, "--teacher", w / "teacher.h5", "--student", "target", "--init", "target",
              "--init-layers", "0,29", "--steps", "2", "--batch", "2", "--seq-len", "48", "--eval-every", "2", "--eval-sequences", "1",
              "--quiet"]
    run("distill", "ar", *common, "--out", w / "ar")
    run("distill", "nat", *common, "--gamma", "3", "--out", w / "nat")
    meta = json.loads((w / "nat" / "augur.json").read_text())
    mask = meta["mask_token_id"]
    assert meta["extra"]["mask_token"]["id"] == mask and meta["extra"]["mask_token"]["text"].startswith("<")
    run("quantize", "--model", w / "ar", "--scheme", "int8", "--out", w / "ar-int8")
    report = w / "report"
    run("eval", "--target", target, "--drafter", "prompt-lookup", "--drafter", f"ar:{w / 'ar'}",
        "--drafter", f"ar:{w / 'ar-int8'}", "--drafter", f"nat:{w / 'nat'}",
        "--drafter", f"prompt-lookup+ar:{w / 'ar'}", "--prompts", prompts, "--max-new", "24", "--gamma", "3",
        "--temperature", "0", "--check", "--report", report)
    rep = json.loads((report / "report.json").read_text())
    assert len(rep["runs"]) == 5
    assert rep["check"]["ran"] is True
    assert rep["check"]["passed"] is True, rep["check"]["first_mismatch"]


def test_export_round_trip_llama_cpp(imported, root):
    try:
        import llama_cpp
    except ImportError:
        pytest.skip("llama-cpp-python is not installed (scripts/setup.sh builds it)")
    out = root / "rt.gguf"
    run("export", "--model", imported, "--format", "gguf", "--type", "f32", "--out", out, "--quiet")
    llm = llama_cpp.Llama(model_path=str(out), n_ctx=256, n_threads=2, verbose=False, logits_all=False)
    text = "def fibonacci(n):\n    "
    gen = json.loads(run("generate", "--model", imported, "--prompt", text, "--max-new", "16", "--temperature", "0",
                         "--print-ids").stdout)
    ids = llm.tokenize(text.encode(), add_bos=False, special=True)
    assert ids == gen["prompt_ids"]
    got = []
    for tok in llm.generate(ids, temp=0.0, top_k=1, reset=True):
        got.append(tok)
        if len(got) == 16:
            break
    assert got == gen["ids"]
