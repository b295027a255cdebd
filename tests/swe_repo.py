"""A SWE-bench-shaped git repository built locally for tests (real repos are not on this machine)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from protege.tasks.schema import Task

SRC = '''def clamp(x, lo, hi):
    """Clamp x into [lo, hi]."""
    if x < lo:
        return lo
    if x > hi:
        return lo
    return x


def total(xs):
    return sum(xs)
'''
TESTS = '''from calc import clamp, total


def test_clamp_low():
    assert clamp(-5, 0, 10) == 0


def test_total():
    assert total([1, 2, 3]) == 6
'''
NEW_TEST = '''

def test_clamp_high():
    assert clamp(50, 0, 10) == 10
'''


def _git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "HOME": str(repo), "PATH": "/usr/bin:/bin"}
    return subprocess.run(["git", "-c", "init.defaultBranch=main", *args], cwd=repo, env=env,
                          check=True, capture_output=True, text=True).stdout


def make_repo(root: Path) -> tuple[Path, Task]:
    """A repo 'acme/calc' with a bug in clamp(); the task's test_patch adds the failing test."""
    repo = root / "acme__calc"
    repo.mkdir(parents=True)
    (repo / "calc.py").write_text(SRC)
    (repo / "tests").mkdir()
    (repo / "tests" / "test_calc.py").write_text(TESTS)
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "base")
    base = _git(repo, "rev-parse", "HEAD").strip()
    (repo / "calc.py").write_text(SRC.replace("return lo\n    return x", "return hi\n    return x"))
    patch = _git(repo, "diff")
    _git(repo, "checkout", "-q", "calc.py")
    (repo / "tests" / "test_calc.py").write_text(TESTS + NEW_TEST)
    test_patch = _git(repo, "diff")
    _git(repo, "checkout", "-q", "tests/test_calc.py")
    task = Task(instance_id="acme__calc-1", repo="acme/calc", base_commit=base, patch=patch,
                test_patch=test_patch, problem_statement="clamp(50, 0, 10) returns 0, expected 10",
                FAIL_TO_PASS=["tests/test_calc.py::test_clamp_high"],
                PASS_TO_PASS=["tests/test_calc.py::test_clamp_low", "tests/test_calc.py::test_total"],
                extra={"test_cmd": "python -m pytest -rA -p no:cacheprovider tests/test_calc.py"})
    return repo, task
