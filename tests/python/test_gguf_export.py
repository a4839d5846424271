"""GGUF export interop (label: interop): `augur export --format gguf` read by the gguf Python
package (llama.cpp's own gguf-py) and run by llama.cpp through llama-cpp-python.

A tiny Llama (head_dim 32, GQA, untied; and a tied one) is made by transformers with random
weights (std 0.1 so that logits are decisive) next to a SentencePiece tokenizer trained by
`augur data tokenizer`. Checks:
- metadata: llama.* hyperparameters, general.file_type, the whole vocabulary (pieces, scores,
  token types from the sentencepiece package), special ids and flags;
- tensors: names and shapes as llama.cpp expects, q_proj/k_proj permuted as llama.cpp's
  convert_hf_to_gguf.py does (its formula, written out here), and per type:
  f32 bit-exact; f16 == numpy float16; q8_0/q4_0 byte-exact to gguf.quants.quantize (the
  numpy port of ggml's reference quantizers) and dequantized within the format's error:
  q8_0 |w - w'| <= 0.5625*d with d = amax/127 of the block (d/2 from rounding q, plus
  127*d*2^-11 from rounding d to fp16); q4_0 |w - w'| <= |d|*(1 + 2^-8) with d = max/-8
  (|d|, not |d|/2: the value opposite to max clamps from 8d to 7d; 8*|d|*2^-11 for fp16 d);
- llama.cpp: the f32 export's logits for a prompt equal transformers' to 1e-4 (measured 2e-6;
  the same file with q/k left unpermuted differs by ~2.7), its greedy tokens equal
  `augur generate --temperature 0 --print-ids` (same prompt ids), and it tokenizes plain text
  to augur's ids;
- bad input: unknown type/format, a quantized checkpoint, a model no weight of which can take
  q4_0, a Qwen2 checkpoint, f16 overflow -> one-line errors, exit 1, no output file.
llama-cpp-python missing: those tests skip with the reason scripts/setup.sh recorded.
"""

import json
import os
import shutil
import subprocess
import sysconfig

import numpy as np
import pytest
import sentencepiece as spm
import torch
from gguf import GGMLQuantizationType as QT
from gguf import GGUFReader
from gguf.quants import dequantize, quantize
from safetensors.torch import load_file, save_file
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

AUGUR = os.environ.get("AUGUR_BIN", "build/bin/augur")
SRC = os.environ.get("AUGUR_SOURCE_DIR", os.getcwd())
STDLIB = sysconfig.get_paths()["stdlib"]
TYPES = {"f32": QT.F32, "f16": QT.F16, "q8_0": QT.Q8_0, "q4_0": QT.Q4_0}
FILE_TYPE = {"f32": 0, "f16": 1, "q4_0": 2, "q8_0": 7}
PROMPT = "def main(args):\n    return "
N_NEW = 24

torch.set_num_threads(2)


def run(*args, check=True):
    proc = subprocess.run([AUGUR, *map(str, args)], capture_output=True, text=True)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def make_llama(root, tok, name, **over):
    cfg = dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
               num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=128,
               rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False, bos_token_id=1,
               eos_token_id=2, pad_token_id=3, initializer_range=0.1, hidden_act="silu")
    cfg.update(over)
    torch.manual_seed(5)
    model = LlamaForCausalLM(LlamaConfig(**cfg)).eval()
    with torch.no_grad():  # norms away from 1 so that a misplaced norm tensor shows
        for n, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(1 + 0.2 * torch.randn_like(p))
    out = root / name
    model.save_pretrained(out, safe_serialization=True)
    for f in ("tokenizer.model", "tokenizer_config.json"):
        shutil.copy(tok / f, out / f)
    return out, model


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("gguf")
    tok = root / "tok"
    inputs = [os.path.join(STDLIB, p) for p in ("argparse.py", "textwrap.py")]
    run("data", "tokenizer", "--input", *inputs, "--vocab-size", "512", "--out", tok, "--valid-fraction", "0")
    untied, untied_model = make_llama(root, tok, "untied")
    tied, tied_model = make_llama(root, tok, "tied", tie_word_embeddings=True)
    return {"root": root, "tok": tok, "untied": untied, "untied_model": untied_model, "tied": tied,
            "tied_model": tied_model}


def export(work, model, typ, out=None):
    out = out or work["root"] / f"{model}-{typ}.gguf"
    if not out.exists():
        proc = run("export", "--model", work[model], "--format", "gguf", "--type", typ, "--out", out)
        assert "wrote" in proc.stderr
    return out


def field(reader, key):
    return reader.fields[key].contents()


def permute(w, n_head):
    # convert_hf_to_gguf.py LlamaModel.permute (n_head already the kv count for k_proj)
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def expected_tensors(model):
    """GGUF name -> the float32 numpy array llama.cpp expects (HF weights, Q/K permuted)."""
    cfg = model.config
    out = {}
    for name, p in model.state_dict().items():
        w = p.detach().float().numpy()
        if name == "lm_head.weight" and cfg.tie_word_embeddings:
            continue
        if ".q_proj." in name:
            w = permute(w, cfg.num_attention_heads)
        elif ".k_proj." in name:
            w = permute(w, cfg.num_key_value_heads)
        gname = (name.replace("model.embed_tokens", "token_embd").replace("model.norm", "output_norm")
                 .replace("lm_head", "output").replace("model.layers.", "blk.")
                 .replace("input_layernorm", "attn_norm").replace("post_attention_layernorm", "ffn_norm")
                 .replace("self_attn.q_proj", "attn_q").replace("self_attn.k_proj", "attn_k")
                 .replace("self_attn.v_proj", "attn_v").replace("self_attn.o_proj", "attn_output")
                 .replace("mlp.gate_proj", "ffn_gate").replace("mlp.up_proj", "ffn_up")
                 .replace("mlp.down_proj", "ffn_down"))
        out[gname] = w
    return out


# ---- the gguf package reads the file -----------------------------------------------------

@pytest.mark.parametrize("typ", list(TYPES))
def test_metadata(work, typ):
    reader = GGUFReader(export(work, "untied", typ))
    cfg = work["untied_model"].config
    assert field(reader, "general.architecture") == "llama"
    assert field(reader, "general.alignment") == 32
    assert field(reader, "general.file_type") == FILE_TYPE[typ]
    assert field(reader, "general.name") == "untied"
    expect = {"llama.context_length": 128, "llama.embedding_length": 64, "llama.block_count": 2,
              "llama.feed_forward_length": 128, "llama.attention.head_count": 2,
              "llama.attention.head_count_kv": 1, "llama.rope.dimension_count": 32, "llama.vocab_size": 512,
              "llama.attention.key_length": 32}
    for k, v in expect.items():
        assert field(reader, k) == v, k
    assert field(reader, "llama.attention.layer_norm_rms_epsilon") == pytest.approx(cfg.rms_norm_eps, rel=1e-6)
    assert field(reader, "llama.rope.freq_base") == 10000.0

    sp = spm.SentencePieceProcessor(model_file=str(work["tok"] / "tokenizer.model"))
    n = sp.get_piece_size()
    assert field(reader, "tokenizer.ggml.model") == "llama"
    assert field(reader, "tokenizer.ggml.tokens") == [sp.id_to_piece(i) for i in range(n)]
    np.testing.assert_array_equal(np.asarray(field(reader, "tokenizer.ggml.scores"), np.float32),
                                  np.asarray([sp.get_score(i) for i in range(n)], np.float32))

    def sp_type(i):  # llama.cpp's convert_hf_to_gguf.py rule
        return 2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 5 if sp.is_unused(i) else 6 if sp.is_byte(i) else 1
    types = field(reader, "tokenizer.ggml.token_type")
    assert types == [sp_type(i) for i in range(n)]
    assert types.count(6) == 256 and types[:5] == [2, 3, 3, 3, 3]  # byte fallback; <unk> <s> </s> <pad> <mask>
    assert (field(reader, "tokenizer.ggml.bos_token_id"), field(reader, "tokenizer.ggml.eos_token_id"),
            field(reader, "tokenizer.ggml.unknown_token_id"), field(reader, "tokenizer.ggml.padding_token_id")) == (1, 2, 0, 3)
    assert field(reader, "tokenizer.ggml.add_bos_token") is True
    assert field(reader, "tokenizer.ggml.add_eos_token") is False
    assert field(reader, "tokenizer.ggml.add_space_prefix") is False  # augur tokenizers are verbatim


def block_scales(w, typ):
    blocks = w.reshape(-1, 32)
    if typ == "q8_0":
        return np.abs(blocks).max(axis=1) / 127
    idx = np.abs(blocks).argmax(axis=1)
    return np.abs(blocks[np.arange(len(blocks)), idx] / -8)


@pytest.mark.parametrize("typ", list(TYPES))
@pytest.mark.parametrize("model", ["untied", "tied"])
def test_tensors_dequantize_within_format_error(work, typ, model):
    reader = GGUFReader(export(work, model, typ))
    want = expected_tensors(work[f"{model}_model"])
    got = {t.name: t for t in reader.tensors}
    assert set(got) == set(want)
    assert ("output.weight" in got) == (model == "untied")
    for name, w in want.items():
        t = got[name]
        assert list(t.shape) == list(reversed(w.shape)), name  # GGML order: innermost first
        expected_type = QT.F32 if w.ndim == 1 else TYPES[typ]
        assert t.tensor_type == expected_type, (name, t.tensor_type)
        deq = dequantize(t.data, t.tensor_type).reshape(w.shape)
        if expected_type == QT.F32:
            np.testing.assert_array_equal(deq, w, err_msg=name)
        elif expected_type == QT.F16:
            np.testing.assert_array_equal(deq, w.astype(np.float16).astype(np.float32), err_msg=name)
        else:
            # Byte-exact against the gguf package's port of ggml's reference quantizer.
            ref = quantize(w, expected_type)
            assert np.array_equal(np.asarray(t.data).reshape(ref.shape), ref), f"{name}: {typ} bytes differ"
            err = np.abs(deq - w).reshape(-1, 32).max(axis=1)
            d = block_scales(w, typ)
            bound = (0.5625 * d if typ == "q8_0" else d * (1 + 2 ** -8)) + 1e-7
            assert np.all(err <= bound), f"{name}: max err/d {np.max(err / np.maximum(d, 1e-30)):.3f}"


def test_row_length_not_multiple_of_32_falls_back_to_f16(work):
    out, model = make_llama(work["root"], work["tok"], "ffn80", intermediate_size=80)
    gguf = work["root"] / "ffn80.gguf"
    proc = run("export", "--model", out, "--type", "q8_0", "--out", gguf)
    assert "blk.0.ffn_down.weight" in proc.stderr and "written as f16" in proc.stderr
    types = {t.name: t.tensor_type for t in GGUFReader(gguf).tensors}
    assert types["blk.1.ffn_down.weight"] == QT.F16  # rows of 80
    assert types["blk.1.ffn_up.weight"] == QT.Q8_0   # rows of 64
    assert types["blk.1.ffn_norm.weight"] == QT.F32


# ---- llama.cpp runs the f32 export -----------------------------------------------------------

def llama_cpp_or_skip():
    try:
        import llama_cpp  # noqa: F401
        return llama_cpp
    except Exception as e:  # ImportError, or a broken native library
        reason_file = os.path.join(SRC, ".venv", ".augur-llama-cpp-python.reason")
        reason = open(reason_file).read().strip() if os.path.isfile(reason_file) else "no reason recorded"
        pytest.skip(f"llama-cpp-python is not importable ({e}); scripts/setup.sh: {reason}")


def llama_logits_and_greedy(path, prompt_ids, n_new):
    llama_cpp = llama_cpp_or_skip()
    # f32 KV cache (its default is f16) so that llama.cpp computes in float32 throughout.
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=128, n_batch=128, n_ubatch=128, n_threads=1,
                          logits_all=True, verbose=False, seed=0, flash_attn=False,
                          type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32)
    llm.eval(prompt_ids)
    prompt_logits = np.array(llm.scores[:len(prompt_ids)], dtype=np.float32)
    ids = []
    for _ in range(n_new):
        nxt = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        ids.append(nxt)
        llm.eval([nxt])
    return llm, prompt_logits, ids


@pytest.mark.parametrize("model", ["untied", "tied"])
def test_llama_cpp_matches_transformers_and_augur_greedy(work, model):
    llama_cpp_or_skip()
    gguf = export(work, model, "f32")
    gen = json.loads(run("generate", "--model", work[model], "--prompt", PROMPT, "--temperature", "0",
                         "--max-new", N_NEW, "--ignore-eos", "--print-ids", "--threads", "1").stdout)
    prompt_ids, augur_ids = gen["prompt_ids"], gen["ids"]
    assert prompt_ids[0] == 1 and len(augur_ids) == N_NEW
    llm, logits, llama_ids = llama_logits_and_greedy(gguf, prompt_ids, N_NEW)

    hf = work[f"{model}_model"]
    with torch.no_grad():
        ref = hf(torch.tensor([prompt_ids + augur_ids])).logits[0].numpy()
    diff = float(np.abs(logits - ref[:len(prompt_ids)]).max())
    assert diff < 1e-4, f"llama.cpp vs transformers logits differ by {diff}"
    # The greedy choice must be decisive for the comparison to mean anything.
    top2 = np.sort(ref[len(prompt_ids) - 1:-1], axis=-1)[:, -2:]
    assert float((top2[:, 1] - top2[:, 0]).min()) > 1e-3
    assert len(set(augur_ids)) > 3, augur_ids  # not one token repeated
    assert llama_ids == augur_ids

    # Tokenization of plain text agrees too (llama.cpp's SentencePiece-style tokenizer).
    for text in ("x = 1", "def f(a, b):"):
        ours = json.loads(run("data", "encode", "--tokenizer", work["tok"], "--text", text).stdout)
        assert llm.tokenize(text.encode(), add_bos=False, special=False) == ours, text

    if model == "untied":
        # Control: the same file with q_proj/k_proj left in HF's row order gives other logits
        # (measured: max diff ~2.7), so the comparison above does check the permutation.
        bad = work["root"] / "unpermuted.gguf"
        shutil.copy(gguf, bad)
        state = hf.state_dict()
        data = np.memmap(bad, dtype=np.uint8, mode="r+")
        for t in GGUFReader(gguf).tensors:
            for hf_name, gguf_name in (("self_attn.q_proj", "attn_q"), ("self_attn.k_proj", "attn_k")):
                if t.name.endswith(f".{gguf_name}.weight"):
                    layer = t.name.split(".")[1]
                    raw = state[f"model.layers.{layer}.{hf_name}.weight"].numpy().astype(np.float32).tobytes()
                    data[t.data_offset:t.data_offset + len(raw)] = np.frombuffer(raw, np.uint8)
        data.flush()
        del data
        _, bad_logits, _ = llama_logits_and_greedy(bad, prompt_ids, 0)
        assert float(np.abs(bad_logits - ref[:len(prompt_ids)]).max()) > 0.1


# ---- bad input ---------------------------------------------------------------------------

def one_line_error(proc, needle):
    assert proc.returncode == 1, proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("augur export: "), proc.stderr
    assert needle in lines[0], lines[0]


def test_bad_inputs(work, tmp_path):
    out = tmp_path / "x.gguf"
    one_line_error(run("export", "--model", work["untied"], "--type", "q5_k", "--out", out, check=False),
                   "unknown GGUF tensor type 'q5_k'")
    one_line_error(run("export", "--model", work["untied"], "--format", "onnx", "--out", out, check=False),
                   "unknown export format")

    quant = tmp_path / "quantized"
    shutil.copytree(work["untied"], quant)
    (quant / "augur.json").write_text(json.dumps({"format_version": 1, "kind": "ar-drafter",
                                                  "quantization": "int4-g32"}))
    one_line_error(run("export", "--model", quant, "--out", out, check=False),
                   "is a quantized checkpoint (int4-g32); export the float32 checkpoint")

    narrow, _ = make_llama(tmp_path, work["tok"], "narrow", hidden_size=48, intermediate_size=80,
                           num_attention_heads=2, num_key_value_heads=2)
    one_line_error(run("export", "--model", narrow, "--type", "q4_0", "--out", out, check=False),
                   "--type q4_0 needs weight rows whose length is a multiple of 32")

    torch.manual_seed(0)
    qwen = tmp_path / "qwen"
    Qwen2ForCausalLM(Qwen2Config(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                                 num_attention_heads=2, num_key_value_heads=1)).save_pretrained(qwen)
    shutil.copy(work["tok"] / "tokenizer.model", qwen / "tokenizer.model")
    one_line_error(run("export", "--model", qwen, "--out", out, check=False),
                   "architecture Qwen2ForCausalLM is not supported")

    big = tmp_path / "big"
    shutil.copytree(work["untied"], big)
    weights = load_file(big / "model.safetensors")
    weights["model.layers.0.mlp.up_proj.weight"][3, 5] = 1e5
    save_file(weights, big / "model.safetensors", metadata={"format": "pt"})
    one_line_error(run("export", "--model", big, "--type", "f16", "--out", out, check=False),
                   "beyond float16's 65504; export with --type f32")
    run("export", "--model", big, "--type", "f32", "--out", out)  # f32 takes it
    out.unlink()
    assert not any(p.name.startswith("x.gguf") for p in tmp_path.iterdir())
