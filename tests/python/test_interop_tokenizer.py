"""Interop: a tokenizer trained by `augur data tokenizer` encodes Python snippets to the
same ids in augur (`augur data encode`), in the sentencepiece Python package, and in
transformers (LlamaTokenizer / AutoTokenizer from the directory's tokenizer_config.json);
and h5py reads a store written by `augur data build` with the layout of docs/FORMATS.md.
Also: the CLI's bad-input errors are one line and exit non-zero."""

import json
import os
import subprocess
import sysconfig

import h5py
import numpy as np
import pytest
import sentencepiece as spm

AUGUR = os.environ.get("AUGUR_BIN", "build/bin/augur")
STDLIB = sysconfig.get_paths()["stdlib"]

# Snippets with the whitespace and characters a code tokenizer must keep exactly.
SNIPPETS = [
    "def f(x):\n    return x + 1\n",
    "class A(object):\n    \"\"\"Doc.\"\"\"\n\n    def g(self, *args, **kw):\n        pass\n\n\n",
    "if a:\n\tif b:\n\t\treturn 'tabs'\n",
    "   \n\n  \t \n",
    "  leading and trailing  ",
    "x = {'k': [1, 2, 3.5e-10], \"s\": 0xFF}\n",
    "s = 'héllo wörld 世界 🐍'  # ünïcödé\n",
    "for i in range(10):\n        print(i)  # eight spaces\n",
    "import os, sys\nfrom typing import List\n",
    "a\r\nb\r\n",
    "lambda: None",
    "",
]


def run(*args, check=True):
    proc = subprocess.run([AUGUR, *args], capture_output=True, text=True)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("interop_tok")
    inputs = [os.path.join(STDLIB, p) for p in ("json", "argparse.py", "textwrap.py", "string.py")]
    tok = root / "tok"
    run("data", "tokenizer", "--input", *inputs, "--vocab-size", "1200", "--out", str(tok),
        "--valid-fraction", "0")
    store = root / "s.h5"
    run("data", "build", "--input", *inputs, "--tokenizer", str(tok), "--out", str(store),
        "--valid-fraction", "0.3")
    return {"root": root, "tok": tok, "store": store, "inputs": inputs}


def augur_ids(work, text):
    path = work["root"] / "snippet.txt"
    path.write_bytes(text.encode("utf-8"))
    return json.loads(run("data", "encode", "--tokenizer", str(work["tok"]), "--file", str(path)).stdout)


def test_sentencepiece_matches(work):
    sp = spm.SentencePieceProcessor(model_file=str(work["tok"] / "tokenizer.model"))
    assert sp.get_piece_size() == 1200
    assert [sp.id_to_piece(i) for i in range(5)] == ["<unk>", "<s>", "</s>", "<pad>", "<mask>"]
    for text in SNIPPETS:
        ids = augur_ids(work, text)
        assert ids == sp.encode(text), repr(text)
        assert sp.decode(ids) == text, repr(text)


def test_transformers_matches(work):
    transformers = pytest.importorskip("transformers")
    auto = transformers.AutoTokenizer.from_pretrained(str(work["tok"]))
    llama = transformers.LlamaTokenizer.from_pretrained(str(work["tok"]))
    for tok in (auto, llama):
        assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (1, 2, 3)
        for text in SNIPPETS:
            ids = augur_ids(work, text)
            assert tok.encode(text, add_special_tokens=False) == ids, repr(text)
            assert tok.decode(ids) == text, repr(text)
        # add_bos_token: the store's documents start with <s> as HF models expect.
        assert tok("x = 1")["input_ids"][0] == 1


def test_literal_whitespace_mark_decodes_exactly(work):
    # U+2581 is SentencePiece's space mark; augur emits it as byte tokens so that every
    # decoder gives it back (encoders that do not do this would decode it as a space).
    sp = spm.SentencePieceProcessor(model_file=str(work["tok"] / "tokenizer.model"))
    text = "x = 'a\u2581b'\n"
    ids = augur_ids(work, text)
    assert sp.decode(ids) == text
    transformers = pytest.importorskip("transformers")
    assert transformers.AutoTokenizer.from_pretrained(str(work["tok"])).decode(ids) == text


def test_h5py_reads_store(work):
    sp = spm.SentencePieceProcessor(model_file=str(work["tok"] / "tokenizer.model"))
    with h5py.File(work["store"], "r") as f:
        a = f.attrs
        assert a["format"] == "augur-token-store"
        assert a["format_version"] == 1
        assert a["vocab_size"] == 1200
        assert (a["bos_id"], a["eos_id"]) == (1, 2)
        fingerprint = json.loads(open(work["tok"] / "augur_tokenizer.json").read())["fingerprint"]
        assert a["tokenizer_fingerprint"] == fingerprint
        assert len(json.loads(a["sources"])) == 4
        assert a["tokenizer_path"] == os.path.realpath(work["tok"] / "tokenizer.model")
        tokens, offsets = f["tokens"], f["doc_offsets"][:]
        assert tokens.dtype == np.uint16 and tokens.ndim == 1
        assert tokens.chunks is not None and tokens.compression == "gzip" and tokens.maxshape == (None,)
        assert offsets.dtype == np.uint64
        n = int(a["num_docs"])
        assert len(offsets) == n + 1 and offsets[0] == 0 and offsets[-1] == len(tokens) == a["num_tokens"]
        train, valid = f["split/train"][:], f["split/valid"][:]
        assert np.all(np.diff(train) > 0) and np.all(np.diff(valid) > 0)
        assert sorted(np.concatenate([train, valid]).tolist()) == list(range(n))
        assert len(train) == a["num_train_docs"] and len(valid) == a["num_valid_docs"]
        assert sum(int(offsets[d + 1] - offsets[d]) for d in valid) == a["num_valid_tokens"]
        names = f["doc_names"].asstr()[:]
        all_tokens = tokens[:]
        for d in range(n):
            with open(names[d], encoding="utf-8") as src:
                text = src.read()
            doc = all_tokens[offsets[d]:offsets[d + 1]].tolist()
            assert doc == [1] + sp.encode(text) + [2], names[d]


def test_cli_bad_inputs_are_one_line(work, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{"body": "no text"}\n')
    cases = [
        (["data", "build", "--input", str(tmp_path / "missing"), "--tokenizer", str(work["tok"]),
          "--out", str(tmp_path / "x.h5")], "no such file or directory"),
        (["data", "build", "--input", str(tmp_path / "empty"), "--tokenizer", str(work["tok"]),
          "--out", str(tmp_path / "x.h5")], "no files matching '*.py'"),
        (["data", "build", "--input", str(tmp_path / "bad.jsonl"), "--tokenizer", str(work["tok"]),
          "--out", str(tmp_path / "x.h5")], "bad.jsonl:2: no \"text\" field"),
        (["data", "build", "--input", str(tmp_path / "bad.jsonl"), "--tokenizer", str(tmp_path),
          "--out", str(tmp_path / "x.h5")], "no tokenizer.model"),
        (["data", "tokenizer", "--input", str(tmp_path / "empty"), "--out", str(tmp_path / "t")],
         "no files matching"),
        (["data", "build", "--tokenizer", str(work["tok"]), "--out", str(tmp_path / "x.h5"),
          "--valid-fraction", "1.5"], "outside [0, 1)"),
    ]
    for args, needle in cases:
        proc = run(*args, check=False)
        assert proc.returncode != 0, args
        # Progress lines may precede it; the error itself is the last line, and only one.
        lines = [l for l in proc.stderr.splitlines() if l.strip()]
        errors = [l for l in lines if l.startswith("augur ")]
        assert errors == lines[-1:], proc.stderr
        assert errors[0].startswith("augur data "), errors[0]
        assert needle in errors[0], errors[0]
        assert not (tmp_path / "x.h5").exists()
