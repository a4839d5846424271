#!/usr/bin/env python3
"""Peers side by side: augur against llama.cpp and transformers on the same prompts, lengths,
thread counts and weights, greedy (issue 11, "Peers side by side"). Entry: scripts/bench_peers.sh.

    scripts/bench_peers.sh                                   # the full benchmark (README: time)
    scripts/bench_peers.sh --prompts-limit 2 --max-new 16    # smoke run
    scripts/bench_peers.sh --only llama,hf --threads 2       # some engines, one thread count

Every engine sees the same token sequences: each line of the prompts file is rendered once
("messages" with the target's chat template through transformers' apply_chat_template, with
the generation prompt; "prompt" as it is) and tokenized by transformers. llama.cpp gets the
rendered text with special-token parsing and escapes off (-p TEXT --no-escape) and augur gets
it as a "prompt" line; the ids each one used are checked against transformers' (llama.cpp:
the ids llama-completion prints with --verbose-prompt and the counts the speculative tools
print; augur: `augur data encode` and report.json's prompt_tokens) and every mismatch is
reported. Generation is greedy, stops at EOS (augur --stop-at-eos), at most --max-new tokens.

What runs (each at every --threads):
  llama.cpp (scripts/build_llamacpp.sh: the source llama-cpp-python vendors, AVX-512/VNNI/BF16
  on, AMX off): llama-bench tg/pp at F32/F16/Q8_0/Q4_0 of the target; on the prompts, at F32
  (and Q8_0/Q4_0 where augur runs int8/int4-g32: --llama-spec-bits): llama-completion
  target-only, llama-speculative-simple with augur's AR drafter as an F32 GGUF (draft max =
  --gamma, and its defaults), llama-lookup (prompt n-grams; --gamma and its defaults), and with an
  EAGLE-3 drafter (--drafter-eagle: an augur eagle-drafter checkpoint) llama-speculative-simple
  --spec-type draft-eagle3 with it (augur export --format eagle3, then convert_hf_to_gguf.py
  --target-model-dir TARGET, F32; draft max = --gamma).
  transformers: greedy generate target-only; assisted generation with the AR drafter
  (assistant_model; --gamma tokens fixed, and transformers' default schedule);
  prompt_lookup_num_tokens (--gamma and 10).
  augur: `augur eval` target-only and prompt-lookup, n-gram, AR, AR int4, NAT and the tree of
  the fp32 ones (as scripts/quickstart.sh), eagle:DIR beside them when --drafter-eagle is given
  and this augur's eval takes it (not in the tree), with the target as saved and, where eval has
  --target-quant, at int8 and int4-g32 (--augur-quant); --augur-engine E adds --target-engine E.

tokens/s is the decode rate, prompt processing excluded, for every row: llama.cpp's own
printout (llama-bench avg_ts, "decoded N tokens in S seconds", the eval-time line of
llama_perf); transformers (new tokens - 1) / (time after the first new token); augur
new_tokens / (total_s - prefill_s) from report.json (its end-to-end tokens_per_s is kept in
the JSON). "x own" is each row over its engine's target-only row at the same bits and
threads; "same output" counts the prompts whose greedy output equals that target-only's
(tokens; llama.cpp: printed text, on the common prefix since its speculative tools may run a
draft past -n); "augur/peer" is augur's comparable row (same pair kind: target-only, prefill,
AR drafter, prompt lookup; same bits class: F32/F16 ~ fp32, Q8_0 ~ int8, Q4_0 ~ int4-g32; same
threads) over the peer's. "acceptance" is accepted / drafted tokens (llama.cpp: its n_accept /
n_drafted; augur: alpha). Target-only outputs are also compared across engines with
transformers' and printed.

Writes OUT/peers.json and OUT/peers.md (OUT = --out, default the run directory) and prints the
table. GGUFs are cached in RUN/peers/gguf/, raw logs and reports in OUT/peers-raw/.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GGUF_BITS = ["F32", "F16", "Q8_0", "Q4_0"]
# Rows compare across engines within one class of bits (issue 11: F32/F16 vs augur fp32, Q8_0
# vs int8, Q4_0 vs int4-g32, both blocks of 32).
BITS_CLASS = {"F32": "fp32", "F16": "fp32", "fp32": "fp32", "Q8_0": "8-bit", "int8": "8-bit",
              "Q4_0": "4-bit/32", "int4-g32": "4-bit/32"}


def log(msg):
    print(f"bench_peers: {msg}", file=sys.stderr, flush=True)


def die(msg):
    log(msg)
    sys.exit(1)


def run(cmd, log_path=None, timeout=3600, env=None):
    """Runs cmd (a list), returns (rc, stdout, stderr); keeps both in log_path."""
    t0 = time.time()
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace",
                       timeout=timeout, env=env)
    if log_path:
        with open(log_path, "w") as f:
            f.write("$ " + " ".join(cmd) + f"\n# rc {p.returncode}, {time.time() - t0:.1f} s\n")
            f.write("## stdout\n" + p.stdout + "\n## stderr\n" + p.stderr)
    return p.returncode, p.stdout, p.stderr


def file_sig(path):
    st = os.stat(path)
    return {"path": os.path.abspath(path), "size": st.st_size, "mtime": int(st.st_mtime)}


# ----------------------------------------------------------------------------- prompts

def load_prompts(args, tok):
    prompts = []
    with open(args.prompts) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            o = json.loads(line)
            if "messages" in o:
                text = tok.apply_chat_template(o["messages"], add_generation_prompt=True, tokenize=False)
                ids = tok(text, add_special_tokens=False)["input_ids"]
                direct = tok.apply_chat_template(o["messages"], add_generation_prompt=True, tokenize=True)
                if hasattr(direct, "keys"):
                    direct = direct["input_ids"]
                if list(direct) != ids:
                    die(f"{args.prompts}:{n}: the rendered chat tokenizes differently from apply_chat_template's ids")
                bos = False  # the template writes its own
            elif "prompt" in o:
                text = o["prompt"]
                ids = tok(text)["input_ids"]  # the tokenizer's own BOS rule, as llama.cpp's add_special
                bos = ids[:1] == [tok.bos_token_id] and tok(text, add_special_tokens=False)["input_ids"][:1] != ids[:1]
            else:
                die(f"{args.prompts}:{n}: neither \"prompt\" nor \"messages\"")
            prompts.append({"index": len(prompts), "source": f"{args.prompts}:{n}", "kind": o.get("kind", ""),
                            "text": text, "ids": ids, "bos_added": bos})
            if args.prompts_limit and len(prompts) >= args.prompts_limit:
                break
    if not prompts:
        die(f"{args.prompts}: no prompts")
    return prompts


def first_diff(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


class TokenCheck:
    """Per engine, which prompts' ids differ from transformers' (the reference)."""

    def __init__(self):
        self.items = {}

    def add(self, engine, prompt, ids=None, count=None, how=""):
        ref = prompt["ids"]
        if ids is not None:
            d = first_diff(list(ids), ref)
            ok = d is None
            why = "" if ok else f"ids differ at {d} ({len(ids)} vs {len(ref)} tokens)"
        else:
            ok = count == len(ref)
            why = "" if ok else f"{count} tokens vs {len(ref)}"
        e = self.items.setdefault(engine, {"checked": 0, "mismatches": [], "how": set()})
        e["checked"] += 1
        e["how"].add(how)
        if not ok:
            e["mismatches"].append({"prompt": prompt["index"], "source": prompt["source"], "how": how, "why": why})

    def summary(self):
        return {k: {"checked": v["checked"], "how": sorted(v["how"]), "mismatches": v["mismatches"]}
                for k, v in self.items.items()}


# ----------------------------------------------------------------------------- llama.cpp

def make_ggufs(args, llama_bin, raw):
    """F32 of the target with llama.cpp's converter, F16/Q8_0/Q4_0 by llama-quantize, the AR
    drafter as F32 (augur export, else the converter). Cached in RUN/peers/gguf."""
    gdir = os.path.join(args.run_dir, "peers", "gguf")
    os.makedirs(gdir, exist_ok=True)
    src = llama_src(args)
    convert = os.path.join(src, "convert_hf_to_gguf.py")
    notes = {}

    def fresh(out, source):
        meta = out + ".source.json"
        if not (os.path.exists(out) and os.path.exists(meta)):
            return False
        with open(meta) as f:
            return json.load(f) == source

    def mark(out, source):
        with open(out + ".source.json", "w") as f:
            json.dump(source, f)

    def convert_hf(model_dir, out, logname, extra=()):
        env = dict(os.environ, PYTHONPATH=os.path.join(src, "gguf-py"))  # the vendored gguf-py
        rc, _, err = run([sys.executable, convert, model_dir, *extra, "--outtype", "f32", "--outfile", out + ".tmp"],
                         os.path.join(raw, logname), env=env)
        if rc != 0:
            return err.strip().splitlines()[-1] if err.strip() else f"rc {rc}"
        os.replace(out + ".tmp", out)
        return None

    target_st = os.path.join(args.target, "model.safetensors")
    tsrc = {"model": file_sig(target_st) if os.path.exists(target_st) else os.path.abspath(args.target)}
    f32 = os.path.join(gdir, "target-F32.gguf")
    if not fresh(f32, tsrc):
        log(f"GGUF: {args.target} -> {f32} (convert_hf_to_gguf.py, f32)")
        why = convert_hf(args.target, f32, "convert-target.log")
        if why:
            # The imported target is the original Q4_1 GGUF dequantized: the same weights.
            gguf = args.source_gguf
            if not gguf or not os.path.exists(gguf):
                die(f"convert_hf_to_gguf.py failed on {args.target} ({why}) and no --source-gguf to requantize")
            log(f"GGUF: convert failed ({why}); requantizing {gguf} to F32 with --allow-requantize")
            rc, _, err = run([os.path.join(llama_bin, "llama-quantize"), "--allow-requantize", gguf, f32, "F32"],
                             os.path.join(raw, "quantize-F32.log"))
            if rc != 0:
                die(f"llama-quantize --allow-requantize {gguf} F32 failed (log {raw}/quantize-F32.log)")
            notes["target_F32"] = f"requantized from {gguf}: convert_hf_to_gguf.py failed: {why}"
        mark(f32, tsrc)
    out = {"F32": f32}
    for bits in GGUF_BITS[1:]:
        path = os.path.join(gdir, f"target-{bits}.gguf")
        qsrc = {"from": file_sig(f32), "type": bits}
        if not fresh(path, qsrc):
            log(f"GGUF: llama-quantize {bits} -> {path}")
            rc, _, _ = run([os.path.join(llama_bin, "llama-quantize"), f32, path + ".tmp", bits, str(max(args.threads))],
                           os.path.join(raw, f"quantize-{bits}.log"))
            if rc != 0:
                die(f"llama-quantize {bits} failed (log {raw}/quantize-{bits}.log)")
            os.replace(path + ".tmp", path)
            mark(path, qsrc)
        out[bits] = path
    if args.drafter_ar and os.path.isdir(args.drafter_ar):
        path = os.path.join(gdir, "drafter-ar-F32.gguf")
        st = os.path.join(args.drafter_ar, "model.safetensors")
        dsrc = {"model": file_sig(st) if os.path.exists(st) else os.path.abspath(args.drafter_ar)}
        if not fresh(path, dsrc):
            log(f"GGUF: {args.drafter_ar} -> {path} (augur export --type f32)")
            if os.access(args.augur, os.X_OK):
                rc, _, err = run([args.augur, "export", "--model", args.drafter_ar, "--format", "gguf", "--type", "f32",
                                  "--out", path, "--quiet"], os.path.join(raw, "export-drafter.log"))
            else:
                rc, err = 1, f"no augur binary at {args.augur}"
            how = "augur export --format gguf --type f32"
            if rc != 0:
                why = (err.strip().splitlines() or [f"rc {rc}"])[-1]
                log(f"GGUF: augur export failed ({why}); using convert_hf_to_gguf.py")
                why2 = convert_hf(args.drafter_ar, path, "convert-drafter.log")
                if why2:
                    die(f"the AR drafter could not be made a GGUF: augur export: {why}; convert: {why2}")
                how = f"convert_hf_to_gguf.py (augur export failed: {why})"
            with open(path + ".how", "w") as f:
                f.write(how + "\n")
            mark(path, dsrc)
        with open(path + ".how") as f:
            notes["drafter_ar_gguf"] = f.read().strip()
        out["drafter-ar"] = path
    if eagle_dir(args):
        path = os.path.join(gdir, "drafter-eagle3-F32.gguf")
        st = os.path.join(args.drafter_eagle, "model.safetensors")
        esrc = {"model": file_sig(st) if os.path.exists(st) else os.path.abspath(args.drafter_eagle),
                "target": os.path.abspath(args.target)}
        if not fresh(path, esrc):
            export = os.path.join(gdir, "drafter-eagle3-export")
            log(f"GGUF: {args.drafter_eagle} -> {export} (augur export --format eagle3) -> {path} "
                f"(convert_hf_to_gguf.py --target-model-dir {args.target}, f32)")
            rc, _, err = run([args.augur, "export", "--model", args.drafter_eagle, "--format", "eagle3", "--out", export,
                              "--quiet"], os.path.join(raw, "export-eagle3.log"))
            if rc != 0:
                die(f"augur export --format eagle3 failed: {(err.strip().splitlines() or [f'rc {rc}'])[-1]}")
            why = convert_hf(export, path, "convert-eagle3.log", ["--target-model-dir", args.target])
            if why:
                die(f"convert_hf_to_gguf.py failed on the EAGLE-3 export {export}: {why} (log {raw}/convert-eagle3.log)")
            mark(path, esrc)
        out["drafter-eagle3"] = path
    return out, notes


def eagle_dir(args):
    """--drafter-eagle when it is an augur eagle-drafter checkpoint, else None."""
    path = args.drafter_eagle
    try:
        with open(os.path.join(path, "augur.json")) as f:
            return path if json.load(f).get("kind") == "eagle-drafter" else None
    except (OSError, TypeError, ValueError):
        return None


def llama_src(args):
    """The llama.cpp source tree beside --llama-bin (scripts/build_llamacpp.sh makes DIR/bin and
    DIR/src): convert_hf_to_gguf.py and its gguf-py."""
    return os.path.join(os.path.dirname(os.path.normpath(args.llama_bin)), "src")


def gguf_types(args, path):
    """{tensor type: count} of a GGUF (the vendored gguf-py), for the record."""
    sys.path.insert(0, os.path.join(llama_src(args), "gguf-py"))
    try:
        import gguf  # noqa: PLC0415
        counts = {}
        for t in gguf.GGUFReader(path).tensors:
            counts[t.tensor_type.name] = counts.get(t.tensor_type.name, 0) + 1
        return counts
    except Exception as e:  # noqa: BLE001  (only a record)
        return {"error": str(e)}
    finally:
        sys.path.pop(0)


# llama.cpp's log lines may start with a timestamp and a level ("0.01.120.456 I ").
PERF_EVAL = re.compile(r"(?:llama_perf_context_print|common_perf_print):\s+eval time =\s+([\d.]+) ms /\s+(\d+) (?:runs|tokens)")
DECODED = re.compile(r"decoded\s+(\d+) tokens in\s+([\d.]+) seconds")
ENCODED = re.compile(r"encoded\s+(\d+) tokens in")
VERBOSE_ID = re.compile(r"^(?:[\d.]+ [A-Z] )?\s*(-?\d+) -> '", re.M)
N_PROMPT = re.compile(r"number of tokens in prompt = (\d+)")
N_DRAFTED = re.compile(r"n_drafted\s*=\s*(\d+)")
N_ACCEPT = re.compile(r"n_accept\s*=\s*(\d+)")


def bench_llama(args, prompts, tc, raw, special_texts):
    bin_dir = args.llama_bin
    need = ["llama-bench", "llama-speculative-simple", "llama-lookup", "llama-quantize", "llama-completion"]
    for t in need:
        if not os.access(os.path.join(bin_dir, t), os.X_OK):
            die(f"{bin_dir}/{t} missing: run scripts/build_llamacpp.sh (or drop --skip-build)")
    ggufs, notes = make_ggufs(args, bin_dir, raw)
    info = {"bin": os.path.abspath(bin_dir), "ggufs": {k: os.path.abspath(v) for k, v in ggufs.items()},
            "tensor_types": {k: gguf_types(args, v) for k, v in ggufs.items()}, "notes": notes}
    flags = os.path.join(os.path.dirname(os.path.realpath(bin_dir)), "build-flags.txt")
    if os.path.exists(flags):
        with open(flags) as f:
            info["build_flags"] = f.read().split()
    rows = []
    ctx = str(max(len(p["ids"]) for p in prompts) + args.max_new + 64)
    common = ["-c", ctx, "--temp", "0", "--seed", "0", "--no-escape"]

    # llama-bench: synthetic tg (--max-new tokens) and pp (the prompts' mean length).
    pp = max(1, round(sum(len(p["ids"]) for p in prompts) / len(prompts)))
    cmd = [os.path.join(bin_dir, "llama-bench"), "-o", "json", "-r", str(args.bench_reps), "-p", str(pp),
           "-n", str(args.max_new), "-t", ",".join(map(str, args.threads))]
    for bits in GGUF_BITS:
        cmd += ["-m", ggufs[bits]]
    log(f"llama-bench: {len(GGUF_BITS)} GGUFs x threads {args.threads}, pp{pp} tg{args.max_new}, -r {args.bench_reps}")
    rc, out, err = run(cmd, os.path.join(raw, "llama-bench.log"))
    if rc != 0:
        die(f"llama-bench failed (log {raw}/llama-bench.log)")
    by_path = {os.path.abspath(v): k for k, v in ggufs.items()}
    for r in json.loads(out[out.index("["):]):
        bits = by_path.get(os.path.abspath(r.get("model_filename", "")), r.get("model_type", "?"))
        tg = r.get("n_gen", 0) > 0
        rows.append({"engine": "llama.cpp", "mode": f"llama-bench {'tg' if tg else 'pp'}{r['n_gen'] if tg else r['n_prompt']}",
                     "pair": "target" if tg else "prefill", "bits": bits, "threads": r["n_threads"],
                     "tok_s": r["avg_ts"], "stddev": r.get("stddev_ts"), "bench": True})
    if rows:
        info["cpu_info"] = json.loads(out[out.index("["):])[0].get("cpu_info")

    def per_prompt(tool, name, extra, threads, pair, bits, parse):
        """Runs tool once per prompt (plus one untimed warm-up); sums tokens and seconds."""
        slug = re.sub(r"[^A-Za-z0-9]+", "-", f"{tool}-{name}-{bits}").strip("-")
        tot_tok = tot_s = 0.0
        drafted = accepted = 0
        per = []
        base = [os.path.join(bin_dir, tool)] + common + ["-t", str(threads), "-tb", str(threads)] + extra
        run(base + ["-p", prompts[0]["text"], "-n", str(min(args.max_new, 8))],
            os.path.join(raw, f"{slug}-t{threads}-warmup.log"))
        for p in prompts:
            logp = os.path.join(raw, f"{slug}-t{threads}-p{p['index']}.log")
            rc, out, err = run(base + ["-p", p["text"], "-n", str(args.max_new)], logp)
            if rc != 0:
                die(f"{tool} failed on prompt {p['index']} (log {logp})")
            n, s, ids, count, text = parse(out, err, p)
            if n is None:
                die(f"{tool}: no timing line in its output (log {logp})")
            if ids is not None:
                tc.add("llama.cpp", p, ids=ids, how=f"{tool} --verbose-prompt")
            elif count is not None:
                tc.add("llama.cpp", p, count=count, how=f"{tool} encoded count")
            m1, m2 = N_DRAFTED.search(err), N_ACCEPT.search(err)
            if m1 and m2:
                drafted += int(m1.group(1))
                accepted += int(m2.group(1))
            tot_tok += n
            tot_s += s
            per.append({"prompt": p["index"], "new_tokens": n, "seconds": s, "text": text,
                        "overshoot": tool != "llama-completion"})
        row = {"engine": "llama.cpp", "mode": name, "pair": pair, "bits": bits, "threads": threads,
               "tok_s": tot_tok / tot_s if tot_s > 0 else 0.0, "new_tokens": int(tot_tok), "seconds": tot_s,
               "prompts": per}
        if drafted:
            row["accept_rate"] = accepted / drafted
        return row

    def parse_completion(out, err, p):
        m = PERF_EVAL.search(err)
        if not m:
            return None, None, None, None, None
        ms, runs = float(m.group(1)), int(m.group(2))
        n = N_PROMPT.search(err)
        ids = None
        if n:  # the ids follow the count line
            ids = [int(x) for x in VERBOSE_ID.findall(err, n.end())][:int(n.group(1))]
        text = out.replace(" [end of text]", "").rstrip("\n")
        return runs, ms / 1000.0, ids, None, text

    def parse_spec(out, err, p):
        m = DECODED.search(err) or DECODED.search(out)
        if not m:
            return None, None, None, None, None
        e = ENCODED.search(err) or ENCODED.search(out)
        # stdout: the prompt's pieces, then the generated ones (an EOS printed as its text).
        text = out.lstrip("\n")
        text = text[len(p["text"]):] if text.startswith(p["text"]) else None
        if text is not None:
            for sp in special_texts:
                text = text.split(sp)[0]
        return int(m.group(1)), float(m.group(2)), None, int(e.group(1)) if e else None, text

    g = str(args.gamma)
    for t in args.threads:
        log(f"llama.cpp, {t} thread(s): llama-completion, llama-speculative-simple, llama-lookup on {len(prompts)} prompts")
        for bits in args.llama_spec_bits:
            rows.append(per_prompt("llama-completion", "target-only",
                                   ["-m", ggufs[bits], "-no-cnv", "--no-display-prompt", "--verbose-prompt"],
                                   t, "target", bits, parse_completion))
            if "drafter-ar" in ggufs:
                dr = ["-m", ggufs[bits], "-md", ggufs["drafter-ar"], "--spec-type", "draft-simple", "-td", str(t),
                      "-tbd", str(t)]
                rows.append(per_prompt("llama-speculative-simple", f"speculative ar, draft max {g}",
                                       dr + ["--spec-draft-n-max", g], t, "ar", bits, parse_spec))
                rows.append(per_prompt("llama-speculative-simple", "speculative ar, its defaults",
                                       dr, t, "ar", bits, parse_spec))
            if "drafter-eagle3" in ggufs:
                rows.append(per_prompt("llama-speculative-simple", f"speculative eagle3, draft max {g}",
                                       ["-m", ggufs[bits], "-md", ggufs["drafter-eagle3"], "--spec-type", "draft-eagle3",
                                        "-td", str(t), "-tbd", str(t), "--spec-draft-n-max", g],
                                       t, "eagle", bits, parse_spec))
            rows.append(per_prompt("llama-lookup", f"lookup, draft max {g}", ["-m", ggufs[bits], "--spec-draft-n-max", g],
                                   t, "lookup", bits, parse_spec))
            rows.append(per_prompt("llama-lookup", "lookup, its defaults", ["-m", ggufs[bits]],
                                   t, "lookup", bits, parse_spec))
    # llama.cpp's system_info line (the vector extensions it runs with).
    for name in sorted(os.listdir(raw)):
        if name.startswith("llama-completion") and name.endswith(".log"):
            with open(os.path.join(raw, name)) as f:
                m = re.search(r"system_info: (.*)", f.read())
            if m:
                info["system_info"] = m.group(1).strip()
                break
    return rows, info


# ----------------------------------------------------------------------------- transformers

def bench_hf(args, prompts, tc, tok):
    import torch  # noqa: PLC0415
    import transformers  # noqa: PLC0415
    from transformers import AutoModelForCausalLM  # noqa: PLC0415
    from transformers.generation.streamers import BaseStreamer  # noqa: PLC0415

    class Clock(BaseStreamer):
        def __init__(self):
            self.first = None
            self.calls = 0

        def put(self, value):
            self.calls += 1
            if self.calls == 2:  # the first put is the prompt
                self.first = time.perf_counter()

        def end(self):
            pass

    info = {"transformers": transformers.__version__, "torch": torch.__version__}
    target = AutoModelForCausalLM.from_pretrained(args.target, dtype=torch.float32).eval()
    assistant = None
    if args.drafter_ar and os.path.isdir(args.drafter_ar):
        try:
            assistant = AutoModelForCausalLM.from_pretrained(args.drafter_ar, dtype=torch.float32).eval()
        except Exception as e:  # noqa: BLE001
            info["assistant_error"] = f"{type(e).__name__}: {e}"
            log(f"transformers cannot load {args.drafter_ar} as assistant_model: {info['assistant_error']}")
    eos = target.generation_config.eos_token_id
    eos_set = set(eos if isinstance(eos, list) else [eos]) if eos is not None else set()
    pad = target.generation_config.pad_token_id
    pad = pad if pad is not None else (min(eos_set) if eos_set else 0)
    g = args.gamma
    modes = [("target-only", "target", {})]
    if assistant is not None:
        modes.append((f"assisted ar, {g} tokens", "ar", {"assistant_model": assistant, "_fixed": g}))
        modes.append(("assisted ar, its defaults", "ar", {"assistant_model": assistant}))
    modes.append((f"prompt_lookup_num_tokens={g}", "lookup", {"prompt_lookup_num_tokens": g}))
    modes.append(("prompt_lookup_num_tokens=10", "lookup", {"prompt_lookup_num_tokens": 10}))
    for p in prompts:  # the reference itself; recorded so the table lists transformers as checked
        tc.add("transformers", p, ids=p["ids"], how="tokenizer (reference)")
    rows = []
    for t in args.threads:
        torch.set_num_threads(t)
        log(f"transformers, {t} thread(s): {', '.join(m[0] for m in modes)} on {len(prompts)} prompts")
        for name, pair, kw in modes:
            kw = dict(kw)
            fixed = kw.pop("_fixed", None)
            if assistant is not None and "assistant_model" in kw:
                gc = assistant.generation_config
                if fixed:
                    gc.num_assistant_tokens, gc.num_assistant_tokens_schedule = fixed, "constant"
                    gc.assistant_confidence_threshold = 0.0
                else:
                    d = transformers.GenerationConfig()
                    gc.num_assistant_tokens = d.num_assistant_tokens
                    gc.num_assistant_tokens_schedule = d.num_assistant_tokens_schedule
                    gc.assistant_confidence_threshold = d.assistant_confidence_threshold

            def gen(p, max_new, clock=None):
                ids = torch.tensor([p["ids"]], dtype=torch.long)
                with torch.inference_mode():
                    return target.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                           max_new_tokens=max_new, pad_token_id=pad, streamer=clock, **kw)

            gen(prompts[0], min(args.max_new, 8))  # warm-up, untimed
            tot_tok = tot_s = 0.0
            tot_e2e_tok = tot_e2e_s = 0.0
            per = []
            for p in prompts:
                clock = Clock()
                t0 = time.perf_counter()
                out = gen(p, args.max_new, clock)
                t1 = time.perf_counter()
                new = out[0, len(p["ids"]):].tolist()
                if new and new[-1] in eos_set:
                    new = new[:-1]  # EOS ends the reply; not counted (augur and llama.cpp do not)
                n = len(new)
                if clock.first is not None and n > 1:
                    tot_tok += n - 1
                    tot_s += t1 - clock.first
                tot_e2e_tok += n
                tot_e2e_s += t1 - t0
                per.append({"prompt": p["index"], "new_tokens": n, "seconds": t1 - t0, "tokens": new})
            rows.append({"engine": "transformers", "mode": name, "pair": pair, "bits": "fp32", "threads": t,
                         "tok_s": tot_tok / tot_s if tot_s > 0 else 0.0, "e2e_tok_s": tot_e2e_tok / tot_e2e_s,
                         "new_tokens": int(tot_e2e_tok), "seconds": tot_e2e_s, "prompts": per})
    return rows, info


# ----------------------------------------------------------------------------- augur

def augur_modes(args):
    """(mode name, pair, spec): each drafter alone, then the fp32 ones as one token tree, as
    scripts/quickstart.sh evaluates them."""
    out = [("prompt-lookup", "lookup", "prompt-lookup")]
    if args.datastore and os.path.exists(args.datastore):
        out.append(("ngram", None, f"ngram:{args.datastore}"))
    for name, path, kind in (("ar", args.drafter_ar, "ar"), ("ar int4", args.drafter_ar_int4, "ar"),
                             ("nat", args.drafter_nat, "nat")):
        if path and os.path.exists(os.path.join(path, "config.json")):
            out.append((name, "ar" if name == "ar" else None, f"{kind}:{path}"))
    fp32 = [m for m in out if m[0] != "ar int4"]
    if len(fp32) > 1:
        out.append(("tree " + "+".join(m[0] for m in fp32), None, "+".join(m[2] for m in fp32)))
    if eagle_dir(args) and args.augur_takes_eagle:
        out.append(("eagle", "eagle", f"eagle:{args.drafter_eagle}"))
    return out


def augur_bits(report, quant):
    t = report.get("target", {})
    for key in ("precision", "bits", "quantization"):
        v = t.get(key)
        if isinstance(v, str) and v:
            return v
    return "fp32" if quant == "none" else quant


def bench_augur(args, prompts, tc, raw):
    if not os.access(args.augur, os.X_OK):
        die(f"{args.augur}: no augur binary (scripts/build.sh)")
    help_rc, help_out, help_err = run([args.augur, "eval", "--help"])
    engine_flag = []
    info = {"binary": os.path.abspath(args.augur)}
    if args.augur_engine:
        if "--target-engine" not in help_out + help_err:
            die(f"--augur-engine {args.augur_engine}: this augur's eval has no --target-engine")
        engine_flag = ["--target-engine", args.augur_engine]
        info["target_engine"] = args.augur_engine
    # The rendered prompts, as "prompt" lines: augur sees the text every engine sees.
    pfile = os.path.join(raw, "prompts-rendered.jsonl")
    with open(pfile, "w") as f:
        for p in prompts:
            f.write(json.dumps({"prompt": p["text"], "kind": p["kind"], "source": p["source"]}) + "\n")
    for p in prompts:
        tf = os.path.join(raw, f"prompt-{p['index']}.txt")
        with open(tf, "w") as f:
            f.write(p["text"])
        rc, out, err = run([args.augur, "data", "encode", "--tokenizer", args.target, "--file", tf] +
                           (["--bos"] if p["bos_added"] else []))
        if rc != 0:
            die(f"augur data encode failed: {err.strip()}")
        tc.add("augur", p, ids=json.loads(out), how="augur data encode")
    modes = augur_modes(args)
    rows = []
    # The verify-cost curve: the target's forward of T tokens (all T rows' logits) on a warm
    # cache, T = 1..16, when this augur's eval takes --probe-sizes.
    _, help_text, _ = run([args.augur, "eval", "--help"])
    probe_flag = ["--probe-sizes", "1,2,3,4,5,6,8,12,16"] if "--probe-sizes" in help_text else []
    for quant in args.augur_quant:
        qflag = [] if quant == "none" else ["--target-quant", quant]
        for t in args.threads:
            tag = f"augur-{quant}-t{t}"
            rdir = os.path.join(raw, tag)
            cmd = [args.augur, "eval", "--target", args.target] + [a for m in modes for a in ("--drafter", m[2])] + [
                "--prompts", pfile, "--max-new", str(args.max_new), "--gamma", str(args.gamma), "--temperature", "0",
                "--stop-at-eos", "--threads", str(t), "--report", rdir] + (["--check"] if args.check else []) + \
                engine_flag + qflag + probe_flag
            log(f"augur eval, target {quant if quant != 'none' else 'as saved'}, {t} thread(s): target-only and "
                f"{', '.join(m[0] for m in modes)} on {len(prompts)} prompts")
            rc, out, err = run(cmd, os.path.join(raw, f"{tag}.log"), timeout=6 * 3600)
            if rc != 0:
                die(f"augur eval failed: {(err.strip().splitlines() or ['?'])[-1]} (log {raw}/{tag}.log)")
            with open(os.path.join(rdir, "report.json")) as f:
                rep = json.load(f)
            bits = augur_bits(rep, quant)
            backend = rep.get("target", {}).get("engine", "")
            info.setdefault("target", {})[bits] = rep.get("target")
            if rep.get("cost", {}).get("forward_ms"):
                info.setdefault("verify_cost", {})[f"{bits} t{t}"] = rep["cost"]["forward_ms"]
            info.setdefault("check", {})[tag] = rep.get("check")
            info.setdefault("machine", rep.get("machine"))
            for pr in rep["baseline"]["prompts"]:
                if pr["index"] < len(prompts):
                    tc.add("augur", prompts[pr["index"]], count=pr["prompt_tokens"], how="report.json prompt_tokens")
            # report.json's runs follow the --drafter order (config.drafters).
            specs = rep.get("config", {}).get("drafters", [m[2] for m in modes])
            by_spec = {m[2]: m for m in modes}
            for i, r in enumerate([rep["baseline"]] + rep["runs"]):
                s = r["summary"]
                if i == 0:
                    name, pair = "target-only", "target"
                else:
                    m = by_spec.get(specs[i - 1] if i - 1 < len(specs) else None)
                    name, pair = (m[0], m[1]) if m else (r.get("label", r["drafter"]), None)
                dec = s["total_s"] - s["prefill_s"]
                rows.append({"engine": "augur", "backend": backend, "mode": name, "pair": pair, "bits": bits,
                             "threads": t, "tok_s": s["new_tokens"] / dec if dec > 0 else 0.0,
                             "e2e_tok_s": s["tokens_per_s"], "new_tokens": s["new_tokens"], "seconds": s["total_s"],
                             "alpha": s.get("alpha"), "tau": s.get("tau"), "augur_speedup": r.get("speedup"),
                             "prompts": [{"prompt": p["index"], "new_tokens": p["new_tokens"], "tokens": p.get("tokens")}
                                         for p in r["prompts"]]})
            pre = sum(p["prompt_tokens"] - 1 for p in rep["baseline"]["prompts"])
            pre_s = rep["baseline"]["summary"]["prefill_s"]
            if pre_s > 0:
                rows.append({"engine": "augur", "backend": backend, "mode": "target prefill", "pair": "prefill",
                             "bits": bits, "threads": t, "tok_s": pre / pre_s, "new_tokens": pre, "seconds": pre_s})
    return rows, info


def augur_quants(args):
    """--augur-quant auto: the target as saved, plus int8 and int4-g32 (llama.cpp's Q8_0 and
    Q4_0) when this augur's eval takes --target-quant."""
    if args.augur_quant != "auto":
        return [q.strip() for q in args.augur_quant.split(",") if q.strip()]
    if not os.access(args.augur, os.X_OK):
        return ["none"]
    _, out, err = run([args.augur, "eval", "--help"])
    return ["none", "int8", "int4-g32"] if "--target-quant" in out + err else ["none"]


# ----------------------------------------------------------------------------- table

def ratios(rows):
    """x_own: over the same engine's target-only row at the same bits and threads (not for the
    synthetic llama-bench rows); augur_over_peer: augur's row of the same pair kind, bits class
    and threads over a peer's row."""
    def own_base(r):
        for b in rows:
            if b["engine"] == r["engine"] and b["mode"].startswith("target-only") and b["bits"] == r["bits"] and \
               b["threads"] == r["threads"]:
                return b
        return None

    for r in rows:
        if not r.get("bench") and r["pair"] != "prefill":
            b = own_base(r)
            if b and b["tok_s"] > 0:
                r["x_own"] = r["tok_s"] / b["tok_s"]
        if r["engine"] != "augur" and r["pair"] and r["tok_s"] > 0:
            cls = BITS_CLASS.get(r["bits"], r["bits"])
            for a in rows:
                if a["engine"] == "augur" and a["pair"] == r["pair"] and a["threads"] == r["threads"] and \
                   BITS_CLASS.get(a["bits"], a["bits"]) == cls:
                    r["augur_over_peer"] = a["tok_s"] / r["tok_s"]
                    r["augur_row"] = a["mode"]
                    break


def acceptance(r):
    """accepted / drafted tokens: llama.cpp's n_accept / n_drafted, augur's alpha ("" for rows without a drafter)."""
    a = r.get("accept_rate", r.get("alpha") if r.get("pair") not in ("target", "prefill") else None)
    return f"{a:.3f}" if isinstance(a, (int, float)) else ""


def fmt_table(rows):
    head = ["engine", "mode", "bits", "threads", "tokens/s", "tokens", "acceptance", "x own target-only", "same output",
            "augur/peer"]
    lines = []
    for r in rows:
        lines.append([r["engine"] + (f" ({r['backend']})" if r.get("backend") else ""), r["mode"], r["bits"], str(r["threads"]), f"{r['tok_s']:.1f}",
                      str(r.get("new_tokens", "")) if not r.get("bench") else "",
                      acceptance(r),
                      f"{r['x_own']:.2f}x" if "x_own" in r else "",
                      f"{r['same_own'][0]}/{r['same_own'][1]}" if "same_own" in r else "",
                      f"{r['augur_over_peer']:.2f}x ({r['augur_row']})" if "augur_over_peer" in r else ""])
    widths = [max(len(h), *(len(x[i]) for x in lines)) if lines else len(h) for i, h in enumerate(head)]
    txt = "  ".join(h.ljust(w) for h, w in zip(head, widths)) + "\n"
    txt += "  ".join("-" * w for w in widths) + "\n"
    for x in lines:
        txt += "  ".join(c.ljust(w) for c, w in zip(x, widths)) + "\n"
    md = "| " + " | ".join(head) + " |\n|" + "|".join("---" for _ in head) + "|\n"
    for x in lines:
        md += "| " + " | ".join(x) + " |\n"
    return txt, md


def output_agreement(rows, tok):
    """Greedy outputs, prompt by prompt: each row against its own engine's target-only row (same
    bits and threads: exactness of its speculative decoding) and against transformers'
    target-only (same threads: do the engines generate the same text?). Token lists where both
    sides have them, else the decoded text (llama-completion prints text). Sets r["same_own"]
    and r["same_hf"] to [identical, compared] and returns the per-prompt first differences."""
    def outs(r):
        return {p["prompt"]: p for p in r.get("prompts") or [] if p.get("tokens") is not None or p.get("text") is not None}

    def diff(a, b):
        if a.get("tokens") is not None and b.get("tokens") is not None:
            return first_diff(a["tokens"], b["tokens"]), "token"
        ta = (a["text"] if a.get("text") is not None else tok.decode(a["tokens"], skip_special_tokens=True)).rstrip()
        tb = (b["text"] if b.get("text") is not None else tok.decode(b["tokens"], skip_special_tokens=True)).rstrip()
        d = first_diff(ta, tb)
        # llama.cpp's speculative tools may run past -n by a draft's length: a prefix is a match.
        if d is not None and d == min(len(ta), len(tb)) and (a.get("overshoot") or b.get("overshoot")):
            d = None
        return d, "char"

    def base(engine, r):
        for b in rows:
            if b["engine"] == engine and b["mode"] == "target-only" and b["threads"] == r["threads"] and \
               (engine != r["engine"] or b["bits"] == r["bits"]):
                return b
        return None

    res = {}
    for r in rows:
        mine = outs(r)
        if not mine:
            continue
        for key, b in (("same_own", base(r["engine"], r)), ("same_hf", base("transformers", r))):
            if b is None or b is r:
                continue
            ref = outs(b)
            same = total = 0
            for i, p in mine.items():
                if i not in ref:
                    continue
                d, unit = diff(p, ref[i])
                total += 1
                same += d is None
                if d is not None:
                    res.setdefault(f"{r['engine']} | {r['mode']} | {r['bits']} | t{r['threads']}", {}).setdefault(
                        key, []).append({"prompt": i, "first_diff": d, "unit": unit})
            if total:
                r[key] = [same, total]
    return res


# ----------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", default=os.path.join(ROOT, "runs", "quickstart-smollm2"),
                    help="quickstart run directory (target/, drafter-*/, prompts-eval.jsonl, datastore.h5)")
    ap.add_argument("--target", help="target checkpoint (default RUN/target)")
    ap.add_argument("--drafter-ar", help="AR drafter (default RUN/drafter-ar)")
    ap.add_argument("--drafter-ar-int4", help="default RUN/drafter-ar-int4")
    ap.add_argument("--drafter-nat", help="default RUN/drafter-nat")
    ap.add_argument("--drafter-eagle", help="EAGLE-3 drafter: an augur eagle-drafter checkpoint (default RUN/drafter-eagle, "
                                            "else RUN/eagle, when one is there); adds llama.cpp's draft-eagle3 row "
                                            "and augur's eagle row")
    ap.add_argument("--datastore", help="n-gram datastore (default RUN/datastore.h5)")
    ap.add_argument("--prompts", help="JSONL prompts (default RUN/prompts-eval.jsonl)")
    ap.add_argument("--source-gguf", help="the GGUF the target was imported from (fallback for the F32 GGUF)")
    ap.add_argument("--out", help="where peers.json and peers.md go (default the run directory)")
    ap.add_argument("--max-new", type=int, default=96, help="new tokens per prompt, every engine (default 96)")
    ap.add_argument("--prompts-limit", type=int, default=0, help="first N prompts (0 = all)")
    ap.add_argument("--threads", default="1,2", help="thread counts (default 1,2)")
    ap.add_argument("--gamma", type=int, default=4, help="draft tokens per round where an engine takes it (default 4)")
    ap.add_argument("--bench-reps", type=int, default=5, help="llama-bench -r (default 5)")
    ap.add_argument("--llama-spec-bits", default="auto",
                    help="target GGUF types for llama-completion/speculative/lookup (auto: F32, and Q8_0/Q4_0 where "
                         "augur runs int8/int4-g32)")
    ap.add_argument("--augur-quant", default="auto",
                    help="augur targets: none (as saved) and/or --target-quant schemes, comma list (auto: none,int8,"
                         "int4-g32 where augur eval has --target-quant, else none)")
    ap.add_argument("--only", default="llama,hf,augur", help="engines to run: any of llama,hf,augur (comma list)")
    ap.add_argument("--augur", default=os.path.join(ROOT, "build", "bin", "augur"), help="augur binary")
    ap.add_argument("--augur-engine", help="forwarded as augur eval --target-engine")
    ap.add_argument("--augur-check", dest="check", action="store_true",
                    help="pass --check to augur eval (a failure then stops the benchmark; without it every row's "
                         "outputs are compared with its engine's target-only here and mismatches reported)")
    ap.add_argument("--llama-bin", default=os.path.join(ROOT, ".venv", "llama.cpp", "bin"),
                    help="llama.cpp tools (default .venv/llama.cpp/bin, scripts/build_llamacpp.sh)")
    ap.add_argument("--skip-build", action="store_true",
                    help="(bench_peers.sh) do not build augur and llama.cpp first; use the builds there are")
    args = ap.parse_args()

    run_dir = args.run_dir
    args.target = args.target or os.path.join(run_dir, "target")
    args.drafter_ar = args.drafter_ar or os.path.join(run_dir, "drafter-ar")
    args.drafter_ar_int4 = args.drafter_ar_int4 or os.path.join(run_dir, "drafter-ar-int4")
    args.drafter_nat = args.drafter_nat or os.path.join(run_dir, "drafter-nat")
    if not args.drafter_eagle:
        args.drafter_eagle = next((p for p in (os.path.join(run_dir, "drafter-eagle"), os.path.join(run_dir, "eagle"))
                                   if os.path.isdir(p)), None)
    elif not eagle_dir(args):
        die(f"--drafter-eagle {args.drafter_eagle}: not an augur eagle-drafter checkpoint (augur.json kind eagle-drafter)")
    args.augur_takes_eagle = False
    if eagle_dir(args) and os.access(args.augur, os.X_OK):
        _, h_out, h_err = run([args.augur, "eval", "--help"])
        args.augur_takes_eagle = "eagle:" in h_out + h_err
        if not args.augur_takes_eagle:
            log(f"--drafter-eagle: this augur's eval has no eagle: drafter; only llama.cpp's draft-eagle3 row runs")
    args.datastore = args.datastore or os.path.join(run_dir, "datastore.h5")
    args.prompts = args.prompts or os.path.join(run_dir, "prompts-eval.jsonl")
    args.threads = [int(x) for x in str(args.threads).split(",") if x]
    args.augur_quant = augur_quants(args)
    if args.llama_spec_bits == "auto":
        args.llama_spec_bits = ["F32"] + [b for q, b in (("int8", "Q8_0"), ("int4-g32", "Q4_0")) if q in args.augur_quant]
    else:
        args.llama_spec_bits = [x.strip().upper() for x in args.llama_spec_bits.split(",") if x.strip()]
    for b in args.llama_spec_bits:
        if b not in GGUF_BITS:
            die(f"--llama-spec-bits {b}: expected some of {','.join(GGUF_BITS)}")
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    if not only <= {"llama", "hf", "augur"}:
        die(f"--only {args.only}: expected llama, hf and/or augur")
    if not args.source_gguf:
        try:
            with open(os.path.join(args.target, "augur.json")) as f:
                src = json.load(f)["extra"]["import"]["source"]
            args.source_gguf = src if os.path.isabs(src) else os.path.join(ROOT, src)
        except (OSError, KeyError, ValueError):
            pass
    out_dir = args.out or run_dir
    raw = os.path.join(out_dir, "peers-raw")
    os.makedirs(raw, exist_ok=True)
    for path in (args.target, args.prompts):
        if not os.path.exists(path):
            die(f"{path}: not found (run scripts/quickstart.sh first, or pass --run-dir)")

    from transformers import AutoTokenizer  # noqa: PLC0415

    tok = AutoTokenizer.from_pretrained(args.target)
    prompts = load_prompts(args, tok)
    log(f"{len(prompts)} prompts ({', '.join(sorted({p['kind'] for p in prompts}))}), "
        f"{sum(len(p['ids']) for p in prompts)} prompt tokens, max new {args.max_new}, threads {args.threads}")
    tc = TokenCheck()
    rows = []
    info = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "host": platform.node(),
            "cpu": next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?"),
            "cores": os.cpu_count(), "max_new": args.max_new, "gamma": args.gamma, "threads": args.threads,
            "prompts": {"file": os.path.abspath(args.prompts), "n": len(prompts),
                        "tokens": [len(p["ids"]) for p in prompts]},
            "command_line": " ".join(sys.argv)}
    t_start = time.time()
    if "llama" in only:
        r, i = bench_llama(args, prompts, tc, raw, [t for t in tok.all_special_tokens if t])
        rows += r
        info["llama.cpp"] = i
    if "hf" in only:
        r, i = bench_hf(args, prompts, tc, tok)
        rows += r
        info["transformers"] = i
    if "augur" in only:
        r, i = bench_augur(args, prompts, tc, raw)
        rows += r
        info["augur"] = i
    ratios(rows)
    info["seconds"] = round(time.time() - t_start, 1)
    checks = tc.summary()
    agreement = output_agreement(rows, tok)
    txt, md = fmt_table(rows)
    print(txt, end="")
    bad = {k: v for k, v in checks.items() if v["mismatches"]}
    tok_line = ("token ids: identical across " + ", ".join(f"{k} ({v['checked']} checks)" for k, v in checks.items())
                if not bad else "token ids: MISMATCH: " + "; ".join(
                    f"{k}: " + ", ".join(f"prompt {m['prompt']} ({m['how']}: {m['why']})" for m in v["mismatches"])
                    for k, v in bad.items()))
    lines = [tok_line]
    own_bad = [r for r in rows if "same_own" in r and r["same_own"][0] != r["same_own"][1]]
    n_own = sum("same_own" in r for r in rows)
    lines.append(f"greedy outputs vs the same engine's target-only ({n_own} rows compared): " + (
        "identical in every row" if not own_bad else "DIFFER: " +
          "; ".join(f"{r['engine']} {r['mode']} {r['bits']} t{r['threads']}: {r['same_own'][0]}/{r['same_own'][1]} "
                    "prompts identical" for r in own_bad)))
    hf = [r for r in rows if "same_hf" in r and r["engine"] != "transformers" and r["mode"] == "target-only"]
    if hf:
        lines.append("target-only greedy outputs vs transformers' (identical/compared prompts; every row in peers.json): " + "; ".join(
            f"{r['engine']} {r['bits']} t{r['threads']}: {r['same_hf'][0]}/{r['same_hf'][1]}" for r in hf))
    print("\n".join(lines))
    result = {"format": "augur-peers", "format_version": 1, "info": info, "rows": rows, "token_check": checks,
              "output_agreement": agreement}
    with open(os.path.join(out_dir, "peers.json"), "w") as f:
        json.dump(result, f, indent=1)
    with open(os.path.join(out_dir, "peers.md"), "w") as f:
        f.write(f"# Peers side by side\n\n{info['date']}, {info['cpu']} ({info['cores']} cores), {len(prompts)} prompts, "
                f"max new {args.max_new}, greedy, gamma {args.gamma}. tokens/s = decode rate (prompt processing "
                f"excluded); llama-bench rows are synthetic (pp/tg). `x own`: over the engine's own target-only at the "
                f"same bits and threads; `same output`: prompts whose greedy output equals that target-only's; "
                f"`augur/peer`: augur's comparable row over this one.\n\n")
        f.write(md + "\n" + "\n\n".join(lines) + "\n")
        curves = info.get("augur", {}).get("verify_cost", {})
        if curves:
            sizes = sorted({int(k) for c in curves.values() for k in c})
            f.write("\n## augur target: verify cost (ms of one forward of T tokens; x = over T = 1)\n\n| target | " +
                    " | ".join(f"T={n}" for n in sizes) + " |\n|---|" + "---|" * len(sizes) + "\n")
            for name, c in curves.items():
                one = c.get("1") or 0
                cells = [f"{c[str(n)]:.1f} ({c[str(n)] / one:.2f}x)" if str(n) in c and one else "-" for n in sizes]
                f.write(f"| {name} | " + " | ".join(cells) + " |\n")
    log(f"done in {info['seconds']} s: {out_dir}/peers.json, {out_dir}/peers.md (raw logs {raw})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
