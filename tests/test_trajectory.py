"""Trajectory schema and writer: atomic per-step files, resumable run folders."""

import json

import pytest

from protege.core.trajectory import (
    SCHEMA_VERSION,
    ExpertCall,
    Step,
    Trajectory,
    TrajectoryWriter,
    completed_ids,
    load_trajectory,
    read_jsonl,
)


def _traj(iid: str, finished: bool = True) -> Trajectory:
    traj = Trajectory(iid, model="m", expert="e", messages=[{"role": "user", "content": "hi"}])
    traj.steps.append(Step(0, {"name": "bash", "arguments": {"command": "ls"}}, "a.py"))
    traj.expert_calls.append(ExpertCall(0, "q", "r", oracle=True))
    if finished:
        traj.exit_status, traj.patch = "submitted", "diff --git a/x b/x\n"
    return traj


def test_roundtrip(tmp_path):
    writer = TrajectoryWriter(tmp_path)
    traj = _traj("a__b-1")
    writer.finish(traj)
    loaded = load_trajectory(writer.path("a__b-1"))
    assert loaded.to_dict() == traj.to_dict()
    assert loaded.schema_version == SCHEMA_VERSION and loaded.actions == ["ls"]
    assert read_jsonl(tmp_path / "preds.jsonl") == [
        {"instance_id": "a__b-1", "model_name_or_path": "m", "model_patch": "diff --git a/x b/x\n"}]


def test_wrong_schema_version_is_refused():
    data = _traj("x").to_dict() | {"schema_version": 99}
    with pytest.raises(ValueError, match="schema_version"):
        Trajectory.from_dict(data)


def test_unfinished_is_not_completed(tmp_path):
    writer = TrajectoryWriter(tmp_path)
    writer.save(_traj("running", finished=False))
    writer.finish(_traj("done"))
    assert completed_ids(tmp_path) == {"done"}
    assert not list((tmp_path / "trajectories").glob("*.tmp"))


def test_repair_drops_torn_lines_and_duplicates(tmp_path):
    writer = TrajectoryWriter(tmp_path)
    writer.finish(_traj("one"))
    writer.finish(_traj("two"))
    # a kill during the append of "two", then a rerun that appended it again, plus a torn line
    preds = tmp_path / "preds.jsonl"
    preds.write_text(preds.read_text() + json.dumps(_traj("two").prediction()) + "\n" + '{"instance_id": "thr')
    (tmp_path / "trajectories.jsonl").write_text((tmp_path / "trajectories.jsonl").read_text().splitlines()[0] + "\n")
    TrajectoryWriter(tmp_path)
    assert [r["instance_id"] for r in read_jsonl(preds)] == ["one", "two"]
    assert preds.read_text().count("\n") == 2
    assert [r["instance_id"] for r in read_jsonl(tmp_path / "trajectories.jsonl")] == ["one", "two"]
