"""`augur import` of the real SmolLM2-135M-Instruct GGUF (labels: model, interop).

Reference: transformers loading the same GGUF (`gguf_file=`, which dequantizes with the gguf
package and undoes llama.cpp's q/k permutation in its own code). Checks:
- the imported directory loads in transformers with from_pretrained(DIR) as it is, and every
  tensor equals transformers' GGUF load bit for bit (both are float32 dequantizations of the
  same blocks; the q/k rows only move);
- augur's own forward (ckpt_tool logits) on the imported directory vs transformers' GGUF model:
  max |logit difference| <= 1e-4 in float32 on several prompts (accumulation order differs);
- greedy continuations of `augur generate --temperature 0` are transformers' argmax at every
  position (teacher-forced), near ties (top two within 1e-3) excepted;
- config.json, generation_config.json, tokenizer_config.json (chat template) and augur.json
  (source, sha256) carry what the GGUF says;
- bad input (truncated, bad magic, unsupported architecture, a tensor missing, a metadata key of
  the wrong type, an existing output): exit code 1, one line naming the file, no output left.
"""

import hashlib
import json
import os
import shutil
import struct
import subprocess

import numpy as np
import pytest
import torch

from smollm2 import require_gguf

AUGUR = os.environ.get("AUGUR_BIN", "build/bin/augur")
CKPT_TOOL = os.environ.get("AUGUR_CKPT_TOOL", "build/tests/ckpt_tool")
PROMPTS = ["def fibonacci(n):\n    ", "The capital of France is", "<|im_start|>user\nWrite a haiku about rain.<|im_end|>\n<|im_start|>assistant\n",
           "import numpy as np\nx = np.arange(10)\nprint(x."]

torch.set_num_threads(2)


def run(*args, check=True):
    proc = subprocess.run([AUGUR, *map(str, args)], capture_output=True, text=True)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def gguf():
    return require_gguf()


@pytest.fixture(scope="module")
def imported(gguf, tmp_path_factory):
    out = tmp_path_factory.mktemp("import") / "smollm2"
    proc = run("import", "--gguf", gguf, "--out", out, "--quiet")
    assert proc.stderr == ""
    return out


@pytest.fixture(scope="module")
def hf_gguf(gguf):
    from transformers import AutoModelForCausalLM
    d, f = os.path.split(gguf)
    return AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32).eval()


@pytest.fixture(scope="module")
def tokenizer(imported):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(imported)


def test_files_and_metadata(imported, gguf):
    for f in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
              "generation_config.json", "augur.json"):
        assert (imported / f).is_file(), f
    cfg = json.loads((imported / "config.json").read_text())
    assert cfg["architectures"] == ["LlamaForCausalLM"]
    assert (cfg["num_hidden_layers"], cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"],
            cfg["intermediate_size"], cfg["vocab_size"]) == (30, 576, 9, 3, 1536, 49152)
    assert cfg["rope_theta"] == 100000.0 and cfg["tie_word_embeddings"] is True
    assert cfg["max_position_embeddings"] == 8192
    gen = json.loads((imported / "generation_config.json").read_text())
    assert (gen["bos_token_id"], gen["eos_token_id"]) == (1, 2)
    tc = json.loads((imported / "tokenizer_config.json").read_text())
    assert tc["eos_token"] == "<|im_end|>" and tc["bos_token"] == "<|im_start|>"
    assert tc["add_bos_token"] is False
    assert tc["chat_template"].startswith("{% for message in messages %}")
    meta = json.loads((imported / "augur.json").read_text())
    assert meta["kind"] == "target"
    imp = meta["extra"]["import"]
    with open(gguf, "rb") as fh:
        assert imp["sha256"] == hashlib.sha256(fh.read()).hexdigest()
    assert imp["source"] == gguf and imp["gguf_version"] == 3 and imp["tokenizer_pre"] == "smollm"
    assert imp["tensor_types"] == {"f32": 61, "q4_1": 210, "q8_0": 1}


def test_tensors_equal_transformers_gguf_load(imported, hf_gguf):
    from safetensors.torch import load_file
    ours = load_file(imported / "model.safetensors")
    ref = {k: v for k, v in hf_gguf.state_dict().items() if k != "lm_head.weight"}
    assert set(ours) == set(ref)
    for name, t in ref.items():
        assert ours[name].dtype == torch.float32
        assert torch.equal(ours[name], t), name


def test_transformers_loads_the_directory(imported, hf_gguf, tokenizer):
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(imported, torch_dtype=torch.float32).eval()
    ids = torch.tensor([tokenizer(PROMPTS[0])["input_ids"]])
    with torch.no_grad():
        a = model(ids).logits
        b = hf_gguf(ids).logits
    assert torch.equal(a, b)


def augur_logits(model_dir, ids):
    proc = subprocess.run([CKPT_TOOL, "logits", "--model", str(model_dir), "--ids", ",".join(map(str, ids))],
                          capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    return np.array(out["logits"], dtype=np.float32).reshape(out["shape"])


@pytest.mark.parametrize("prompt", PROMPTS)
def test_augur_logits_match_transformers(imported, hf_gguf, tokenizer, prompt):
    ids = tokenizer(prompt)["input_ids"]
    with torch.no_grad():
        ref = hf_gguf(torch.tensor([ids])).logits[0].double().numpy()
    ours = augur_logits(imported, ids)
    diff = np.abs(ours - ref).max()
    assert diff <= 1e-4, f"max |logit diff| {diff:.3g} (logit scale {np.abs(ref).max():.1f})"


NEAR_TIE = 1e-3  # logits closer than this are a tie between fp32 implementations (accumulation order)


@pytest.mark.parametrize("prompt", PROMPTS[:3])
def test_greedy_continuation_equals_transformers(imported, hf_gguf, tokenizer, prompt):
    """augur's greedy tokens, teacher-forced through transformers: every token is transformers'
    argmax at its position, except where transformers' own top two are within NEAR_TIE (a tie
    either engine may break either way; then augur's token must be one of the tied ones).
    transformers' generate() is not the reference: its cached decode path differs from its own
    full forward by more than that (measured: on the haiku prompt its 4th token is not in the
    full forward's top 3, whose logits lie within 0.02)."""
    n_new = 32
    ids = tokenizer(prompt)["input_ids"]
    proc = run("generate", "--model", imported, "--prompt", prompt, "--max-new", n_new, "--temperature", "0",
               "--print-ids", "--ignore-eos")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["prompt_ids"] == ids
    ours = out["ids"]
    assert len(ours) == n_new
    with torch.no_grad():
        logits = hf_gguf(torch.tensor([ids + ours])).logits[0, len(ids) - 1:-1].double()
    ties = 0
    for i, tok in enumerate(ours):
        row = logits[i]
        top2 = row.topk(2).values
        tied = float(top2[0] - top2[1]) < NEAR_TIE
        if tied:
            ties += 1
            assert float(row.max() - row[tok]) < NEAR_TIE, f"position {i}: {tok} is not among the tied tokens"
        else:
            assert tok == int(row.argmax()), f"position {i}: augur {tok}, transformers {int(row.argmax())}"
    assert ties <= 2


# ---- bad input ---------------------------------------------------------------------------

def expect_error(tmp_path, gguf_file, *needles):
    out = tmp_path / "out"
    proc = run("import", "--gguf", gguf_file, "--out", out, check=False)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    assert not out.exists()
    assert not any(p.name.startswith("out.tmp") for p in tmp_path.iterdir())
    return lines[0]


def test_truncated(tmp_path, gguf):
    bad = tmp_path / "cut.gguf"
    with open(gguf, "rb") as fh:
        bad.write_bytes(fh.read(os.path.getsize(gguf) // 2))
    expect_error(tmp_path, bad, str(bad), "past the end of the file")


def test_bad_magic(tmp_path):
    bad = tmp_path / "magic.gguf"
    bad.write_bytes(b"GGUX" + b"\0" * 60)
    expect_error(tmp_path, bad, str(bad), "magic")


def write_small(path, arch="llama", drop=None, wrong_type=None):
    """A 1-layer GGUF in the llama layout made by the gguf package (random f32 weights)."""
    import gguf as g
    w = g.GGUFWriter(str(path), arch)
    d, ff, v = 64, 128, 300
    if wrong_type != "block_count":
        w.add_block_count(1)
    else:
        w.add_string(f"{arch}.block_count", "one")
    w.add_context_length(128)
    w.add_embedding_length(d)
    w.add_feed_forward_length(ff)
    w.add_head_count(2)
    w.add_head_count_kv(1)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt2")
    toks = [bytes([b]).decode("latin-1") for b in range(256)]
    byte_map = {}
    cs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    bs = cs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    toks = [chr(c) for _, c in sorted(zip(bs, cs))]
    toks += ["\u0120t"] + [f"<x{i}>" for i in range(v - 256 - 2)] + ["<|endoftext|>"]
    w.add_token_list(toks)
    w.add_token_merges(["\u0120 t"])
    w.add_token_types([1] * (v - 1) + [3])
    w.add_eos_token_id(v - 1)
    rng = np.random.default_rng(0)
    shapes = {"token_embd.weight": (v, d), "output_norm.weight": (d,), "blk.0.attn_norm.weight": (d,),
              "blk.0.attn_q.weight": (d, d), "blk.0.attn_k.weight": (32, d), "blk.0.attn_v.weight": (32, d),
              "blk.0.attn_output.weight": (d, d), "blk.0.ffn_norm.weight": (d,), "blk.0.ffn_gate.weight": (ff, d),
              "blk.0.ffn_up.weight": (ff, d), "blk.0.ffn_down.weight": (d, ff)}
    for name, shape in shapes.items():
        if name != drop:
            w.add_tensor(name, rng.standard_normal(shape).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_small_file_imports(tmp_path):
    src = write_small(tmp_path / "ok.gguf")
    out = tmp_path / "okdir"
    run("import", "--gguf", src, "--out", out, "--quiet")
    from transformers import AutoModelForCausalLM
    AutoModelForCausalLM.from_pretrained(out)


def test_unsupported_architecture(tmp_path):
    src = write_small(tmp_path / "gemma.gguf", arch="gemma3")
    expect_error(tmp_path, src, str(src), "architecture 'gemma3' is not supported")


def test_missing_tensor(tmp_path):
    src = write_small(tmp_path / "drop.gguf", drop="blk.0.ffn_up.weight")
    expect_error(tmp_path, src, str(src), "tensor count disagrees", "blk.0.ffn_up.weight")


def test_metadata_wrong_type(tmp_path):
    src = write_small(tmp_path / "type.gguf", wrong_type="block_count")
    expect_error(tmp_path, src, str(src), "llama.block_count")


def test_output_exists(tmp_path, imported, gguf):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    proc = run("import", "--gguf", gguf, "--out", out, check=False)
    assert proc.returncode == 1 and "exists and is not empty" in proc.stderr
    assert (out / "keep.txt").read_text() == "mine"
