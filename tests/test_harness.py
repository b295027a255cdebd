"""The full-scale harness path up to the image pull, and grading from saved harness logs,
on real SWE-bench Verified instances."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

from protege.env.harness import (
    evaluate,
    grade_saved_logs,
    harness_kwargs,
    rename_image,
    validate_predictions,
)
from protege.tasks.schema import load_tasks

VERIFIED = Path(__file__).resolve().parents[2] / "shared/data/swebench/SWE-bench_Verified_test.parquet"
IDS = ["pallets__flask-5014", "pytest-dev__pytest-5262"]


@pytest.fixture(scope="module")
def tasks():
    if not VERIFIED.exists():
        pytest.skip(f"{VERIFIED} not found")
    by_id = {t.instance_id: t for t in load_tasks(VERIFIED)}
    return [by_id[i] for i in IDS]


def _gold(tasks):
    return [{"instance_id": t.instance_id, "model_name_or_path": "gold", "model_patch": t.patch} for t in tasks]


def test_kwargs_bind_to_the_installed_main(tmp_path):
    from swebench.harness.run_evaluation import main

    kwargs = harness_kwargs(tmp_path / "d.jsonl", tmp_path / "p.jsonl", "run1", max_workers=2)
    inspect.signature(main).bind(**kwargs)  # raises if swebench's signature moved
    assert kwargs["modal"] is False and kwargs["max_workers"] == 2


def test_validate_predictions(tasks):
    assert validate_predictions(_gold(tasks), tasks) == []
    bad = _gold(tasks) + [{"instance_id": "nope__nope-1", "model_patch": "", "model_name_or_path": "m"},
                          {"instance_id": IDS[0], "model_patch": "not a diff", "model_name_or_path": "m"}]
    problems = validate_predictions(bad, tasks)
    assert any("not in the dataset" in p for p in problems)
    assert any("duplicate" in p for p in problems) and any("not a unified diff" in p for p in problems)


def test_dry_run_inputs_load_in_swebench(tasks, tmp_path):
    """Everything before the pull: swebench's own loaders accept what we wrote."""
    from swebench.harness.run_evaluation import get_dataset_from_preds
    from swebench.harness.utils import get_predictions_from_file, make_test_spec

    run = evaluate(tasks, _gold(tasks), tmp_path, "dry", namespace="mirror.local:5000/swebench", dry_run=True)
    assert run.problems == [] and run.kwargs["instance_ids"] == sorted(IDS)
    assert run.images == sorted(rename_image(t.image, "mirror.local:5000/swebench") for t in tasks)
    assert all(i.startswith("mirror.local:5000/swebench/sweb.eval.x86_64.") for i in run.images)
    kw = run.kwargs
    preds = {p["instance_id"]: p for p in get_predictions_from_file(kw["predictions_path"], kw["dataset_name"], "test")}
    dataset = get_dataset_from_preds(kw["dataset_name"], "test", kw["instance_ids"], preds, kw["run_id"], False)
    assert sorted(d["instance_id"] for d in dataset) == sorted(IDS)
    specs = [make_test_spec(d) for d in dataset]
    assert sorted(s.image for s in specs) == run.images
    assert all(s.FAIL_TO_PASS for s in specs)


def test_invalid_predictions_stop_before_the_harness(tasks, tmp_path):
    preds = _gold(tasks) + [{"instance_id": "nope__nope-1", "model_patch": "", "model_name_or_path": "m"}]
    with pytest.raises(ValueError, match="not in the dataset"):
        evaluate(tasks, preds, tmp_path, "bad")


def _harness_log(task, failing: set[str], exit_code: int) -> str:
    """test_output.txt as the harness writes it: the eval script's `set -x` trace, the
    markers, pytest -rA output, and the recorded test exit code."""
    cmd = task.eval_script.split(">>>>> Start Test Output'\n", 1)[1].splitlines()[0]
    lines = ["+ source /opt/miniconda3/bin/activate", "+ cd /testbed", "+ git apply -v -",
             "+ : '>>>>> Start Test Output'", f"+ {cmd}",
             "============================= test session starts ==============================",
             "=========================== short test summary info ============================"]
    for test in task.FAIL_TO_PASS + task.PASS_TO_PASS:
        lines.append(f"{'FAILED' if test in failing else 'PASSED'} {test}")
    lines += [f"+ SWEBENCH_TEST_EXIT_CODE={exit_code}", "+ : '>>>>> End Test Output'",
              f">>>>> Test Exit Code: {exit_code}", "+ git checkout -- ."]
    return "\n".join(lines) + "\n"


def test_grade_saved_harness_logs(tasks, tmp_path):
    flask, pytest_task = tasks
    run_dir = tmp_path / "logs/run_evaluation/run1"
    cases = [  # model, task, tests that fail, test exit code, expected resolved
        ("gold", flask, set(), 0, True),
        ("gold", pytest_task, set(pytest_task.FAIL_TO_PASS), 1, False),  # F2P still fails
        ("broken", flask, {flask.PASS_TO_PASS[0]}, 1, False),  # a P2P test breaks
    ]
    for model, task, failing, code, _ in cases:
        folder = run_dir / model / task.instance_id
        folder.mkdir(parents=True)
        (folder / "test_output.txt").write_text(_harness_log(task, failing, code))
        (folder / "patch.diff").write_text(task.patch)
    reports = grade_saved_logs(tasks, run_dir)
    for model, task, _, _, resolved in cases:
        report = reports[model][task.instance_id]
        assert report["resolved"] is resolved, (model, task.instance_id, report["tests_status"])
        assert report["patch_successfully_applied"]
    assert reports["gold"][pytest_task.instance_id]["tests_status"]["FAIL_TO_PASS"]["failure"] == \
        pytest_task.FAIL_TO_PASS
    assert reports["broken"][flask.instance_id]["tests_status"]["PASS_TO_PASS"]["failure"] == \
        [flask.PASS_TO_PASS[0]]


@pytest.mark.docker
def test_real_harness_runs_up_to_the_image_pull(tasks, tmp_path):
    """swebench's harness itself, against a real engine: with no registry reachable the
    instance stops at the pull and is reported as an error, not as unresolved."""
    docker = pytest.importorskip("docker")
    try:
        docker.from_env().ping()
    except Exception as exc:
        pytest.skip(f"no Docker engine reachable ({type(exc).__name__}); start one with scripts/docker_engine.sh")
    flask = tasks[0]
    run = evaluate([flask], _gold([flask]), tmp_path, "pull", max_workers=1)
    log = (run.log_dir / "gold" / flask.instance_id / "run_instance.log").read_text()
    assert "attempting to pull" in log
    report = json.loads((tmp_path / "gold.pull.json").read_text())
    assert report["error_ids"] == [flask.instance_id] and report["resolved_instances"] == 0
