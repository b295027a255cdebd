"""Shared fixtures: a tiny real git repository with an off-by-one bug, and its Task."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from protege.env.base import EnvConfig, RepoSource, git
from protege.tasks.schema import Task

BUGGY = '''"""Small helpers for integer ranges."""


def inclusive_range(start, stop):
    """Integers from start to stop, both ends included."""
    return list(range(start, stop))


def span(start, stop):
    """How many integers inclusive_range(start, stop) holds."""
    return max(0, stop - start + 1)
'''
TESTS = '''from tinycalc.ranges import inclusive_range, span


def test_inclusive_range():
    assert inclusive_range(1, 3) == [1, 2, 3]


def test_span():
    assert span(1, 3) == 3
'''


def _build_repo(root: Path) -> tuple[Path, str, str]:
    repo = root / "tinycalc"
    (repo / "tinycalc").mkdir(parents=True)
    (repo / "tests").mkdir()
    (repo / "tinycalc" / "__init__.py").write_text("")
    (repo / "tinycalc" / "ranges.py").write_text(BUGGY)
    (repo / "tests" / "test_ranges.py").write_text(TESTS)
    git(["init", "--quiet"], repo)
    git(["add", "-A"], repo)
    git(["commit", "--quiet", "--no-gpg-sign", "-m", "tinycalc"], repo)
    base = git(["rev-parse", "HEAD"], repo).stdout.strip()
    (repo / "tinycalc" / "ranges.py").write_text(BUGGY.replace("range(start, stop))", "range(start, stop + 1))"))
    patch = git(["diff"], repo).stdout
    git(["checkout", "--quiet", "--", "."], repo)
    return repo, base, patch


@pytest.fixture(scope="session")
def tiny_repo(tmp_path_factory) -> tuple[Path, Task]:
    repo, base, patch = _build_repo(tmp_path_factory.mktemp("mirror"))
    task = Task(instance_id="local__tinycalc-1", repo="local/tinycalc", base_commit=base, patch=patch,
                problem_statement="inclusive_range(1, 3) returns [1, 2] but should include 3.",
                FAIL_TO_PASS=["tests/test_ranges.py::test_inclusive_range"],
                PASS_TO_PASS=["tests/test_ranges.py::test_span"])
    return repo, task


@pytest.fixture
def tiny_task(tiny_repo) -> Task:
    return tiny_repo[1]


@pytest.fixture
def env_config(tiny_repo) -> EnvConfig:
    return EnvConfig(repos=RepoSource(mirror_template=str(tiny_repo[0])))


@pytest.fixture
def tiny_tasks(tiny_task):
    """n tasks over the same repository, with distinct instance ids."""
    return lambda n: [replace(tiny_task, instance_id=f"{tiny_task.instance_id}-{i}") for i in range(n)]
