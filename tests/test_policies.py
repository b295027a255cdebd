"""TransformersPolicy on the tiny model; OpenAIPolicy and OpenAIExpert against a real
`transformers serve` server on loopback (one server for both)."""

import math
import random

import pytest
import torch

from protege.core.protocols import ExpertRequest, Policy
from protege.models.engine import GQA_SDPA
from protege.models.experts import OpenAIExpert
from protege.models.policies import TOOL_CALL_END, TransformersPolicy
from protege.models.registry import tiny_dir
from protege.models.remote_policies import OpenAIPolicy
from protege.models.serving import ServedModel, free_port

TOOLS = [{"type": "function", "function": {
    "name": "bash", "description": "Run a shell command.",
    "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}}]


def conversations(n):
    return [[{"role": "user", "content": "Fix the failing test. " * (i + 1)}] for i in range(n)]


@pytest.fixture(scope="module")
def tiny():
    return tiny_dir()


@pytest.fixture(scope="module")
def policy(tiny):
    # fp32, as RL rollouts run (the trainer's fp32 model is shared): log-probs are compared exactly
    return TransformersPolicy(tiny, max_new_tokens=12, temperature=0.8, batch_size=4, return_logprobs=True, seed=1,
                              dtype="float32")


def test_batched_generation_counts_and_logprobs(policy):
    assert isinstance(policy, Policy)
    convs = conversations(4)
    gens = policy.generate(convs, TOOLS)
    assert len(gens) == 4
    for conv, gen in zip(convs, gens):
        expected = policy.tokenizer.apply_chat_template(conv, tools=TOOLS, tokenize=False, add_generation_prompt=True)
        assert gen.prompt_ids == policy.tokenizer(expected, add_special_tokens=False).input_ids
        assert gen.error is None and gen.prompt_tokens == len(gen.prompt_ids)
        assert 0 < gen.completion_tokens == len(gen.completion_ids) == len(gen.logprobs) <= 12
        assert all(math.isfinite(lp) and lp <= 0 for lp in gen.logprobs)
        assert gen.text == policy.tokenizer.decode(gen.completion_ids, skip_special_tokens=True)
        assert gen.finish_reason in ("stop", "length")
    # Different prompt lengths, so the batch was left-padded; order must be preserved.
    assert [g.prompt_tokens for g in gens] == sorted(g.prompt_tokens for g in gens)


def test_logprobs_match_a_forward_pass(policy):
    """What RL needs: the returned log-probs equal log_softmax(logits / T) of the model
    re-scoring the same tokens without padding."""
    for gen in policy.generate(conversations(2), []):
        ids = torch.tensor([gen.prompt_ids + gen.completion_ids])
        with torch.no_grad():
            logits = policy.model(ids).logits[0, len(gen.prompt_ids) - 1 : -1]
        expected = torch.log_softmax(logits / policy.temperature, -1).gather(1, ids[0, len(gen.prompt_ids) :, None])
        assert torch.allclose(torch.tensor(gen.logprobs), expected.squeeze(1), atol=1e-3)


def _biased_towards(policy, token: str):
    """A copy of the tiny model whose output always prefers `token`."""
    model = type(policy.model)(policy.model.config)
    model.load_state_dict(policy.model.state_dict())
    head = torch.nn.Linear(model.config.hidden_size, model.config.vocab_size, bias=True)
    head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())
    head.bias.data.zero_()
    head.bias.data[policy.tokenizer.convert_tokens_to_ids(token)] = 1e4
    model.lm_head = head
    return model


@pytest.mark.parametrize("token, text", [(TOOL_CALL_END, TOOL_CALL_END), ("<|im_end|>", "")])
def test_generation_stops_at_tool_call_end_and_eos(policy, token, text):
    biased = TransformersPolicy(policy.model_dir, model=_biased_towards(policy, token), tokenizer=policy.tokenizer,
                                max_new_tokens=10, temperature=0, batch_size=2)
    gens = biased.generate(conversations(3), [])
    assert [(g.completion_tokens, g.text, g.finish_reason) for g in gens] == [(1, text, "stop")] * 3


def test_prompt_beyond_context_is_an_error_not_a_crash(tiny):
    small = TransformersPolicy(tiny, max_new_tokens=4, temperature=0)
    small.context_len = 80
    gens = small.generate([[{"role": "user", "content": "hi"}], [{"role": "user", "content": "x " * 100}]], [])
    assert gens[0].error is None and gens[0].completion_tokens > 0
    assert "exceeds context" in gens[1].error and gens[1].completion_tokens == 0


# ------------------------------------------------------------ a real OpenAI-compatible server


@pytest.fixture(scope="module")
def server(tiny, tmp_path_factory):
    """transformers serve, launched as the pipeline launches vLLM (protege.models.serving)."""
    with ServedModel(str(tiny), backend="transformers", device="cpu", ready_timeout_s=240,
                     log_dir=tmp_path_factory.mktemp("serve")) as served:
        yield served.base_url


def test_openai_policy_against_transformers_serve(server, tiny):
    policy = OpenAIPolicy(server, str(tiny), max_tokens=4, temperature=1.0, timeout=120)
    assert isinstance(policy, Policy)
    convs = conversations(1) + [[
        {"role": "user", "content": "Fix the failing test."},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "bash", "arguments": '{"command": "ls"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "setup.py"},
    ]]
    with_tools = policy.generate(convs, TOOLS)
    assert [g.error for g in with_tools] == [None] * 2
    # A random tiny model may sample only special tokens, so the text itself can be empty.
    assert all(0 < g.completion_tokens <= 4 and isinstance(g.text, str) for g in with_tools)
    [without] = policy.generate(convs[:1], [])
    assert without.error is None
    assert with_tools[0].prompt_tokens > without.prompt_tokens  # the tools block reached the prompt


def test_openai_policy_turns_failures_into_errors():
    policy = OpenAIPolicy(f"http://127.0.0.1:{free_port()}/v1", "m", timeout=2, max_retries=0)
    [gen] = policy.generate(conversations(1), TOOLS)
    assert gen.text == "" and "APIConnectionError" in gen.error


def test_openai_expert_against_transformers_serve(server, tiny):
    """A real request through a real server. The tiny model is random, so one answer may be only
    whitespace (an "empty reply", failed, as the expert reports it: seen on an AVX2-only CPU); greedy
    answers to three questions include text."""
    expert = OpenAIExpert(server, str(tiny), max_tokens=8, temperature=0.0, timeout_s=120,
                          prices={str(tiny): (1.0, 2.0)})
    replies = [expert.advise(ExpertRequest(q, [{"role": "user", "content": "The parser crashes."}], "t-1",
                                           problem_statement="parse() fails on padded input"))
               for q in ("Where is the bug?", "Which line is wrong?", "What should I change?")]
    for reply in replies:
        assert not reply.oracle and reply.meta["attempts"] == 1
        assert reply.input_tokens > 0 and 0 < reply.output_tokens <= 8
        assert reply.cost_usd == pytest.approx((reply.input_tokens * 1.0 + reply.output_tokens * 2.0) / 1e6)
        assert reply.failed == (reply.error == "empty reply")
    assert any(not r.failed and r.text.strip() for r in replies)


def _agent_turns(policy, convs, turns, tools=TOOLS):
    """An agent-shaped run: each turn appends the completion and an observation."""
    convs = [list(c) for c in convs]
    out = []
    for t in range(turns):
        gens = policy.generate(convs, tools)
        out.append(gens)
        for conv, gen in zip(convs, gens):
            conv += [{"role": "assistant", "content": gen.text},
                     {"role": "user", "content": f"observation {t}\n" + "line\n" * (2 + 3 * t)}]
    return out


def test_turn_cache_gives_the_uncached_greedy_output_with_fewer_prefill_tokens(tiny):
    """fp32: the cached path (only tokens added since the last turn are computed) generates
    exactly what re-prefilling the whole conversation generates."""
    convs = conversations(3)
    plain = TransformersPolicy(tiny, max_new_tokens=10, temperature=0, batch_size=2, cache_turns=False,
                               dtype="float32", return_logprobs=True)
    cached = TransformersPolicy(tiny, max_new_tokens=10, temperature=0, batch_size=2, dtype="float32",
                                return_logprobs=True, model=plain.model, tokenizer=plain.tokenizer)
    a, b = _agent_turns(plain, convs, 4), _agent_turns(cached, convs, 4)
    for turn_a, turn_b in zip(a, b):
        assert [g.text for g in turn_a] == [g.text for g in turn_b]
        assert [g.prompt_ids for g in turn_a] == [g.prompt_ids for g in turn_b]
        for ga, gb in zip(turn_a, turn_b):
            assert torch.allclose(torch.tensor(ga.logprobs), torch.tensor(gb.logprobs), atol=1e-4)
    assert cached.stats["prompt_tokens"] == plain.stats["prompt_tokens"]
    assert cached.stats["prefill_tokens"] < 0.5 * plain.stats["prefill_tokens"]
    # the first batch prefills in full; the rest shares the system prompt or continues its own cache
    assert cached.stats["full_prefills"] == 2 and plain.stats["full_prefills"] == 12
    assert cached.stats["shared_prefix_tokens"] > 0  # the first batch's two rows: their system prompt once


def test_static_and_dynamic_caches_generate_the_same_tokens(tiny):
    """fp32: continuing a StaticCache (written in place, the default) and a DynamicCache
    (concatenated per step) give the same greedy tokens and log-probs over 3 agent turns."""
    convs = conversations(3)
    static = TransformersPolicy(tiny, max_new_tokens=10, temperature=0, batch_size=3, dtype="float32",
                                return_logprobs=True)
    dynamic = TransformersPolicy(tiny, max_new_tokens=10, temperature=0, batch_size=3, dtype="float32",
                                 return_logprobs=True, cache_implementation="dynamic", model=static.model,
                                 tokenizer=static.tokenizer)
    a, b = _agent_turns(static, convs, 3), _agent_turns(dynamic, convs, 3)
    assert [[g.text for g in t] for t in a] == [[g.text for g in t] for t in b]
    for turn_a, turn_b in zip(a, b):
        for ga, gb in zip(turn_a, turn_b):
            assert torch.allclose(torch.tensor(ga.logprobs), torch.tensor(gb.logprobs), atol=1e-4)
    assert static.stats == dynamic.stats  # the same reuse: only the cache's layout differs
    with pytest.raises(ValueError, match="cache_implementation"):
        TransformersPolicy(tiny, cache_implementation="paged", model=static.model,
                           tokenizer=static.tokenizer).generate(convs[:1], TOOLS)


def test_native_gqa_attention_computes_what_sdpa_computes(tiny, tmp_path):
    """protege.models.engine.use_native_gqa (torch's grouped-query kernel instead of copied key/value
    heads), fp32: the same greedy tokens and log-probs as transformers' sdpa over 3 cached agent
    turns; on a left-padded batch the same logits, loss and gradients (RL trains the switched
    model); saved, the model's config does not name the switch."""
    convs = conversations(3)
    gqa = TransformersPolicy(tiny, max_new_tokens=10, temperature=0, batch_size=3, dtype="float32",
                             return_logprobs=True)
    sdpa = TransformersPolicy(tiny, max_new_tokens=10, temperature=0, batch_size=3, dtype="float32",
                              return_logprobs=True, native_gqa=False)
    assert gqa.model.config._attn_implementation == GQA_SDPA and sdpa.model.config._attn_implementation == "sdpa"
    a, b = _agent_turns(gqa, convs, 3), _agent_turns(sdpa, convs, 3)
    assert [[g.text for g in t] for t in a] == [[g.text for g in t] for t in b]
    for turn_a, turn_b in zip(a, b):
        for ga, gb in zip(turn_a, turn_b):
            assert torch.allclose(torch.tensor(ga.logprobs), torch.tensor(gb.logprobs), atol=1e-5)
    batch = gqa.tokenizer(["short", "a much longer prompt " * 5], return_tensors="pt", padding=True,
                          padding_side="left")
    outs = []
    for model in (gqa.model, sdpa.model):
        model.zero_grad()
        out = model(**batch, labels=batch.input_ids.masked_fill(batch.attention_mask == 0, -100))
        out.loss.backward()
        outs.append((out.logits[batch.attention_mask.bool()], out.loss, model.model.layers[0].self_attn.k_proj.weight.grad))
    for x, y in zip(*outs):
        assert torch.allclose(x, y, atol=1e-5)
    gqa.model.save_pretrained(tmp_path)
    assert GQA_SDPA not in (tmp_path / "config.json").read_text()


def test_a_changed_prefix_reuses_only_what_is_common(tiny):
    policy = TransformersPolicy(tiny, max_new_tokens=6, temperature=0, dtype="float32")
    plain = TransformersPolicy(tiny, max_new_tokens=6, temperature=0, dtype="float32", cache_turns=False,
                               model=policy.model, tokenizer=policy.tokenizer)
    _agent_turns(policy, conversations(2), 2)
    # context truncation: the conversation no longer starts as it did; the system prompt is still shared
    truncated = [[{"role": "user", "content": "A different start: the context was truncated. " * 3}]]
    prefill = policy.stats["prefill_tokens"]
    [gen] = policy.generate(truncated, TOOLS)
    assert gen.text == plain.generate(truncated, TOOLS)[0].text
    assert 0 < policy.stats["prefill_tokens"] - prefill < gen.prompt_tokens
    policy.clear_cache()  # e.g. after the weights changed: nothing is reused
    full = policy.stats["full_prefills"]
    [again] = policy.generate(truncated, TOOLS)
    assert policy.stats["full_prefills"] == full + 1 and again.text == gen.text


def test_bf16_cached_logits_stay_close_to_fp32(tiny):
    """bf16 weights (the GPU rollout dtype): the cached path's log-probs agree with fp32's
    within 0.1 nats per token on the tiny model (bf16 keeps ~3 significant digits)."""
    fp32 = TransformersPolicy(tiny, max_new_tokens=8, temperature=1.0, dtype="float32", return_logprobs=True, seed=3)
    gens = _agent_turns(fp32, conversations(2), 2)[-1]
    bf16 = TransformersPolicy(tiny, max_new_tokens=8, temperature=1.0, dtype="bfloat16", return_logprobs=True, seed=3)
    for gen in gens:
        ids = torch.tensor([gen.prompt_ids + gen.completion_ids])
        with torch.no_grad():
            logits = bf16.model(ids).logits[0, len(gen.prompt_ids) - 1: -1].float()
        lp = torch.log_softmax(logits, -1).gather(1, ids[0, len(gen.prompt_ids):, None]).squeeze(1)
        assert (lp - torch.tensor(gen.logprobs)).abs().max() < 0.1


def test_rows_that_start_alike_compute_their_common_prefixes_once(tiny):
    """G rollouts of each task (identical prompts under one system prompt): the system prompt is
    computed once, each task's prompt once more from it, each row only its last token; greedy
    tokens and log-probs are those of the plain path."""
    tasks = conversations(2)
    convs = [tasks[0]] * 3 + [tasks[1]] * 3
    plain = TransformersPolicy(tiny, max_new_tokens=6, temperature=0, batch_size=6, cache_turns=False,
                               dtype="float32", return_logprobs=True)
    shared = TransformersPolicy(tiny, max_new_tokens=6, temperature=0, batch_size=6, dtype="float32",
                                return_logprobs=True, model=plain.model, tokenizer=plain.tokenizer)
    a, b = plain.generate(convs, TOOLS), shared.generate(convs, TOOLS)
    assert [g.completion_ids for g in a] == [g.completion_ids for g in b]
    for ga, gb in zip(a, b):
        assert torch.allclose(torch.tensor(ga.logprobs), torch.tensor(gb.logprobs), atol=1e-4)
    ids0, ids1 = b[0].prompt_ids, b[3].prompt_ids
    root = next(k for k, (x, y) in enumerate(zip(ids0, ids1)) if x != y)
    assert shared.stats["prefill_tokens"] == root + (len(ids0) - 1 - root) + (len(ids1) - 1 - root) + 6
    assert shared.stats["prefill_tokens"] + shared.stats["shared_prefix_tokens"] == plain.stats["prefill_tokens"]


@pytest.mark.parametrize("merged", [False, True])
def test_shared_prefixes_under_rl_mixed_precision(tiny, merged):
    """RL on a CPU with native bf16: the trainer's fp32 LoRA model comes with its forward wrapped
    in bf16 autocast (accelerate's prepare_model, as below), while PeftModel.generate runs the base
    model without it. The shared prefixes must be computed as generate() computes, or its decode
    steps cannot write beside them (the fresh-clone `make small` of 2026-12-03 failed so)."""
    import types

    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32),
                           LoraConfig(r=4, target_modules="all-linear"))
    model.forward = types.MethodType(torch.autocast("cpu", dtype=torch.bfloat16)(model.forward.__func__), model)
    if merged:
        model.merge_adapter()
    tasks = conversations(2)
    policy = TransformersPolicy(tiny, max_new_tokens=6, temperature=1.0, batch_size=6, return_logprobs=True,
                                model=model, seed=2)
    turns = _agent_turns(policy, [tasks[0]] * 3 + [tasks[1]] * 3, 2)
    assert policy.stats["shared_prefix_tokens"] > 0
    assert all(len(g.logprobs) == g.completion_tokens > 0 for gens in turns for g in gens)


def _stops_early_for_some_rows(policy):
    """A copy of the tiny model whose end-of-turn logit follows the hidden state: greedy, 5 of
    these 8 prompts end at once and 3 run to the budget (found by a scan; the model is random)."""
    model = type(policy.model)(policy.model.config)
    model.load_state_dict(policy.model.state_dict())
    eos = policy.tokenizer.convert_tokens_to_ids("<|im_end|>")
    torch.manual_seed(0)
    weight = model.lm_head.weight.detach().clone()
    weight[eos] = 0.5 * torch.randn(model.config.hidden_size)
    head = torch.nn.Linear(model.config.hidden_size, model.config.vocab_size, bias=True)
    head.weight = torch.nn.Parameter(weight)
    head.bias.data.zero_()
    head.bias.data[eos] = -0.5
    model.lm_head = head
    words = ["fix", "the", "failing", "test", "in", "module", "parser", "when", "input", "empty", "returns", "none", "raises", "error", "list", "index"]
    rng = random.Random(0)
    convs = [[{"role": "user", "content": " ".join(rng.choice(words) for _ in range(5 + 3 * i))}] for i in range(8)]
    return model, convs


def test_a_regrouped_batch_generates_what_one_batch_generates(tiny):
    """Once half the rows have stopped, the call is cut and the rest continue in a smaller batch
    from their caches: fp32 greedy tokens, finish reasons and log-probs are those of one
    uncut generate(), over two agent turns (the turn cache holds the regrouped rows too)."""
    base = TransformersPolicy(tiny, max_new_tokens=24, temperature=0, dtype="float32")
    model, convs = _stops_early_for_some_rows(base)
    kw = dict(model=model, tokenizer=base.tokenizer, max_new_tokens=24, temperature=0, batch_size=8,
              return_logprobs=True, regroup_min_rows=2)
    whole = TransformersPolicy(tiny, regroup_at=1.0, **kw)
    regrouped = TransformersPolicy(tiny, regroup_at=0.5, **kw)
    a, b = _agent_turns(whole, convs, 2, []), _agent_turns(regrouped, convs, 2, [])
    assert sorted({g.completion_tokens for g in a[0]}) == [1, 24]  # the premise: rows stop at different steps
    for turn_a, turn_b in zip(a, b):
        assert [(g.completion_ids, g.finish_reason) for g in turn_a] == [(g.completion_ids, g.finish_reason)
                                                                         for g in turn_b]
        for ga, gb in zip(turn_a, turn_b):
            assert torch.allclose(torch.tensor(ga.logprobs), torch.tensor(gb.logprobs), atol=1e-4)
    assert whole.stats["regroups"] == 0 < regrouped.stats["regroups"]
    small = TransformersPolicy(tiny, **{**kw, "regroup_min_rows": 9})  # 8 rows: too few to be worth a regrouping
    assert [g.completion_ids for g in small.generate(convs, [])] == [g.completion_ids for g in a[0]]
    assert small.stats["regroups"] == 0
    assert regrouped.stats["generated_tokens"] == whole.stats["generated_tokens"]


def test_sampled_log_probs_stay_exact_across_a_regrouping(tiny):
    """What RL needs after a regrouping: each returned log-prob is log_softmax(logits / T) of the
    model re-scoring the whole completion in one unpadded forward."""
    base = TransformersPolicy(tiny, max_new_tokens=24, temperature=0, dtype="float32")
    model, convs = _stops_early_for_some_rows(base)
    policy = TransformersPolicy(tiny, model=model, tokenizer=base.tokenizer, max_new_tokens=16, temperature=0.3,
                                batch_size=8, return_logprobs=True, regroup_at=0.25, seed=1,
                                regroup_min_rows=2)
    gens = policy.generate(convs, [])
    assert policy.stats["regroups"] > 1 and len({g.completion_tokens for g in gens}) > 2
    for gen in gens:
        ids = torch.tensor([gen.prompt_ids + gen.completion_ids])
        with torch.no_grad():
            logits = model(ids).logits[0, len(gen.prompt_ids) - 1: -1]
        expected = torch.log_softmax(logits / 0.3, -1).gather(1, ids[0, len(gen.prompt_ids):, None]).squeeze(1)
        assert len(gen.logprobs) == gen.completion_tokens and torch.allclose(torch.tensor(gen.logprobs), expected,
                                                                              atol=1e-3)
