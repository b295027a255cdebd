"""The token interface (AgentConfig.interface="token", issue 39): the protégé asks by writing
<<collaborate>>, the loop calls the expert and appends "[Expert]: ..."; the token is one added
token of the tokenizer, survives save and reload, and ends a generation."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import pytest
import torch

from protege.agent.config import AgentConfig, system_message
from protege.agent.invocation import EveryN
from protege.agent.loop import context_view, run_episodes
from protege.agent.tools import format_tool_call
from protege.core.actions import COLLABORATE
from protege.core.protocols import ExpertReply, Generation
from protege.env.factory import make_environment
from protege.models.engine import add_collaborate_token
from protege.models.registry import tiny_dir


@dataclass
class Echo:
    oracle: bool = False
    name: str = "echo"
    requests: list = field(default_factory=list)

    def advise(self, request):
        self.requests.append(request)
        return ExpertReply("Look at the range() upper bound.", input_tokens=100, output_tokens=20)


@dataclass
class Script:
    """Turn k of every conversation answers texts[k] (the last one repeated)."""

    texts: list[str]
    name: str = "script"
    tools_seen: list = field(default_factory=list)

    def generate(self, conversations, tools):
        self.tools_seen.append([t["function"]["name"] for t in tools])
        turns = [sum(m["role"] == "assistant" for m in c) for c in conversations]
        return [Generation(self.texts[min(k, len(self.texts) - 1)], 10, 5) for k in turns]


def _run(task, policy, expert, env_config, **kw):
    config = kw.pop("config", AgentConfig.preset("smoke", interface="token"))
    return run_episodes([task], policy, expert, partial(make_environment, config=env_config), config, **kw)


def test_the_token_asks_and_the_reply_follows_expert_prefix(tiny_task, env_config):
    policy = Script([f"I cannot see the bug. {COLLABORATE} and then rambling",
                     format_tool_call("submit", {})])
    expert = Echo()
    [traj] = _run(tiny_task, policy, expert, env_config)
    assert traj.exit_status == "submitted" and traj.counts.expert_calls == 1 and traj.counts.format_errors == 0
    assert expert.requests[0].question == "I cannot see the bug."
    asked, reply = traj.messages[2], traj.messages[3]
    assert asked == {"role": "assistant", "content": f"I cannot see the bug. {COLLABORATE}"}  # cut at the token
    assert reply["content"] == "[Expert]: Look at the range() upper bound."
    assert traj.expert_calls[0].input_tokens == 100 and traj.tokens.expert_output == 20
    # no ask_expert tool offered; the system prompt explains the token
    assert "ask_expert" not in policy.tools_seen[0] and COLLABORATE in traj.messages[0]["content"]
    assert "ask_expert" not in traj.messages[0]["content"]
    # an [Expert]: reply is guidance: kept when the context is cut
    view = context_view(traj.messages + [{"role": "user", "content": "x"}] * 6, max_messages=4)
    assert reply in view


def test_forced_asks_are_written_as_the_token(tiny_task, env_config):
    config = AgentConfig.preset("smoke", interface="token", step_limit=4)
    [traj] = _run(tiny_task, Script([format_tool_call("bash", {"command": "ls"})]), Echo(), env_config,
                  config=config, invocation=EveryN(3))
    forced = [m for m in traj.messages if m["role"] == "assistant" and COLLABORATE in m["content"]]
    assert traj.counts.forced_asks == 1 and forced[0]["content"].endswith(COLLABORATE)


def test_the_tool_interface_ignores_the_token(tiny_task, env_config):
    """The same text under the paper's interface is no tool call: a format error, no expert call."""
    config = AgentConfig.preset("smoke", step_limit=2)
    [traj] = _run(tiny_task, Script([f"help {COLLABORATE}"]), Echo(), env_config, config=config)
    assert traj.counts.expert_calls == 0 and traj.counts.format_errors == 2


def test_unknown_interface_is_refused():
    with pytest.raises(ValueError, match="interface 'button'"):
        system_message(AgentConfig(interface="button"), ask_expert=True)


def test_token_is_one_id_survives_save_reload_and_ends_generation(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from protege.models.policies import TransformersPolicy

    tok = AutoTokenizer.from_pretrained(tiny_dir())
    model = AutoModelForCausalLM.from_pretrained(tiny_dir(), dtype=torch.float32)
    before = len(tok)
    new_id = add_collaborate_token(model, tok)
    assert len(tok) == before + 1 and tok(f"Stuck. {COLLABORATE}", add_special_tokens=False)["input_ids"][-1] == new_id
    assert tok.decode([new_id], skip_special_tokens=True) == COLLABORATE  # decoding keeps it
    seeds = sorted({i for w in ("ask", " ask", " help", " expert", " collaborate", " question")
                    for i in tok(w, add_special_tokens=False)["input_ids"]})
    emb = model.get_input_embeddings().weight
    assert torch.allclose(emb[new_id], emb[seeds].mean(dim=0))
    assert add_collaborate_token(model, tok) == new_id and len(tok) == before + 1  # idempotent
    with torch.no_grad():  # make the token the greedy choice, to see generation stop at it
        model.get_output_embeddings().weight[new_id] = 50 * model.get_output_embeddings().weight[new_id].sign()
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    tok2 = AutoTokenizer.from_pretrained(tmp_path)
    model2 = AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32)
    assert tok2.convert_tokens_to_ids(COLLABORATE) == new_id
    assert model2.get_input_embeddings().weight.shape[0] > new_id
    policy = TransformersPolicy(tmp_path, max_new_tokens=20, temperature=0, dtype="float32")
    [gen] = policy.generate([[{"role": "user", "content": "Fix the failing test."}]], [])
    assert gen.text.endswith(COLLABORATE) and gen.completion_tokens < 20 and gen.finish_reason == "stop", gen


def _token_row(iid: str) -> dict:
    """A TRL-form row of the token interface: bash turns, a <<collaborate>> turn, the [Expert]: reply, submit."""
    import json

    def call(thought, name, args):
        return {"role": "assistant", "content": thought,
                "tool_calls": [{"type": "function", "function": {"name": name, "arguments": json.dumps(args)}}]}

    messages = [{"role": "system", "content": "You fix bugs. When stuck, write <<collaborate>>."},
                {"role": "user", "content": f"<issue>\nadd() in calc.py is wrong ({iid}).\n</issue>"},
                call("Look.", "bash", {"command": "cat calc.py"}),
                {"role": "tool", "name": "bash", "content": "def add(a, b):\n    return a - b"},
                {"role": "assistant", "content": f"Where is the bug? {COLLABORATE}"},
                {"role": "user", "content": "[Expert]: In add(), `-` must be `+`."},
                call("Fixed.", "submit", {})]
    return {"messages": messages, "tools": "[]", "instance_id": iid, "package": "calc", "source": "live",
            "strategy": "live", "n_expert_calls": 1}


def test_sft_on_token_rows_trains_the_new_row_and_merges(tmp_path):
    """LoRA leaves embeddings frozen: the token's row trains as peft trainable tokens, and the merged
    model (vocabulary resized) carries the trained row; the token is a trained protégé output."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from protege.stages.dataset import save_dataset
    from protege.stages.sft import train
    from protege.stages.sft_config import SFTRunConfig
    from protege.stages.sft_data import tokenize_rows
    from protege.stages.sft_trainer import load_tokenizer

    rows = [_token_row(f"calc__calc-{i}") for i in range(6)]
    data = tmp_path / "data"
    save_dataset(rows, data, "synthetic", val_fraction=0.2, seed=0)
    config = SFTRunConfig.preset("smoke", max_steps=3, per_device_batch=1, grad_accum=1, max_length=1024,
                                 save_steps=-1, logging_steps=1, learning_rate=5e-2)
    train(config, data, tmp_path / "sft")
    merged = tmp_path / "sft" / "merged"
    tok = AutoTokenizer.from_pretrained(merged)
    new_id = tok.convert_tokens_to_ids(COLLABORATE)
    model = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32)
    base_tok = load_tokenizer(tiny_dir())
    base = AutoModelForCausalLM.from_pretrained(tiny_dir(), dtype=torch.float32)
    assert new_id == len(base_tok) and len(tok) == len(base_tok) + 1
    assert model.get_input_embeddings().weight.shape == base.get_input_embeddings().weight.shape  # a spare row used
    start = torch.stack([base.get_input_embeddings().weight[i] for i in sorted(
        {i for w in ("ask", " ask", " help", " expert", " collaborate", " question")
         for i in base_tok(w, add_special_tokens=False)["input_ids"]})]).mean(dim=0)
    assert not torch.allclose(model.get_input_embeddings().weight[new_id], start)  # trained away from its start
    # the token is inside a trained (masked-in) protégé turn
    examples, _ = tokenize_rows(rows[:1], tok, 1024, "window")
    ids, mask = examples[0]["input_ids"], examples[0]["assistant_masks"]
    at_ask = [i for i, t in enumerate(ids) if t == new_id]  # the system prompt names it too
    assert len(at_ask) == 2 and mask[at_ask[0]] == 0 and mask[at_ask[1]] == 1, "the protégé's token carries loss"
    reply = tok("[Expert]:", add_special_tokens=False)["input_ids"]
    at = next(i for i in range(len(ids)) if ids[i:i + len(reply)] == reply)
    assert not any(mask[at:at + len(reply)]), "the expert's reply is context only"


@pytest.mark.parametrize("interface", ["tool", "token"])
def test_one_episode_in_both_designs(interface, tiny_task, env_config, tmp_path):
    """Notebook 02's side-by-side example: the same ask and reply in each design, from a record of either."""
    from protege.core.trajectory import to_json
    from protege.models.factory import make_expert
    from protege.models.scripted import ScriptedPolicy
    from protege.stages.insert_datasets import interface_example

    config = AgentConfig.preset("smoke", interface=interface)
    [traj] = _run(tiny_task, ScriptedPolicy([tiny_task]), make_expert("reference:description"), env_config,
                  config=config)
    (tmp_path / "live").mkdir()
    (tmp_path / "live" / "kept.jsonl").write_text(to_json(traj.to_dict()) + "\n")
    table = interface_example(tmp_path)
    ask, reply = table.loc["protégé asks"], table.loc["the loop appends"]
    question = traj.expert_calls[0].question
    assert ask["token interface"].endswith(f"{question} {COLLABORATE}") or ask["token interface"].endswith("…")
    assert '"name": "ask_expert"' in ask["tool interface"] and COLLABORATE not in ask["tool interface"]
    assert reply["token interface"].startswith("[Expert]: ") and reply["tool interface"].startswith("<expert_guidance>")
    assert list(table.index).count("assistant") == 2  # the turn before the ask and the one after
    assert "asks the expert" in interface_example(tmp_path / "live").iloc[0]["tool interface"]  # none: a note
