"""Stage 02: post-hoc expert-call insertion and the SFT datasets, on real collected trajectories."""

from __future__ import annotations

import json

import datasets
import pytest

from protege.agent.config import AgentConfig
from protege.agent.loop import GUIDANCE_OPEN
from protege.agent.tools import parse_text
from protege.core.trajectory import read_jsonl
from protege.stages.collect import CollectConfig, collect, run_collection
from protege.stages.dataset import agent_messages, load_split, row_from_trajectory, save_dataset, trl_messages
from protege.stages.insert_calls import STRATEGIES, InsertConfig, choose_points, insert_calls, is_edit, stall_points
from protege.stages.insert_datasets import DataConfig, dataset_statistics, held_out_packages, insert_file, run_insertion
from protege.tasks.bundled import load_bundled


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    """Live and expert-only collections over one train task per package (real sandboxed runs)."""
    out = tmp_path_factory.mktemp("run") / "01_collect"
    by_pkg = {}
    for t in load_bundled("train"):
        by_pkg.setdefault(t.extra["package"], t)
    tasks = list(by_pkg.values())[:4]
    config = AgentConfig.preset("smoke", max_parallel=4)
    collect(tasks, out / "live", seed=0, config=config)
    collect(tasks, out / "expert_only", seed=3, config=config, ask_expert=False)
    return out


def _expert_only(collected):
    rows = read_jsonl(collected / "expert_only" / "kept.jsonl")
    assert len(rows) == 4 and all(not r["expert_calls"] for r in rows)
    return rows


def _edited_later(traj, step):
    """Files edited at or after `step` in the inserted trajectory."""
    paths = set()
    for s in traj["steps"][step + 1:]:
        a = s.get("action")
        if is_edit(a) and a["name"] == "str_replace_editor":
            paths.add(a["arguments"]["path"])
    return paths


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_inserted_calls_agree_with_the_trajectorys_later_actions(collected, strategy):
    for traj in _expert_only(collected):
        config = InsertConfig(strategy=strategy, every_n=3, p=0.5, seed=1)
        points = choose_points(traj, config)
        out = insert_calls(traj, config)
        assert out["n_inserted"] == len(points) == len(out["expert_calls"])
        assert "ask_expert" in out["messages"][0]["content"]  # the system prompt now offers the tool
        # Messages and steps line up: the original steps are all there, in order, after renumbering.
        original = [s for s in out["steps"] if not s.get("inserted")]
        assert [s["action"] for s in original] == [s["action"] for s in traj["steps"]]
        assert [s["index"] for s in out["steps"]] == list(range(len(out["steps"])))
        assert len(out["messages"]) == 2 + 2 * len(out["steps"]) - 1
        for call in out["expert_calls"]:
            k = call["step"]
            ask, guidance = out["messages"][2 + 2 * k], out["messages"][3 + 2 * k]
            assert parse_text(ask["content"]).name == "ask_expert"
            assert guidance["content"].startswith(GUIDANCE_OPEN) and call["reply"] in guidance["content"]
            assert call["inserted"] and call["oracle"]
            later = _edited_later(out, k)
            if later:  # the advice names a file the trajectory goes on to edit
                assert any(p in call["reply"] for p in later), (call["reply"], later)
            else:  # nothing left to edit: the advice is to test and submit, which is what follows
                assert "submit" in call["reply"]
            # The question only uses what happened before the call: never the fix's new text.
            new_text = [s["action"]["arguments"].get("new_str", "") for s in out["steps"][k + 1:]
                        if s.get("action") and s["action"]["name"] == "str_replace_editor"]
            assert not any(t.strip() and t.strip() in call["question"] for t in new_text)
            assert k - 1 not in [c["step"] for c in out["expert_calls"]]  # never back to back


def test_stall_points_are_failures_after_an_edit(collected):
    for traj in _expert_only(collected):
        for p in stall_points(traj):
            assert 0 < p < len(traj["steps"])
    wrong = [t for t in _expert_only(collected) if sum(is_edit(s["action"]) for s in t["steps"]) >= 3]
    for traj in wrong:  # a wrong edit, a failing re-test, a revert: the stall is right after the failing test
        points = stall_points(traj)
        fails = [i + 1 for i, s in enumerate(traj["steps"]) if "pytest" in json.dumps(s["action"])
                 and " failed" in s["observation"] and any(is_edit(x["action"]) for x in traj["steps"][:i])]
        assert set(fails) <= set(points)


def test_insert_file_refuses_live_trajectories_naming_file_and_instance(collected, tmp_path):
    with pytest.raises(ValueError, match=r"kept.jsonl: line 1, instance 'protege-bench__\w+-\d+': field 'expert_calls'"):
        insert_file(collected / "live" / "kept.jsonl", tmp_path / "x.jsonl", InsertConfig())


def test_trl_rows_round_trip_to_what_the_policy_sees(collected):
    for traj in read_jsonl(collected / "live" / "kept.jsonl"):
        row = row_from_trajectory(traj, "live", "live")
        back = agent_messages(row["messages"])
        assert len(back) == len(traj["messages"])
        for a, b in zip(traj["messages"], back):
            assert a["role"] == b["role"]
            if a["role"] == "assistant":  # identical up to the demonstrator's "Step k:" prefix
                assert parse_text(a["content"]).arguments == parse_text(b["content"]).arguments
                assert not b["content"].startswith("Step ")
            else:
                assert a["content"] == b["content"]
        assert trl_messages(back) == row["messages"]
        roles = {m["role"] for m in row["messages"]}
        assert roles == {"system", "user", "assistant", "tool"}
        assert row["n_expert_calls"] == len(traj["expert_calls"]) >= 1
        assert "ask_expert" in row["tools"] and row["oracle_demonstrator"]


def test_no_test_split_package_enters_any_dataset(collected, tmp_path):
    out = tmp_path / "02_insert"
    result = run_insertion(DataConfig.preset("smoke", strategies=STRATEGIES), collected, out)
    held = set(held_out_packages())
    assert held == {"gridlib", "statkit"}
    names = {"live", "mixed", *(f"inserted-{s}" for s in STRATEGIES)}
    assert set(result["datasets"]) == names
    for name in names:
        hf = datasets.load_from_disk(str(out / "datasets" / name / "hf"))
        for split in ("train", "validation"):
            rows = load_split(out / "datasets" / name, split)
            assert len(rows) == hf[split].num_rows
            assert not {r["package"] for r in rows} & held
            assert not {r["instance_id"].split("__")[1].rsplit("-", 1)[0] for r in rows} & held
        train_ids = {r["instance_id"] for r in load_split(out / "datasets" / name, "train")}
        assert not train_ids & {r["instance_id"] for r in load_split(out / "datasets" / name, "validation")}
    # A test-split trajectory smuggled into a collection is refused, naming it.
    test_task = load_bundled("test")[0]
    traj = read_jsonl(collected / "live" / "kept.jsonl")[0]
    bad = {**traj, "instance_id": test_task.instance_id, "package": test_task.extra["package"], "split": "test"}
    with pytest.raises(ValueError, match=f"instance '{test_task.instance_id}'.*held-out test split"):
        save_dataset([row_from_trajectory(bad, "live", "live")], tmp_path / "bad", "bad", held_out=held)
    assert not (tmp_path / "bad" / "train.jsonl").exists()
    # And stage 01 refuses test-split tasks outright.
    with pytest.raises(ValueError, match="held out from training data"):
        run_collection(CollectConfig.preset("smoke", tasks="bundled:test"), tmp_path / "c")


def test_statistics_count_tokens_by_role(collected, tmp_path):
    out = tmp_path / "02_insert"
    run_insertion(DataConfig.preset("smoke"), collected, out)
    stats, table = dataset_statistics(DataConfig.preset("smoke"), out)
    assert set(table.index) == {"live", "inserted-stall", "mixed"}
    assert (stats["tokens_protege"] > 0).all() and (stats["tokens_observation"] > 0).all()
    live = stats[stats.dataset == "live"]
    assert (live["tokens_guidance"] > 0).all() and (live["n_expert_calls"] >= 1).all()
    assert (stats["length"] > stats[[c for c in stats if c.startswith("tokens_")]].sum(axis=1) * 0.9).all()
    assert "over_max_length" in stats and (out / "stats_table.csv").exists()
