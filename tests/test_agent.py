"""The agent loop end to end on a real LocalEnvironment with the scripted oracle policy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import partial

from protege.agent.config import AgentConfig
from protege.agent.invocation import EveryN, OnLoop, Random
from protege.agent.loop import context_view, run_episodes
from protege.agent.tools import format_tool_call
from protege.core.loop_detection import has_long_run
from protege.core.protocols import ExpertReply, ExpertRequest, Generation
from protege.core.trajectory import TrajectoryWriter, read_jsonl
from protege.env.factory import make_environment
from protege.env.grading import grade
from protege.models.reference_expert import ReferenceExpert
from protege.models.scripted import ScriptedPolicy
from protege.tasks.schema import save_tasks


@dataclass
class EchoExpert:
    """Answers every question; remembers the requests it got."""

    oracle: bool = False
    name: str = "echo"
    requests: list[ExpertRequest] = field(default_factory=list)

    def advise(self, request: ExpertRequest) -> ExpertReply:
        self.requests.append(request)
        return ExpertReply("Look at the range() upper bound.", input_tokens=100, output_tokens=20, oracle=self.oracle)


class FailingExpert:
    name, oracle = "down", False

    def advise(self, request):
        return ExpertReply("", failed=True, error="HTTP 503 after 3 retries")


class RaisingExpert:
    name, oracle = "buggy", False

    def advise(self, request):
        raise RuntimeError("boom")


@dataclass
class FixedPolicy:
    """Answers every conversation with the same text; records batch sizes."""

    text: str = ""
    name: str = "fixed"
    batches: list[int] = field(default_factory=list)
    tool_calls: list | None = None
    error: str | None = None

    def generate(self, conversations, tools):
        self.batches.append(len(conversations))
        return [Generation(self.text, 10, 5, tool_calls=self.tool_calls, error=self.error) for _ in conversations]


def _run(tasks, policy, expert, env_config, **kw):
    config = kw.pop("config", AgentConfig.preset("smoke"))
    return run_episodes(tasks, policy, expert, partial(make_environment, config=env_config), config, **kw)


def test_scripted_policy_solves_and_grades_resolved(tiny_task, env_config, tmp_path):
    expert = EchoExpert(oracle=True)
    [traj] = _run([tiny_task], ScriptedPolicy([tiny_task]), expert, env_config)
    assert traj.exit_status == "submitted", [s.observation for s in traj.steps]
    assert traj.counts.format_errors == 0 and traj.counts.expert_calls == 1
    assert traj.expert_calls[0].oracle and expert.requests[0].gold_patch == tiny_task.patch
    assert len(expert.requests[0].context) == 5
    assert any("<expert_guidance>" in m["content"] for m in traj.messages if m["role"] == "user")
    assert "1 failed" in traj.steps[2].observation and "2 passed" in traj.steps[-2].observation
    assert traj.tokens.expert_input == 100 and traj.tokens.protege_completion > 0
    assert abs(traj.cost_usd - AgentConfig().prices.expert_cost(100, 20)) < 1e-12
    assert "+    return list(range(start, stop + 1))" in traj.patch
    report = grade(tiny_task, traj.patch, env_config, log_dir=tmp_path)
    assert report.resolved, report


def test_gold_patch_is_hidden_from_non_oracle_experts(tiny_task, env_config):
    expert = EchoExpert(oracle=False)
    ask = FixedPolicy(format_tool_call("ask_expert", {"question": "?"}))
    [traj] = _run([tiny_task], ask, expert, env_config, config=AgentConfig.preset("smoke", step_limit=1))
    assert expert.requests[0].gold_patch is None and not traj.expert_calls[0].oracle


def test_many_episodes_share_one_generate_call(tiny_tasks, env_config, tmp_path):
    tasks = tiny_tasks(3)
    policy = FixedPolicy(format_tool_call("bash", {"command": "ls"}))
    config = AgentConfig.preset("smoke", step_limit=4, max_parallel=2)
    trajs = _run(tasks, policy, None, env_config, config=config, writer=TrajectoryWriter(tmp_path))
    assert [t.instance_id for t in trajs] == [t.instance_id for t in tasks]
    assert {t.exit_status for t in trajs} == {"step_limit"} and all(t.counts.steps == 4 for t in trajs)
    assert policy.batches == [2, 2, 2, 2, 1, 1, 1, 1]
    assert len(read_jsonl(tmp_path / "preds.jsonl")) == 3
    again = _run(tasks, policy, None, env_config, config=config, writer=TrajectoryWriter(tmp_path))
    assert policy.batches == [2, 2, 2, 2, 1, 1, 1, 1] and [t.counts.steps for t in again] == [4, 4, 4]


def test_expert_failures_are_observations(tiny_task, env_config):
    ask = FixedPolicy(format_tool_call("ask_expert", {"question": "?"}))
    for expert in (FailingExpert(), RaisingExpert()):
        [traj] = _run([tiny_task], ask, expert, env_config, config=AgentConfig.preset("smoke", step_limit=2))
        assert traj.exit_status == "step_limit" and traj.counts.failed_expert_calls == 2
        call = traj.expert_calls[0]
        assert call.failed and call.error and call.reply == ""
        assert "could not answer" in traj.steps[call.step].observation
        assert "could not answer" in traj.messages[-1]["content"]


def test_expert_cap_and_no_expert(tiny_task, env_config):
    policy = FixedPolicy(format_tool_call("ask_expert", {"question": "help?"}))
    config = AgentConfig.preset("smoke", step_limit=4, expert_call_cap=2)
    [traj] = _run([tiny_task], policy, EchoExpert(), env_config, config=config)
    assert traj.counts.expert_calls == 2 and traj.exit_status == "step_limit"
    assert "No expert calls left" in traj.steps[2].observation
    assert has_long_run(traj.actions, threshold=3)
    [traj] = _run([tiny_task], policy, None, env_config, config=config)
    assert "not available" in traj.steps[0].observation and traj.counts.expert_calls == 0


def test_format_errors_end_the_episode(tiny_task, env_config):
    [traj] = _run([tiny_task], FixedPolicy("I think the fix is obvious."), None, env_config)
    assert traj.exit_status == "format_errors" and traj.counts.format_errors == 3
    assert "Format error" in traj.messages[-1]["content"] and traj.patch == ""


def test_a_repeated_step_ends_the_episode_only_when_asked(tiny_task, env_config):
    """A repeated step ends the episode at repeat_limit (RL rollouts; evaluation at `small` once the loop
    metric has fired); with -1 the loop is measured whole."""
    same = FixedPolicy(format_tool_call("bash", {"command": "cat  tinycalc/ranges.py"}))
    config = AgentConfig.preset("smoke", step_limit=8, repeat_limit=3)
    [cut] = _run([tiny_task], same, None, env_config, config=config)
    assert cut.exit_status == "repeat_limit" and cut.counts.steps == 3
    [whole] = _run([tiny_task], same, None, env_config, config=AgentConfig.preset("smoke", step_limit=8))
    assert whole.exit_status == "step_limit" and whole.counts.steps == 8


def test_policy_errors_and_env_errors(tiny_task, env_config):
    [traj] = _run([tiny_task], FixedPolicy(error="connection refused"), None, env_config)
    assert traj.exit_status == "policy_error" and "connection refused" in traj.error

    def broken(task):
        raise OSError("disk full")

    config = AgentConfig.preset("smoke")
    [traj] = run_episodes([tiny_task], FixedPolicy(""), None, broken, config)
    assert traj.exit_status == "env_error" and "disk full" in traj.error


def test_structured_tool_calls_round_trip(tiny_task, env_config):
    calls = [{"id": "c1", "type": "function", "function": {"name": "bash", "arguments": '{"command": "echo hi"}'}}]
    [traj] = _run([tiny_task], FixedPolicy("", tool_calls=calls), None, env_config,
                  config=AgentConfig.preset("smoke", step_limit=1))
    assert traj.messages[-2]["tool_calls"] == calls
    assert traj.messages[-1] == {"role": "tool", "tool_call_id": "c1", "content": "hi"}


def test_cost_limit(tiny_task, env_config):
    config = AgentConfig.preset("smoke", cost_budget_usd=0.0005)
    [traj] = _run([tiny_task], FixedPolicy(format_tool_call("ask_expert", {"question": "?"})), EchoExpert(),
                  env_config, config=config)
    assert traj.exit_status == "cost_limit" and traj.counts.steps == 1


def test_every_n_forces_asks_and_can_block_policy_asks(tiny_task, env_config):
    config = AgentConfig.preset("smoke", step_limit=7)
    policy = FixedPolicy(format_tool_call("bash", {"command": "ls"}))
    [traj] = _run([tiny_task], policy, EchoExpert(), env_config, config=config, invocation=EveryN(3))
    assert [c.step for c in traj.expert_calls] == [3, 6] and all(c.forced for c in traj.expert_calls)
    assert traj.counts.forced_asks == 2 and policy.batches == [1] * 5
    asking = FixedPolicy(format_tool_call("ask_expert", {"question": "?"}))
    [traj] = _run([tiny_task], asking, EchoExpert(), env_config, config=config,
                  invocation=EveryN(3, block_policy_asks=True))
    assert [c.step for c in traj.expert_calls] == [3, 6]
    assert "not available" in traj.steps[0].observation


def test_on_loop_and_random_baselines(tiny_task, env_config):
    config = AgentConfig.preset("smoke", step_limit=10)
    policy = FixedPolicy(format_tool_call("bash", {"command": "ls"}))
    [traj] = _run([tiny_task], policy, EchoExpert(), env_config, config=config, invocation=OnLoop(cooldown=5))
    assert [c.step for c in traj.expert_calls] == [2, 8]
    runs = [_run([tiny_task], policy, EchoExpert(), env_config, config=config, invocation=Random(0.3, seed=1))[0]
            for _ in range(2)]
    assert [c.step for c in runs[0].expert_calls] == [c.step for c in runs[1].expert_calls]


def test_scripted_with_reference_expert(tiny_task, env_config):
    [traj] = _run([tiny_task], ScriptedPolicy([tiny_task]), ReferenceExpert(), env_config)
    assert traj.exit_status == "submitted" and traj.expert_calls[0].oracle and not traj.expert_calls[0].failed
    assert AgentConfig.from_dict(traj.config) == AgentConfig.preset("smoke")
    assert "ranges.py" in traj.expert_calls[0].reply


def test_truncation_keeps_guidance_and_task(tiny_task, env_config):
    config = AgentConfig.preset("smoke", step_limit=12, max_context_messages=8)
    [traj] = _run([tiny_task], FixedPolicy(format_tool_call("bash", {"command": "ls"})), EchoExpert(),
                  env_config, config=config, invocation=EveryN(2))
    view = context_view(traj.messages, config.max_context_messages)
    assert view[:2] == traj.messages[:2] and "left out" in view[2]["content"]
    guidance = [m for m in traj.messages if m["content"].startswith("<expert_guidance>")]
    assert len(guidance) == 5 and all(g in view for g in guidance)


def test_sigkill_mid_batch_then_resume(tiny_tasks, tiny_repo, tmp_path):
    tasks = tiny_tasks(4)
    task_file = save_tasks(tasks, tmp_path / "tasks.jsonl")
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "protege", "agent", "run", str(task_file), str(run_dir), "--preset", "smoke",
           "--expert", "none", "--mirror", str(tiny_repo[0]), "--max-parallel", "2", "--no-progress",
           "--workspace-root", str(tmp_path / "ws")]  # a killed run cannot clean its workspaces
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    preds = run_dir / "preds.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(read_jsonl(preds)) < 1:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {r["instance_id"]: r for r in read_jsonl(preds)}
    assert 1 <= len(before) < 4, "the kill should land mid-run"
    kept = {iid: (run_dir / "trajectories" / f"{iid}.json").read_text() for iid in before}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    rows = read_jsonl(preds)
    ids = [r["instance_id"] for r in rows]
    assert sorted(ids) == sorted(t.instance_id for t in tasks) and len(ids) == len(set(ids))
    assert all(before[i] in rows for i in before)
    assert all((run_dir / "trajectories" / f"{i}.json").read_text() == kept[i] for i in before)
    assert len(read_jsonl(run_dir / "trajectories.jsonl")) == 4
    statuses = {p.name: (json.loads(p.read_text())["exit_status"], json.loads(p.read_text())["error"]) for p in (run_dir / "trajectories").glob("*.json")}
    assert all(s == "submitted" for s, _ in statuses.values()), statuses
