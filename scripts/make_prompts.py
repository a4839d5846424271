#!/usr/bin/env python3
"""Prompts for a real (chat) target, made from the default corpus: the Python standard library.

Three kinds, each a JSONL line with "kind" and "source" besides the prompt:
  code     {"prompt": ...}    the head of a function (signature, docstring, first lines):
                              plain code continuation
  chat     {"messages": ...}  "Write a Python function `name(args)` that ..." with the
                              function's docstring as the task
  rework   {"messages": ...}  "Rewrite this function ..." with the function's code given:
                              copy-heavy, like code editing
Files are split by a hash of their path into train (teacher data) and held-out (evaluation)
parts, so no evaluation prompt comes from a file the teacher saw.

  make_prompts.py --out-train T.jsonl --out-eval E.jsonl [--train N] [--eval N] [--seed S]
"""

import argparse
import ast
import hashlib
import json
import os
import random
import sys
import sysconfig

REWORK_ASKS = [
    "Rewrite this function with type hints, keeping its behaviour:",
    "Rename the local variables of this function to clearer names and keep everything else:",
    "Add a docstring to this function if it lacks one, and return the whole function:",
    "Refactor this function to be easier to read without changing what it does:",
]


def held_out(path, fraction):
    h = int(hashlib.sha256(path.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return h < fraction


def functions(path):
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        tree = ast.parse(text)
    except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
        return
    lines = text.splitlines()
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or node.end_lineno is None:
            continue
        body = lines[node.lineno - 1:node.end_lineno]
        if not 4 <= len(body) <= 40:
            continue
        indent = len(body[0]) - len(body[0].lstrip())
        code = "\n".join(l[indent:] for l in body)
        if len(code) > 1800:
            continue
        yield node, code


def make(path, node, code, kind, rng):
    doc = ast.get_docstring(node)
    args = ", ".join(a.arg for a in node.args.args)
    src = f"{os.path.relpath(path, sysconfig.get_paths()['stdlib'])}:{node.lineno}"
    if kind == "code":
        head = code.splitlines()
        keep = max(2, len(head) // 3)
        return {"kind": "code", "source": src, "prompt": "\n".join(head[:keep]) + "\n"}
    if kind == "chat":
        if not doc or len(doc) < 40:
            return None
        task = (f"Write a Python function `{node.name}({args})` that does the following:\n\n{doc.strip()}\n\n"
                "Reply with the code only.")
        return {"kind": "chat", "source": src, "messages": [{"role": "user", "content": task}]}
    ask = rng.choice(REWORK_ASKS)
    return {"kind": "rework", "source": src,
            "messages": [{"role": "user", "content": f"{ask}\n\n```python\n{code}\n```"}]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out-train", required=True)
    ap.add_argument("--out-eval", required=True)
    ap.add_argument("--train", type=int, default=300, help="train prompts (kinds in equal parts)")
    ap.add_argument("--eval", type=int, default=24, help="held-out prompts (kinds in equal parts)")
    ap.add_argument("--kinds", default="code,chat,rework")
    ap.add_argument("--held-out", type=float, default=0.1, help="fraction of files held out")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--root", default=sysconfig.get_paths()["stdlib"])
    a = ap.parse_args()
    kinds = a.kinds.split(",")
    rng = random.Random(a.seed)
    files = []
    for d, dirs, names in os.walk(a.root):
        dirs[:] = sorted(x for x in dirs if x not in ("site-packages", "test", "tests", "__pycache__", "idlelib"))
        files += [os.path.join(d, n) for n in sorted(names) if n.endswith(".py")]
    pools = {(split, k): [] for split in ("train", "eval") for k in kinds}
    for path in files:
        split = "eval" if held_out(os.path.relpath(path, a.root), a.held_out) else "train"
        for node, code in functions(path):
            for k in kinds:
                p = make(path, node, code, k, rng)
                if p:
                    pools[(split, k)].append(p)
    for split, n, out in (("train", a.train, a.out_train), ("eval", a.eval, a.out_eval)):
        rows = []
        for i, k in enumerate(kinds):
            pool = pools[(split, k)]
            want = n // len(kinds) + (1 if i < n % len(kinds) else 0)
            if len(pool) < want:
                sys.exit(f"make_prompts: only {len(pool)} {split} prompts of kind {k}, {want} wanted")
            rows += rng.sample(pool, want)
        rng.shuffle(rows)
        tmp = out + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        os.replace(tmp, out)
        print(f"make_prompts: {out}: {len(rows)} prompts ({', '.join(kinds)})", file=sys.stderr)


if __name__ == "__main__":
    main()
