import os

import pytest
from swe_repo import make_repo

from protege.env.base import EnvConfig, EnvironmentError_, RepoSource
from protege.env.grading import grade, test_command, test_files
from protege.env.local import LocalEnvironment


@pytest.fixture
def repo_task(tmp_path):
    repo, task = make_repo(tmp_path / "mirrors")
    return task, EnvConfig(repos=RepoSource(mirror_template=str(tmp_path / "mirrors" / "{owner}__{name}")))


def test_checkout_run_diff_and_cleanup(repo_task):
    task, cfg = repo_task
    with LocalEnvironment(task, cfg) as env:
        root = env.root
        assert env.run("git rev-parse HEAD").output.strip() == task.base_commit
        env.write_file("calc.py", env.read_file("calc.py").replace("return lo\n    return x", "return hi\n    return x"))
        env.run("echo new > notes.txt")
        diff = env.diff()
        assert "+        return hi" in diff and "notes.txt" in diff
        with pytest.raises(PermissionError):
            env.read_file("../../etc/passwd")
    assert not root.exists()


def test_cleanup_on_exception(repo_task):
    task, cfg = repo_task
    with pytest.raises(RuntimeError), LocalEnvironment(task, cfg) as env:
        root = env.root
        raise RuntimeError("boom")
    assert not root.exists()


def test_unknown_commit_and_repo_are_clear_errors(repo_task, tmp_path):
    task, cfg = repo_task
    task.base_commit = "0" * 40
    with pytest.raises(EnvironmentError_, match="field 'base_commit'"):
        LocalEnvironment(task, cfg)
    task.repo = "nobody/nothing"
    with pytest.raises(EnvironmentError_, match="field 'repo': cannot clone"):
        LocalEnvironment(task, cfg)


def test_workspace_that_cannot_be_created(repo_task, tmp_path):
    task, cfg = repo_task
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cfg.workspace_root = str(blocker / "ws")
    with pytest.raises(EnvironmentError_, match="cannot create a workspace"):
        LocalEnvironment(task, cfg)


def test_grade_gold_empty_and_broken(repo_task, tmp_path):
    task, cfg = repo_task
    gold = grade(task, task.patch, cfg, log_dir=tmp_path / "logs")
    assert gold.resolved and gold.status == "RESOLVED_FULL" and gold.fail_to_pass["success"] == task.FAIL_TO_PASS
    assert os.path.exists(gold.log_path)
    empty = grade(task, "", cfg)
    assert not empty.resolved and empty.fail_to_pass["failure"] == task.FAIL_TO_PASS
    broken = grade(task, "diff --git a/calc.py b/calc.py\n--- a/calc.py\n+++ b/calc.py\n@@ -1,1 +1,1 @@\n-nothing here\n+x\n", cfg)
    assert not broken.resolved and not broken.patch_applied and "does not apply" in broken.error


def test_grade_restores_tampered_tests(repo_task):
    task, cfg = repo_task
    cheat = ("diff --git a/tests/test_calc.py b/tests/test_calc.py\n--- a/tests/test_calc.py\n"
             "+++ b/tests/test_calc.py\n@@ -1,1 +1,1 @@\n-from calc import clamp, total\n"
             "+from calc import clamp, total  # edited\n")
    assert not grade(task, cheat, cfg).resolved


def test_grade_bad_environment_is_a_report_not_a_crash(repo_task):
    task, cfg = repo_task
    task.repo = "nobody/nothing"
    report = grade(task, task.patch, cfg)
    assert report.status == "ERROR" and "cannot clone" in report.error


def test_test_command_and_files(repo_task):
    task, _ = repo_task
    assert test_command(task).startswith("python -m pytest")
    assert test_files(task) == ["tests/test_calc.py"]
    task.extra = {}
    task.eval_script = ": '>>>>> Start Test Output'\npytest -rA tests/x.py\n: '>>>>> End Test Output'\n"
    assert test_command(task) == "pytest -rA tests/x.py"


def test_grading_reads_all_output_whatever_the_model_facing_cap(repo_task):
    task, cfg = repo_task
    cfg.sandbox.output_limit_chars = 100  # the agent's cap must not hide test status lines
    report = grade(task, task.patch, cfg)
    assert report.resolved and len(report.pass_to_pass["success"]) == 2
