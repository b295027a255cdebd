"""The oracle demonstrator and rejection-sampled collection, on real bundled TRAIN instances."""

from __future__ import annotations

import json

import pytest

from protege.agent.config import AgentConfig
from protege.agent.loop import run_episodes
from protege.bugbench.build import BuildConfig
from protege.core.trajectory import read_jsonl
from protege.env.factory import make_environment
from protege.env.grading import grade
from protege.models.demonstrator import ReferenceDemonstrator
from protege.models.plans import build_plan, change_thought, compact_plan, quoted_line
from protege.models.reference_expert import ReferenceExpert
from protege.stages.collect import collect
from protege.tasks.bundled import load_bundled

CONFIG = AgentConfig.preset("small", max_parallel=4)


@pytest.fixture(scope="module")
def train_tasks():
    tasks = load_bundled("train")
    by_pkg = {}
    for t in tasks:
        by_pkg.setdefault(t.extra["package"], t)
    return list(by_pkg.values())[:3]


def _run(tasks, seed):
    return run_episodes(tasks, ReferenceDemonstrator(tasks, seed=seed), ReferenceExpert(seed=seed),
                        make_environment, CONFIG)


def test_demonstrator_resolves_and_asks_the_oracle(train_tasks):
    trajs = _run(train_tasks, seed=0)
    for task, traj in zip(train_tasks, trajs):
        assert traj.exit_status == "submitted", traj.error
        assert traj.model == "reference-demonstrator(oracle)"
        assert grade(task, traj.patch).resolved, traj.instance_id
        asks = [s for s in traj.steps if s.action and s.action["name"] == "ask_expert"]
        assert asks and traj.expert_calls and all(c.oracle and not c.failed for c in traj.expert_calls)
        question = asks[0].action["arguments"]["question"]
        assert any(t in question for t in task.FAIL_TO_PASS)
        assert "<expert_guidance>" in asks[0].observation
        bash = [s.action["arguments"]["command"] for s in traj.steps if s.action and s.action["name"] == "bash"]
        assert any(c.startswith("python -m pytest -q -p no:cacheprovider ") for c in bash)


def test_seeds_vary_and_are_deterministic(train_tasks):
    task = train_tasks[0]
    plans = {seed: [(s.tool, json.dumps(s.args, sort_keys=True)) for s in build_plan(task, seed)] for seed in range(6)}
    assert plans[0] == [(s.tool, json.dumps(s.args, sort_keys=True)) for s in build_plan(task, 0)]
    assert len({tuple(p) for p in plans.values()}) > 1
    # Over seeds and tasks, some plans make (and revert) a wrong first edit.
    assert any(s.tag == "wrong" for t in train_tasks for seed in range(6) for s in build_plan(t, seed))
    a, b = (_run([task], seed)[0] for seed in (0, 1))
    assert a.actions != b.actions
    assert a.exit_status == b.exit_status == "submitted"


def test_wrong_edit_is_reverted_and_still_resolves(train_tasks):
    found = next(((t, seed) for t in train_tasks for seed in range(10)
                  if any(s.tag == "wrong" for s in build_plan(t, seed))), None)
    assert found, "no seed makes a wrong first edit"
    task, seed = found
    [traj] = _run([task], seed)
    texts = [s.text for s in traj.steps]
    assert any("revert" in t for t in texts)
    assert grade(task, traj.patch).resolved


def test_collect_keeps_resolved_resumes_and_refuses_test_split(train_tasks, tmp_path):
    counts = collect(train_tasks[:2], tmp_path, seed=3)
    assert counts["kept"] == 2 and counts["dropped"] == {}
    rows = read_jsonl(tmp_path / "kept.jsonl")
    assert sorted(r["instance_id"] for r in rows) == sorted(t.instance_id for t in train_tasks[:2])
    assert all(r["oracle_demonstrator"] is True and r["exit_status"] == "submitted" for r in rows)
    assert all(any(c["oracle"] for c in r["expert_calls"]) for r in rows)

    again = collect(train_tasks, tmp_path, seed=3)  # resumes: only the third task runs
    assert again["skipped"] == 2 and again["kept"] + sum(again["dropped"].values()) == 1
    ids = [r["instance_id"] for r in read_jsonl(tmp_path / "kept.jsonl")]
    ids += [r["instance_id"] for r in read_jsonl(tmp_path / "dropped.jsonl")]
    assert sorted(ids) == sorted(t.instance_id for t in train_tasks) and len(ids) == len(set(ids))

    held_out = BuildConfig().test_packages
    for path in tmp_path.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            assert not any(pkg in text for pkg in held_out), path

    test_task = load_bundled("test")[0]
    with pytest.raises(ValueError, match="test-split"):
        collect([test_task], tmp_path / "other")


def test_compact_demonstrations_ask_only_where_the_issue_leaves_the_bug_unknown():
    """Compact plan: a pinpointed task is fixed alone, by editing the line its issue quotes;
    others ask first; guidance with the exact edit, or quoting the one wrong line, is applied at
    once; other description-level guidance is looked up in the file first."""
    train = load_bundled("train")
    pinned = next(t for t in train if t.difficulty == "pinpointed")
    single = next(t for t in train if t.difficulty != "pinpointed" and quoted_line(t))
    others = [single, *[t for t in train if t.difficulty == "hard"][:3]]
    tasks = [pinned, *others]
    config = AgentConfig.preset("small", max_parallel=5)
    quoting = 0
    for level in ("exact_edit", "description"):
        trajs = run_episodes(tasks, ReferenceDemonstrator(tasks, plan="compact"), ReferenceExpert(level),
                             make_environment, config)
        for task, traj in zip(tasks, trajs):
            assert traj.exit_status == "submitted" and grade(task, traj.patch).resolved, traj.instance_id
            tools = [s.action["name"] for s in traj.steps]
            views = sum(1 for s in traj.steps if s.action["arguments"].get("command") == "view")
            if task is pinned:
                assert tools == ["str_replace_editor", "submit"] and views == 0
                edit = traj.steps[0].action["arguments"]
                assert f"`{edit['old_str']}`" in task.problem_statement and not edit["old_str"].startswith(" ")
                assert change_thought(*quoted_line(task)) in traj.steps[0].text  # the tokens first
            else:
                quoted = quoted_line(task)
                quotes = level == "description" and quoted and f"`{quoted[0]}`" in traj.expert_calls[0].reply
                quoting += bool(quotes)
                if quotes:  # the edit's thought names the changed tokens before the line is written
                    assert change_thought(*quoted) in traj.steps[1].text
                assert tools[0] == "ask_expert" and views == (0 if level == "exact_edit" or quotes else 1)
            assert sum(len(str(m.get("content") or "")) for m in traj.messages) < 6000  # ~1.5k tokens at most
    assert quoting >= 1
    assert [s.tag for s in compact_plan(pinned, 0, ask_expert=True)][-1] == ""


def test_a_served_model_demonstrator_collects_behind_a_launched_server(tmp_path):
    """demonstrator transformers:MODEL with serve="transformers" (vLLM's CPU stand-in): the
    collection launches the server, records its launch line and log, and stops it; the tiny
    model resolves nothing, so every task is recorded as dropped with a reason."""
    from protege.stages.collect import CollectConfig, run_collection

    config = CollectConfig.preset("smoke", limit=1, demonstrator="transformers:tiny", serve="transformers",
                                  expert_only_seed=-1, max_parallel=1)
    [summary] = run_collection(config, tmp_path, progress=False)
    assert (summary["kept"], summary["dropped"]) == (0, 1)
    launch = json.loads((tmp_path / "live" / "server" / "server_launch.json").read_text())
    assert launch["backend"] == "transformers" and launch["ready_after_s"] > 0


def test_stage_experts_come_from_the_one_factory_and_bad_specs_name_the_field():
    from protege.models.reference_expert import NoisyExpert, ReferenceExpert
    from protege.stages.collect import CollectConfig, _make_expert
    from protege.stages.insert_datasets import DataConfig
    from protege.stages.insert_datasets import _make_expert as insertion_expert

    mixed = _make_expert(CollectConfig.preset("small"), seed=0)
    assert isinstance(mixed, ReferenceExpert) and mixed.hint_level == "description+description+exact_edit"
    assert isinstance(_make_expert(CollectConfig(expert="noisy:0.3"), seed=0), NoisyExpert)  # as evaluation accepts
    assert insertion_expert(DataConfig(hint_level="location")).hint_level == "location"
    with pytest.raises(ValueError, match="collect config: field 'expert' = 'bogus'"):
        _make_expert(CollectConfig(expert="bogus"), seed=0)
    with pytest.raises(ValueError, match="data config: field 'expert' = 'none'"):
        insertion_expert(DataConfig(expert="none"))
