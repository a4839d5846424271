"""Checkpoint interop with the real transformers (label: interop).

augur -> transformers: tests/ckpt_tool writes a random-init checkpoint; transformers loads it
with no missing/unexpected/mismatched keys and gives the same logits as augur.
transformers -> augur: small random Llama/Qwen2/Mistral models made by from_config and
save_pretrained (single file, sharded, 16-bit) load in augur with the same logits.

Tolerances: max |logits diff| <= 1e-4 whenever both sides compute in float32 from the same
weights. A checkpoint stored in 16 bits is upcast to float32 by both sides, so the same 1e-4
holds there; against the original float32 model (before rounding to 16 bits) the bound is
the looser 2e-2 (bfloat16 keeps 8 mantissa bits; these logits are O(0.1)).

Env: AUGUR_CKPT_TOOL = path of the built ckpt_tool (set by tests/checkpoint.cmake).
"""

import json
import os
import subprocess

import numpy as np
import pytest
import torch
from safetensors import safe_open
from transformers import (LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM,
                          Qwen2Config, Qwen2ForCausalLM)

TOOL = os.environ.get("AUGUR_CKPT_TOOL", "")
IDS = [1, 5, 9, 3, 17, 42, 7, 0, 95, 8, 64, 2]
TOL = 1e-4
TOL_16BIT_VS_FP32 = 2e-2

CLASSES = {
    "LlamaForCausalLM": (LlamaConfig, LlamaForCausalLM),
    "Qwen2ForCausalLM": (Qwen2Config, Qwen2ForCausalLM),
    "MistralForCausalLM": (MistralConfig, MistralForCausalLM),
}

torch.set_num_threads(2)


@pytest.fixture(scope="module", autouse=True)
def _tool_exists():
    if not TOOL or not os.path.isfile(TOOL):
        pytest.fail(f"AUGUR_CKPT_TOOL={TOOL!r} is not a built ckpt_tool; build the ckpt_tool target "
                    "(cmake --build BUILD --target ckpt_tool) and run through ctest")


def run_tool(*args):
    proc = subprocess.run([TOOL, *map(str, args)], capture_output=True, text=True)
    assert proc.returncode == 0, f"ckpt_tool {' '.join(map(str, args))} failed: {proc.stderr.strip()}"
    return proc.stdout


def augur_logits(model_dir, ids=IDS):
    out = json.loads(run_tool("logits", "--model", model_dir, "--ids", ",".join(map(str, ids))))
    logits = np.asarray(out["logits"], dtype=np.float32)
    assert list(logits.shape) == out["shape"]
    return logits


def hf_logits(model, ids=IDS):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float().numpy()


def hf_load(arch, model_dir):
    model, info = CLASSES[arch][1].from_pretrained(
        model_dir, dtype=torch.float32, attn_implementation="eager", output_loading_info=True)
    for key in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        assert not info.get(key), f"transformers loading {model_dir}: {key} = {info[key]}"
    return model.eval()


def max_diff(a, b):
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a - b).max())


def small_config(arch="LlamaForCausalLM", tied=False, **over):
    cfg = dict(architectures=[arch], vocab_size=96, hidden_size=64, intermediate_size=96,
               num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
               max_position_embeddings=128, rms_norm_eps=1e-6, tie_word_embeddings=tied,
               hidden_act="silu")
    cfg.update(over)
    return cfg




# ---- augur writes, transformers reads ---------------------------------------------------

AUGUR_WRITES = {
    "llama-tied-gqa": (small_config(tied=True), []),
    "llama-untied-gqa": (small_config(tied=False, rope_theta=500000.0), []),
    "llama-mha-bias": (small_config(num_key_value_heads=4, attention_bias=True), []),
    "llama-sharded": (small_config(tied=False), ["--shard-bytes", 20000]),
    "qwen2-tied": (small_config("Qwen2ForCausalLM", tied=True), []),
    "mistral": (small_config("MistralForCausalLM"), []),
}


@pytest.mark.parametrize("name", list(AUGUR_WRITES))
def test_augur_checkpoint_loads_in_transformers(tmp_path, name):
    cfg, extra = AUGUR_WRITES[name]
    out = tmp_path / "ckpt"
    run_tool("init", "--config", json.dumps(cfg), "--seed", 3, "--out", out, *extra)
    if "--shard-bytes" in extra:
        assert (out / "model.safetensors.index.json").is_file()
        assert not (out / "model.safetensors").exists()
    with open(out / "config.json") as f:
        written = json.load(f)
    assert written["architectures"] == cfg["architectures"]
    assert written["tie_word_embeddings"] == cfg["tie_word_embeddings"]

    model = hf_load(cfg["architectures"][0], out)
    assert model.config.tie_word_embeddings == cfg["tie_word_embeddings"]
    assert model.config.num_key_value_heads == cfg["num_key_value_heads"]
    ours = augur_logits(out)
    theirs = hf_logits(model)
    assert ours.shape == (len(IDS), cfg["vocab_size"])
    assert np.abs(theirs).max() > 1e-3  # a real signal, not all zeros
    assert max_diff(ours, theirs) <= TOL


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_augur_16bit_checkpoint_loads_in_transformers(tmp_path, dtype):
    cfg = small_config(tied=False)
    out = tmp_path / "ckpt"
    run_tool("init", "--config", json.dumps(cfg), "--seed", 4, "--out", out, "--dtype", dtype)
    with safe_open(str(out / "model.safetensors"), framework="pt") as f:
        assert f.get_tensor("lm_head.weight").dtype == getattr(torch, dtype)
        assert f.metadata()["format"] == "pt"
    model = hf_load("LlamaForCausalLM", out)
    # Both sides upcast the same 16-bit weights and compute in float32.
    assert max_diff(augur_logits(out), hf_logits(model)) <= TOL


# ---- transformers writes, augur reads ---------------------------------------------------

def make_hf_model(arch, seed=0, **over):
    cfg = small_config(arch, **over)
    cfg.pop("architectures")
    config = CLASSES[arch][0](**cfg)
    torch.manual_seed(seed)
    model = CLASSES[arch][1](config).eval()
    # from_config leaves norms at 1 and biases at 0; randomise them so that a misplaced or
    # ignored norm/bias tensor changes the logits.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(0.1 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.normal_(0.0, 0.1)
    return model


HF_WRITES = {
    "llama-untied": ("LlamaForCausalLM", dict(tied=False), {}),
    "llama-tied-rope-theta": ("LlamaForCausalLM", dict(tied=True, rope_theta=500000.0), {}),
    "llama-bias": ("LlamaForCausalLM", dict(tied=True, attention_bias=True), {}),
    "qwen2-bias": ("Qwen2ForCausalLM", dict(tied=False), {}),
    "qwen2-tied": ("Qwen2ForCausalLM", dict(tied=True), {}),
    "mistral": ("MistralForCausalLM", dict(tied=False), {}),
    "mistral-window-4": ("MistralForCausalLM", dict(tied=False, sliding_window=4), {}),
    "llama-sharded": ("LlamaForCausalLM", dict(tied=False), dict(max_shard_size=20000)),
}


@pytest.mark.parametrize("name", list(HF_WRITES))
def test_transformers_checkpoint_loads_in_augur(tmp_path, name):
    arch, over, save_kw = HF_WRITES[name]
    model = make_hf_model(arch, **over)
    out = tmp_path / "hf"
    model.save_pretrained(out, **save_kw)
    if save_kw:
        assert (out / "model.safetensors.index.json").is_file()
        assert len(list(out.glob("model-*-of-*.safetensors"))) > 1
    if arch == "Qwen2ForCausalLM":
        with safe_open(str(out / "model.safetensors"), framework="pt") as f:
            assert "model.layers.0.self_attn.q_proj.bias" in f.keys()
    ours = augur_logits(out)
    theirs = hf_logits(hf_load(arch, out))
    assert np.abs(theirs).max() > 1e-3
    assert max_diff(ours, theirs) <= TOL


def test_sliding_window_matters_in_this_test():
    """The window-4 case above is only a check if the window changes the logits."""
    a = hf_logits(make_hf_model("MistralForCausalLM", tied=False, sliding_window=4))
    b = hf_logits(make_hf_model("MistralForCausalLM", tied=False, sliding_window=4096))
    assert max_diff(a, b) > 1e-4


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_transformers_16bit_checkpoint_loads_in_augur(tmp_path, dtype):
    model = make_hf_model("LlamaForCausalLM", seed=1, tied=False)
    reference = hf_logits(model)  # float32 weights, before rounding
    out = tmp_path / "hf16"
    model.to(dtype).save_pretrained(out)
    with safe_open(str(out / "model.safetensors"), framework="pt") as f:
        assert f.get_tensor("model.embed_tokens.weight").dtype == dtype
    ours = augur_logits(out)
    # Same 16-bit weights upcast on both sides: float32 tolerance.
    assert max_diff(ours, hf_logits(hf_load("LlamaForCausalLM", out))) <= TOL
    # Against the unrounded float32 model: the stated 16-bit tolerance.
    diff = max_diff(ours, reference)
    assert 0 < diff <= TOL_16BIT_VS_FP32


def test_augur_refuses_quantized_and_reports_shape_mismatch(tmp_path):
    out = tmp_path / "ckpt"
    run_tool("init", "--config", json.dumps(small_config()), "--seed", 5, "--out", out)
    cfg = json.loads((out / "config.json").read_text())
    cfg["intermediate_size"] = 88
    (out / "config.json").write_text(json.dumps(cfg))
    proc = subprocess.run([TOOL, "logits", "--model", str(out), "--ids", "1,2"], capture_output=True, text=True)
    assert proc.returncode != 0
    assert (f"checkpoint: {out}/model.safetensors: tensor model.layers.0.mlp.gate_proj.weight has shape "
            "[96,64] but config.json implies [88,64]") in proc.stderr
    cfg["intermediate_size"] = 96
    (out / "config.json").write_text(json.dumps(cfg))
    meta = json.loads((out / "augur.json").read_text())
    meta["quantization"] = "int8"
    (out / "augur.json").write_text(json.dumps(meta))
    proc = subprocess.run([TOOL, "logits", "--model", str(out), "--ids", "1,2"], capture_output=True, text=True)
    assert proc.returncode != 0 and "is quantized (int8)" in proc.stderr
