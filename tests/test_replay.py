"""An episode replays identically from its record (issue 39): the recorded generations, played back
through the same loop, expert and sandbox, give the same messages, observations, expert calls and
patch, under both collaboration interfaces and with forced asks of an invocation baseline."""

from __future__ import annotations

from functools import partial

import pytest

from protege.agent.config import AgentConfig
from protege.agent.invocation import EveryN
from protege.agent.loop import run_episodes
from protege.agent.tools import format_tool_call
from protege.core.actions import COLLABORATE
from protege.core.protocols import Generation
from protege.core.trajectory import TrajectoryWriter
from protege.env.factory import make_environment
from protege.models.factory import make_expert, make_policy
from protege.tasks.bundled import load_source


class Script:
    name = "script"

    def __init__(self, texts):
        self.texts = texts

    def generate(self, conversations, tools):
        turns = [sum(m["role"] == "assistant" for m in c) for c in conversations]
        return [Generation(self.texts[min(k, len(self.texts) - 1)], 40 + k, 7) for k in turns]


def _texts(interface: str) -> list[str]:
    ask = ("Which line is wrong? " + COLLABORATE + " trailing text the loop cuts" if interface == "token"
           else format_tool_call("ask_expert", {"question": "Which line is wrong?"}))
    fix = {"command": "str_replace", "path": "tinycalc/ranges.py", "old_str": "range(start, stop))",
           "new_str": "range(start, stop + 1))"}
    return [format_tool_call("bash", {"command": "cat tinycalc/ranges.py"}),
            "I will now edit the file",  # a format error
            ask,
            format_tool_call("str_replace_editor", fix),
            format_tool_call("bash", {"command": "python -m pytest -q tests"}),
            format_tool_call("submit", {})]


def _comparable(traj):
    """The record without what differs between runs by design: timings, the policy's name, the
    sandbox's per-episode user id."""
    d = traj.to_dict()
    d["model"] = ""
    d["environment"].pop("uid", None)
    for step in d["steps"]:
        step["generation_s"] = step["execution_s"] = 0.0
    for call in d["expert_calls"]:
        call["duration_s"] = 0.0
    d["wall_s"] = 0.0
    return d


@pytest.mark.parametrize("interface", ["tool", "token"])
def test_an_episode_replays_identically_from_its_record(interface, tiny_task, env_config, tmp_path):
    config = AgentConfig.preset("smoke", interface=interface, step_limit=10)
    envs = partial(make_environment, config=env_config)
    expert = make_expert("reference:description")
    [first] = run_episodes([tiny_task], Script(_texts(interface)), expert, envs, config, invocation=EveryN(4),
                           writer=TrajectoryWriter(tmp_path / "recorded"))
    assert first.exit_status == "submitted" and first.patch, first.exit_status
    assert first.counts.format_errors == 1 and first.counts.forced_asks == 1 and first.counts.expert_calls == 2
    replay = make_policy(f"replay:{tmp_path / 'recorded'}", [])
    [again] = run_episodes([tiny_task], replay, make_expert("reference:description"), envs, config,
                           invocation=EveryN(4))
    assert _comparable(again) == _comparable(first)


def test_a_diverging_replay_ends_visibly(tiny_task, env_config, tmp_path):
    """Replayed under a longer step limit than recorded, the record runs out: a policy error, not an
    invented action."""
    config = AgentConfig.preset("smoke", step_limit=2)
    envs = partial(make_environment, config=env_config)
    run_episodes([tiny_task], Script(_texts("tool")), None, envs, config,
                 writer=TrajectoryWriter(tmp_path / "recorded"))
    [again] = run_episodes([tiny_task], make_policy(f"replay:{tmp_path / 'recorded'}", []), None, envs,
                           AgentConfig.preset("smoke", step_limit=4))
    assert again.counts.policy_errors >= 1 and "no more generations" in again.steps[2].observation


def test_replay_needs_records(tmp_path):
    with pytest.raises(ValueError, match="no trajectory files"):
        make_policy(f"replay:{tmp_path}", [])


def test_records_sharing_an_issue_text_replay_each_to_its_own_episode(env_config, tmp_path):
    """Two bundled tasks made from one issue template (gridlib-0019 and -0026 have the same issue text):
    run in one batch, each episode replays its own record (the ORACLE scripted policy gives them
    different edits)."""
    tasks = [t for t in load_source("bundled") if t.instance_id.endswith(("gridlib-0019", "gridlib-0026"))]
    assert len(tasks) == 2 and tasks[0].problem_statement == tasks[1].problem_statement
    config = AgentConfig.preset("smoke", max_parallel=2)
    envs = partial(make_environment, config=env_config)
    first = run_episodes(tasks, make_policy("scripted", tasks), None, envs, config,
                         writer=TrajectoryWriter(tmp_path / "recorded"))
    assert first[0].patch != first[1].patch
    again = run_episodes(tasks, make_policy(f"replay:{tmp_path / 'recorded'}", []), None, envs, config)
    assert [_comparable(t) for t in again] == [_comparable(t) for t in first]
