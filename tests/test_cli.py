import json

from swe_repo import make_repo
from typer.testing import CliRunner

from protege.app.cli import app
from protege.tasks.schema import save_tasks

runner = CliRunner()


def test_grade_predictions_file_and_resume(tmp_path):
    _, task = make_repo(tmp_path / "mirrors")
    tasks_file = save_tasks([task], tmp_path / "tasks.jsonl")
    preds = tmp_path / "preds.jsonl"
    preds.write_text(json.dumps({"instance_id": task.instance_id, "model_name_or_path": "gold",
                                 "model_patch": task.patch}) + "\n"
                     + json.dumps({"instance_id": "acme__calc-404", "model_name_or_path": "x", "model_patch": ""}) + "\n")
    out = tmp_path / "report.json"
    args = ["grade", str(preds), "--instances", str(tasks_file), "--out", str(out),
            "--mirror-template", str(tmp_path / "mirrors" / "{owner}__{name}")]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output  # an instance errored: the exit code says so
    assert "resolved 1/2; errors 1" in result.output and "ERROR acme__calc-404" in result.output
    report = json.loads(out.read_text())
    assert report["instances"][task.instance_id]["resolved"] is True
    assert report["instances"]["acme__calc-404"]["status"] == "ERROR"
    assert report["summary"] == {"total": 2, "resolved": 1, "errors": 1, "reverted_test_infra": 0}
    again = runner.invoke(app, args)  # the gold grade is reused; the errored instance is tried again
    assert again.exit_code == 1 and "resolved 1/2" in again.output
    # Another predictions file into the same report: a different patch is graded again.
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"instance_id": task.instance_id, "model_name_or_path": "empty",
                                 "model_patch": ""}) + "\n")
    third = runner.invoke(app, ["grade", str(other), *args[2:]])
    assert third.exit_code == 0, third.output
    assert json.loads(out.read_text())["instances"][task.instance_id]["resolved"] is False


def test_grade_help_documents_the_mirror_template():
    result = runner.invoke(app, ["grade", "--help"], terminal_width=200)
    assert "{owner}" in result.output and "bare" in result.output


def test_bad_predictions_file_names_the_field(tmp_path):
    preds = tmp_path / "preds.jsonl"
    preds.write_text(json.dumps({"instance_id": "a"}) + "\n")
    result = runner.invoke(app, ["grade", str(preds), "--instances", "bundled", "--out", str(tmp_path / "r.json")])
    assert result.exit_code != 0
    assert "field 'model_patch' missing" in str(result.exception)


def test_tasks_validate_reports_bad_rows(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"instance_id": "x", "repo": "a/b"}) + "\n")
    result = runner.invoke(app, ["tasks", "validate", str(path)])
    assert result.exit_code == 1 and "0 valid instances, 1 invalid" in result.output
    assert "field 'base_commit': missing" in result.output


def test_bench_list_test_split():
    result = runner.invoke(app, ["bench", "list", "--split", "test"])
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert all(" test " in ln for ln in lines[:-1]) and lines[-1].endswith("instances")


def test_agent_run_scripted_solves_a_bundled_instance_end_to_end(tmp_path):
    run_dir = tmp_path / "run"
    args = ["agent", "run", "bundled:test", str(run_dir), "--policy", "scripted", "--expert", "reference",
            "--preset", "smoke", "--limit", "1", "--no-progress", "--set", "max_context_tokens=9000"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "submitted 1" in result.output and "resolved 1/1" in result.output
    report = json.loads((run_dir / "report.json").read_text())
    assert list(report["instances"].values())[0]["status"] == "RESOLVED_FULL"
    traj = json.loads(next((run_dir / "trajectories").glob("*.json")).read_text())
    assert traj["expert_calls"] and all(c["oracle"] for c in traj["expert_calls"])
    assert json.loads((run_dir / "config.json").read_text())["agent"]["max_context_tokens"] == 9000  # typed: an int


def test_agent_run_replays_a_recorded_run_under_its_settings(tmp_path):
    """replay:RUN_DIR takes the record's agent config (here step_limit 9, not the preset's) and its
    instances, and ends where the record ended, with the same patch."""
    first = tmp_path / "first"
    args = ["agent", "run", "bundled:test", str(first), "--policy", "scripted", "--expert", "reference",
            "--preset", "smoke", "--limit", "1", "--no-progress", "--step-limit", "9", "--no-grade"]
    assert runner.invoke(app, args).exit_code == 0
    again = tmp_path / "again"
    result = runner.invoke(app, ["agent", "run", "bundled:test", str(again), "--policy", f"replay:{first}",
                                 "--expert", "reference", "--no-progress", "--no-grade"])
    assert result.exit_code == 0 and "1 episodes" in result.output, result.output
    [a], [b] = (list((d / "trajectories").glob("*.json")) for d in (first, again))
    a, b = json.loads(a.read_text()), json.loads(b.read_text())
    assert b["config"]["step_limit"] == 9 and a["messages"] == b["messages"] and a["patch"] == b["patch"] != ""
    bad = runner.invoke(app, ["agent", "run", "bundled:test", str(tmp_path / "x"), "--policy", f"replay:{tmp_path}"])
    assert bad.exit_code != 0 and "no trajectory files" in bad.output


def test_agent_run_names_an_unknown_agent_config_field(tmp_path):
    result = runner.invoke(app, ["agent", "run", "bundled:test", str(tmp_path / "r"), "--policy", "scripted",
                                 "--set", "max_contxt=1", "--no-progress"])
    assert result.exit_code != 0 and "unknown field 'max_contxt'" in result.output
