"""A random-weight augur eagle-drafter checkpoint (augur.json kind "eagle-drafter"), sized for a
target given as a Hugging Face directory, in the tensor layout of docs/FORMATS.md ("EAGLE-3
export"). Stands in for `augur distill eagle` output in the interop tests and works alone:

    python tests/python/eagle3_checkpoint.py --target TARGET_DIR --out DIR [--draft-vocab 8192]

The draft vocabulary is a seeded random subset of the target's ids (sorted), so d2t holds
offsets of both signs, as a real frequency-ranked one does."""

import argparse
import json
import os

import torch
from safetensors.torch import save_file


def default_layers(num_layers):
    """The three taps every engine defaults to: [2, L//2, L-3] (inputs of those target layers)."""
    return [2, num_layers // 2, num_layers - 3]


def write_random_eagle(out_dir, target_dir, draft_vocab=8192, layers=None, seed=0, scale=0.02):
    with open(os.path.join(target_dir, "config.json")) as f:
        t = json.load(f)
    d = t["hidden_size"]
    heads, kv = t["num_attention_heads"], t["num_key_value_heads"]
    hd = t.get("head_dim") or d // heads
    ff, vocab, n_layers = t["intermediate_size"], t["vocab_size"], t["num_hidden_layers"]
    layers = layers or default_layers(n_layers)
    g = torch.Generator().manual_seed(seed)

    def w(*shape):
        return (scale * torch.randn(*shape, generator=g)).contiguous()

    def norm(n):
        return (1.0 + 0.05 * torch.randn(n, generator=g)).contiguous()

    ids = torch.randperm(vocab, generator=g)[:draft_vocab].sort().values
    t2d = torch.zeros(vocab, dtype=torch.bool)
    t2d[ids] = True
    tensors = {
        "fc.weight": w(d, 3 * d),
        "midlayer.input_layernorm.weight": norm(d),
        "midlayer.hidden_norm.weight": norm(d),
        "midlayer.self_attn.q_proj.weight": w(heads * hd, 2 * d),
        "midlayer.self_attn.k_proj.weight": w(kv * hd, 2 * d),
        "midlayer.self_attn.v_proj.weight": w(kv * hd, 2 * d),
        "midlayer.self_attn.o_proj.weight": w(d, heads * hd),
        "midlayer.post_attention_layernorm.weight": norm(d),
        "midlayer.mlp.gate_proj.weight": w(ff, d),
        "midlayer.mlp.up_proj.weight": w(ff, d),
        "midlayer.mlp.down_proj.weight": w(d, ff),
        "norm.weight": norm(d),
        "lm_head.weight": w(draft_vocab, d),
        "d2t": (ids - torch.arange(draft_vocab)).to(torch.int64),
        "t2d": t2d,
    }
    os.makedirs(out_dir, exist_ok=True)
    save_file(tensors, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    # config.json as augur's eagle-drafter checkpoint has it (core/eagle_config: the serving
    # layout plus augur_target_num_layers).
    config = {"architectures": ["LlamaForCausalLMEagle3"], "model_type": "llama", "hidden_size": d,
              "intermediate_size": ff, "num_attention_heads": heads, "num_key_value_heads": kv,
              "head_dim": hd, "num_hidden_layers": 1, "rms_norm_eps": t.get("rms_norm_eps", 1e-5),
              "rope_theta": t.get("rope_theta", 10000.0),
              "max_position_embeddings": t.get("max_position_embeddings", 2048), "vocab_size": vocab,
              "draft_vocab_size": draft_vocab, "target_hidden_size": d, "hidden_act": "silu",
              "tie_word_embeddings": False, "attention_bias": False, "torch_dtype": "float32",
              "eagle_aux_hidden_state_layer_ids": layers, "augur_target_num_layers": n_layers}
    for k in ("bos_token_id", "eos_token_id"):
        if isinstance(t.get(k), int):
            config[k] = t[k]
    meta = {"format_version": 1, "kind": "eagle-drafter", "quantization": None,
            "provenance": {"command_line": f"tests/python/eagle3_checkpoint.py (random, seed {seed})"},
            "extra": {"eagle": {"target_layers": layers, "target_hidden_size": d,
                                "target_num_layers": n_layers, "target_vocab_size": vocab}}}
    for name, obj in (("config.json", config), ("augur.json", meta)):
        with open(os.path.join(out_dir, name), "w") as f:
            json.dump(obj, f, indent=2)
    return {"layers": layers, "draft_ids": ids.tolist(), "vocab": vocab, "hidden": d}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", required=True, help="the target as a Hugging Face directory (config.json)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--draft-vocab", type=int, default=8192)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    info = write_random_eagle(a.out, a.target, a.draft_vocab, seed=a.seed)
    print(f"wrote {a.out}: layers {info['layers']}, draft vocab {a.draft_vocab} of {info['vocab']}")


if __name__ == "__main__":
    main()
