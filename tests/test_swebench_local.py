"""Local (Docker-free) grading of SWE-bench-shaped instances, on a repository built here:
a tiny package, a test patch, FAIL_TO_PASS / PASS_TO_PASS, and a test that needs the network."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from protege.env.base import EnvConfig, RepoSource, git
from protege.env.sandbox import bwrap_path
from protege.env.swebench_local import (
    PythonNotFound,
    Recipe,
    find_python,
    grade_local,
    network_failures,
    recipe_for,
    sandbox_python,
)
from protege.env.swebench_validate import summary_table, validate_local
from protege.tasks.schema import Task

SRC = ("def total(xs):\n    return sum(xs[i] for i in range(len(xs) - 1))\n\n\n"
       "def fetch_url(url):\n    if not url:\n        raise ValueError('empty url')\n    return url\n")
TESTS = ("import pytest\n\nfrom netpkg import fetch_url, total\n\n\ndef test_empty():\n    assert total([]) == 0\n\n\n"
         "def test_rejects_empty_url():\n    with pytest.raises(ValueError):\n        fetch_url('')\n")
NEW_TEST = "\n\ndef test_counts_last():\n    assert total([1, 2, 3]) == 6\n"
NET_TEST = ("import urllib.request\n\n\ndef test_fetch():\n"
            "    assert urllib.request.urlopen('http://example.com', timeout=5).status == 200\n")
SETUP = "from setuptools import setup\n\nsetup(name='netpkg', version='0.1', packages=['netpkg'])\n"
# The environment's own interpreter has pytest; the venv sees it, and a .pth file stands in
# for `pip install -e .` (no index, no wheel package needed).
OFFLINE = Recipe(f"{sys.version_info[0]}.{sys.version_info[1]}", system_site_packages=True,
                 install="echo \"$PWD\" > \"$(python -c 'import sysconfig; "
                         "print(sysconfig.get_paths()[\"purelib\"])')/repo.pth\"")


def _diff(repo: Path, files: dict[str, str]) -> str:
    """The patch that writes `files` (new ones included), made with git and then undone."""
    for path, content in files.items():
        (repo / path).write_text(content)
    git(["add", "-N", "."], repo)
    patch = git(["diff"], repo).stdout
    git(["reset", "-q"], repo)
    git(["checkout", "--", "."], repo)
    git(["clean", "-fdq"], repo)
    return patch


@pytest.fixture(scope="module")
def instance(tmp_path_factory):
    root = tmp_path_factory.mktemp("swebench_local")
    repo = root / "local__netpkg"
    (repo / "netpkg").mkdir(parents=True)
    (repo / "tests").mkdir()
    (repo / "setup.py").write_text(SETUP)
    (repo / "netpkg" / "__init__.py").write_text(SRC)
    (repo / "tests" / "test_total.py").write_text(TESTS)
    git(["init", "-q"], repo)
    git(["add", "-A"], repo)
    git(["commit", "-q", "-m", "base"], repo)
    base = git(["rev-parse", "HEAD"], repo).stdout.strip()
    test_patch = _diff(repo, {"tests/test_total.py": TESTS + NEW_TEST, "tests/test_net.py": NET_TEST})
    eval_script = ("#!/bin/bash\ncd /testbed\n: '>>>>> Start Test Output'\n"
                   "pytest -rA -p no:cacheprovider tests/test_total.py tests/test_net.py\n"
                   ": '>>>>> End Test Output'\n")
    task = Task(instance_id="local__netpkg-1", repo="local/netpkg", base_commit=base, version="0.1",
                patch=_diff(repo, {"netpkg/__init__.py": SRC.replace(" - 1))", "))")}),
                problem_statement="total() drops the last item", test_patch=test_patch,
                FAIL_TO_PASS=["tests/test_total.py::test_counts_last"],
                PASS_TO_PASS=["tests/test_total.py::test_empty", "tests/test_total.py::test_rejects_empty_url",
                              "tests/test_net.py::test_fetch"],
                eval_script=eval_script)
    return task, EnvConfig(repos=RepoSource(mirror_template=str(root / "{owner}__{name}")))


needs_bwrap = pytest.mark.skipif(bwrap_path() is None, reason="turning the network off needs bwrap")


@needs_bwrap
def test_gold_resolved_network_test_set_apart(instance, tmp_path):
    task, config = instance
    report = grade_local(task, task.patch, config, recipe=OFFLINE, log_dir=tmp_path)
    assert report.error is None, report.error
    assert report.network_isolated
    assert report.network_tests == ["tests/test_net.py::test_fetch"]
    assert report.outcome == "resolved" and report.resolved
    # swebench's verdict on every test is kept, and it is not silently a pass.
    assert not report.grade.resolved
    assert "tests/test_total.py::test_counts_last" in report.grade.fail_to_pass["success"]


@needs_bwrap
def test_empty_patch_unresolved(instance, tmp_path):
    task, config = instance
    report = grade_local(task, "", config, recipe=OFFLINE, log_dir=tmp_path)
    assert report.outcome == "unresolved" and not report.resolved
    assert "tests/test_total.py::test_counts_last" in report.grade.fail_to_pass["failure"]
    assert report.network_tests == ["tests/test_net.py::test_fetch"]


@needs_bwrap
def test_a_wrong_patch_cannot_hide_behind_the_network_classifier(instance, tmp_path):
    """Gold plus a change that raises ConnectionError where a test wants ValueError: that test's
    failure reads like a network error, but the gold patch passes it, so it counts."""
    task, config = instance
    wrong = task.patch + _diff_on(config, task, {"netpkg/__init__.py": SRC.replace(" - 1))", "))").replace(
        "raise ValueError('empty url')", "raise ConnectionError('empty url')")}, base_files={
        "netpkg/__init__.py": SRC.replace(" - 1))", "))")})
    report = grade_local(task, wrong, config, recipe=OFFLINE, log_dir=tmp_path)
    assert report.outcome == "unresolved" and not report.resolved, report
    assert report.network_tests == ["tests/test_net.py::test_fetch"]  # only the gold patch's own network test
    assert grade_local(task, wrong, config, recipe=OFFLINE, log_dir=tmp_path).outcome == "unresolved"


def _diff_on(config, task, files: dict[str, str], base_files: dict[str, str]) -> str:
    """A patch from `base_files` to `files` in a clone of the instance's repository."""
    clone = Path(tempfile.mkdtemp(prefix="protege-test-diff-"))
    try:
        git(["clone", "-q", config.repos.location(task.repo), str(clone / "r")], clone)
        repo = clone / "r"
        for path, content in base_files.items():
            (repo / path).write_text(content)
        git(["commit", "-qam", "gold"], repo)
        return _diff(repo, files)
    finally:
        shutil.rmtree(clone, ignore_errors=True)


def test_network_classifier():
    log = ("____ test_fetch ____\n    def test_fetch():\nE   urllib.error.URLError: <urlopen error "
           "[Errno -3] Temporary failure in name resolution>\n____ test_math ____\nE   assert 1 == 2\n"
           "=========== short test summary info ============\nFAILED t.py::test_fetch - urllib.error.URLError\n"
           "FAILED t.py::test_math - assert 1 == 2\nFAILED t.py::TestX::test_dns - socket.gaierror\n")
    assert network_failures(log, ["t.py::test_fetch", "t.py::test_math", "t.py::TestX::test_dns"]) == [
        "t.py::test_fetch", "t.py::TestX::test_dns"]


def test_recipes_are_derived_from_swebench_specs():
    recipe = recipe_for(Task("pytest-dev__pytest-1", "pytest-dev/pytest", "abc", "", "", [], [], version="5.4"))
    assert recipe.python == "3.9" and "pluggy==0.13.1" in recipe.pip_packages
    with pytest.raises(KeyError, match="no local recipe.*compiler"):
        recipe_for(Task("astropy__astropy-1", "astropy/astropy", "abc", "", "", [], [], version="5.0"))
    # a recipe given for the instance wins over the derived one
    given = {("pytest-dev/pytest", "5.4"): Recipe("3.11")}
    assert recipe_for(Task("p-1", "pytest-dev/pytest", "abc", "", "", [], [], version="5.4"), given).python == "3.11"


@pytest.fixture(autouse=True)
def _own_env_cache(tmp_path_factory, monkeypatch):
    """Built environments go to a cache of this test module's own."""
    monkeypatch.setenv("PROTEGE_ENV_CACHE", str(tmp_path_factory.getbasetemp() / "env-cache"))


@needs_bwrap
def test_environment_built_once_then_copied_and_relocated(instance, tmp_path, monkeypatch):
    """The second grading of a (repo, version) copies the cached venv instead of building it; the
    copy's scripts point at the copy (the episode's own venv), not at the builder's."""
    task, config = instance
    cache = tmp_path / "env-cache"
    monkeypatch.setenv("PROTEGE_ENV_CACHE", str(cache))
    recipe = Recipe(OFFLINE.python, system_site_packages=True, install=OFFLINE.install,
                    pip_packages=("--no-index", "pip"))  # a pip step that needs no index
    first = grade_local(task, task.patch, config, recipe=recipe, log_dir=tmp_path / "a")
    second = grade_local(task, "", config, recipe=recipe, log_dir=tmp_path / "b")
    assert (first.outcome, second.outcome) == ("resolved", "unresolved"), (first.error, second.error)
    built = [p for p in cache.iterdir() if (p / "meta.json").exists()]
    assert len(built) == 1, built
    assert second.timings["env_s"] < 1.0 and first.timings["env_s"] > second.timings["env_s"]
    assert "tests/test_total.py::test_counts_last" in Path(second.grade.log_path).read_text()


def test_place_venv_points_scripts_at_the_copy(tmp_path):
    from types import SimpleNamespace

    from protege.env.swebench_local import place_venv

    old = "/var/tmp/builder/box/home/venv"
    cached = tmp_path / "cached"
    (cached / "venv" / "bin").mkdir(parents=True)
    (cached / "venv" / "bin" / "activate").write_text(f'VIRTUAL_ENV="{old}"\n')
    (cached / "venv" / "bin" / "pytest").write_text(f"#!{old}/bin/python\nimport pytest\n")
    (cached / "venv" / "bin" / "python").symlink_to("/usr/bin/python3")
    (cached / "venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (cached / "meta.json").write_text(__import__("json").dumps({"prefix": old}))
    box = tmp_path / "ws" / "box"
    (box / "home").mkdir(parents=True)
    env = SimpleNamespace(box=box, config=EnvConfig(), lease=None)
    place_venv(cached, env)
    new = str((box / "home" / "venv").resolve())
    assert (box / "home" / "venv" / "bin" / "activate").read_text() == f'VIRTUAL_ENV="{new}"\n'
    assert (box / "home" / "venv" / "bin" / "pytest").read_text().startswith(f"#!{new}/bin/python\n")
    assert (box / "home" / "venv" / "bin" / "python").readlink() == Path("/usr/bin/python3")
    assert old in (cached / "venv" / "bin" / "activate").read_text()  # the cache itself is untouched


@needs_bwrap
def test_validate_local_gold_and_empty_resumes(instance, tmp_path, monkeypatch):
    """gold resolves, empty does not; a rerun grades nothing again."""
    from protege.env import swebench_local

    task, config = instance
    monkeypatch.setattr(swebench_local, "recipe_for", lambda t, recipes=None: OFFLINE)
    out = tmp_path / "v.csv"
    rows = validate_local([task], out, config, workers=2, log_dir=tmp_path / "logs", progress=False)
    assert [(r["patch"], r["outcome"], r["expected"]) for r in rows] == [
        ("gold", "resolved", True), ("empty", "unresolved", True)]
    table = summary_table(rows)
    assert table[["instances", "gold_resolved", "empty_unresolved", "errors"]].values.tolist() == [[1, 1, 1, 0]]
    monkeypatch.setattr(swebench_local, "recipe_for", lambda *a, **k: pytest.fail("graded again"))
    assert len(validate_local([task], out, config, progress=False)) == 2


def test_missing_python_is_a_clear_error(instance):
    with pytest.raises(PythonNotFound, match="pyenv install 2.5"):
        find_python("2.5")
    task, config = instance
    report = grade_local(task, task.patch, config, recipe=Recipe("2.5"))
    assert report.outcome == "error" and "No Python 2.5".lower() in report.error.lower()


@needs_bwrap
def test_interpreter_under_home_runs_in_the_sandbox():
    """pyenv keeps builds under HOME, which the sandbox hides: they are staged outside."""
    from protege.env.sandbox import SandboxConfig, hand_over, run_command

    version = next((v for v in ("3.9", "3.10", "3.12") if _has(v)), None)
    if version is None:
        pytest.skip("no second Python version installed")
    python, env_add = sandbox_python(find_python(version))  # the shared, world-readable cache
    assert not python.is_relative_to(Path.home())
    ws = Path(tempfile.mkdtemp(prefix="protege-test-"))  # pytest's tmp_path is private to root
    try:
        hand_over(ws, SandboxConfig())
        result = run_command(f"{python} -m venv venv && venv/bin/python -c 'import sys; print(sys.version)'",
                             ws, ws, SandboxConfig(extra_env=env_add), writable=[ws])
    finally:
        shutil.rmtree(ws, ignore_errors=True)
    assert result.ok and result.output.startswith(version), result.observation()


def _has(version: str) -> bool:
    try:
        find_python(version)
        return True
    except PythonNotFound:
        return False
