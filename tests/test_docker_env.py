"""DockerEnvironment against a real engine: grading parity with LocalEnvironment, adversarial
commands contained, no container left behind after SIGKILL.

Needs DOCKER_HOST (scripts/docker_engine.sh) and the base image (scripts/build_base_image.sh);
skips with the reason otherwise. Run: pytest -m docker tests/test_docker_env.py
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from protege.env.base import EnvConfig, RepoSource, git
from protege.env.grading import grade
from protege.env.sandbox import SandboxConfig
from protege.tasks.schema import Task

pytestmark = pytest.mark.docker

BUGGY = "def total(xs):\n    return sum(xs[i] for i in range(len(xs) - 1))\n"
FIXED = "def total(xs):\n    return sum(xs[i] for i in range(len(xs)))\n"
TESTS = "from calc import total\n\n\ndef test_empty():\n    assert total([]) == 0\n"
NEW_TEST = "\n\ndef test_counts_last():\n    assert total([1, 2, 3]) == 6\n"


def _diff(repo: Path, path: str, content: str) -> str:
    """A patch that sets `path` to `content`, made with git and then undone."""
    (repo / path).write_text(content)
    patch = git(["diff"], repo).stdout
    git(["checkout", "--", path], repo)
    return patch


def make_local_task(root: Path) -> tuple[Task, EnvConfig]:
    """A bundled-like task: repo local/calc with an off-by-one bug, checked out from a mirror."""
    repo = root / "mirrors" / "local__calc"
    (repo / "calc").mkdir(parents=True)
    (repo / "tests").mkdir()
    (repo / "calc" / "__init__.py").write_text(BUGGY)
    (repo / "tests" / "test_calc.py").write_text(TESTS)
    git(["init", "-q"], repo)
    git(["add", "-A"], repo)
    git(["commit", "-q", "-m", "base"], repo)
    base = git(["rev-parse", "HEAD"], repo).stdout.strip()
    task = Task(instance_id="local__calc-1", repo="local/calc", base_commit=base,
                patch=_diff(repo, "calc/__init__.py", FIXED), problem_statement="total drops the last item",
                FAIL_TO_PASS=["tests/test_calc.py::test_counts_last"],
                PASS_TO_PASS=["tests/test_calc.py::test_empty"],
                test_patch=_diff(repo, "tests/test_calc.py", TESTS + NEW_TEST))
    config = EnvConfig(repos=RepoSource(mirror_template=str(root / "mirrors" / "{owner}__{name}")))
    return task, config


@pytest.fixture(scope="module")
def client():
    docker = pytest.importorskip("docker")
    from protege.env.docker import BASE_IMAGE, client_from_env

    try:
        c = client_from_env()
        c.ping()
    except Exception as exc:
        pytest.skip(f"no Docker engine reachable at DOCKER_HOST={os.environ.get('DOCKER_HOST')!r} "
                    f"({type(exc).__name__}); start one with scripts/docker_engine.sh")
    try:
        c.images.get(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.skip(f"image {BASE_IMAGE} missing; build it with scripts/build_base_image.sh")
    return c


@pytest.fixture
def local_task(tmp_path):
    return make_local_task(tmp_path)


def _docker(config: EnvConfig, **sandbox) -> EnvConfig:
    return EnvConfig(backend="docker", repos=config.repos, sandbox=SandboxConfig(**sandbox))


def _labelled(client, owner: str | None = None) -> list:
    found = client.containers.list(all=True, filters={"label": "protege=1"})
    return [c for c in found if owner is None or c.labels.get("protege.owner") == owner]


def test_grading_matches_local(client, local_task, tmp_path):
    task, config = local_task
    results = {}
    for backend in ("local", "docker"):
        cfg = EnvConfig(backend=backend, repos=config.repos)
        gold = grade(task, task.patch, cfg, log_dir=tmp_path / backend)
        empty = grade(task, "", cfg, log_dir=tmp_path / backend / "empty")
        assert gold.error is None and empty.error is None, (backend, gold.error, empty.error)
        results[backend] = (gold.resolved, gold.status, empty.resolved, empty.status,
                            gold.fail_to_pass, empty.fail_to_pass)
    assert results["docker"] == results["local"]
    assert results["docker"][:4] == (True, "RESOLVED_FULL", False, "RESOLVED_NO")
    assert not _labelled(client)


def test_protocol_and_diff(client, local_task):
    from protege.env.docker import DockerEnvironment

    task, config = local_task
    with DockerEnvironment(task, _docker(config)) as env:
        assert env.read_file("calc/__init__.py") == BUGGY
        env.write_file("calc/__init__.py", FIXED)
        env.write_file("notes/new.txt", "hello\n")
        with pytest.raises(PermissionError):
            env.write_file("../etc/passwd", "x")
        diff = env.diff()
        assert "+    return sum(xs[i] for i in range(len(xs)))" in diff
        assert "b/notes/new.txt" in diff
        result = env.run("python -m pytest -q tests 2>&1 | tail -1")
        assert result.ok and "passed" in result.output
        name = env.container.name
    assert not [c for c in _labelled(client) if c.name == name]


def test_adversarial_commands_contained(client, local_task, tmp_path, monkeypatch):
    from protege.env.docker import DockerEnvironment

    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-canary")
    outside = tmp_path / "host_only"
    outside.mkdir()
    task, config = local_task
    cfg = _docker(config, timeout_s=20, output_kill_bytes=2_000_000, max_processes=128, memory_mb=512)
    with DockerEnvironment(task, cfg) as env:
        t0 = time.monotonic()
        bomb = env.run(":(){ :|:& };:", timeout_s=5)
        # Its processes hit pids_limit and die with the timeout or are reaped when it returns.
        assert time.monotonic() - t0 < 30 and (bomb.timed_out or bomb.background_killed > 0)
        alive = env.run("echo alive; ls /proc | grep -c '^[0-9]'")  # init, keeper, timeout, bash, ls, grep
        assert alive.output.split()[0] == "alive" and int(alive.output.split()[1]) <= 6, alive.output

        t0 = time.monotonic()
        slow = env.run("sleep 1000", timeout_s=2)
        assert slow.timed_out and time.monotonic() - t0 < 20

        flood = env.run("yes protege")
        assert flood.output_killed and len(flood.output) < 50_000

        secret = env.run("echo key=${OPENAI_API_KEY:-unset}; env; cat /proc/1/environ")
        assert "sk-secret-canary" not in secret.output and "key=unset" in secret.output

        escape = env.run(f"echo pwned > {outside}/x; echo pwned > /etc/x; echo pwned > /x")
        assert escape.exit_code != 0 and not (outside / "x").exists()
        assert env.run("test -e /etc/x || test -e /x").exit_code == 1

        background = env.run("sleep 300 & sleep 200 & echo started")
        assert background.ok and background.background_killed >= 2
        left = env.run("ls /proc | grep -c '^[0-9]'")  # init, keeper, timeout, bash, ls, grep
        assert int(left.output.strip()) <= 6, left.output

        memory = env.run("python3 -c 'b = bytearray(2 * 1024**3)'")
        assert not memory.ok

        net = env.run("python3 -c 'import socket; socket.create_connection((\"1.1.1.1\", 53), 3)'")
        assert not net.ok
    assert not _labelled(client)


def test_cleanup_after_sigkill(client, local_task, tmp_path):
    from protege.env.docker import cleanup_containers
    from protege.tasks.schema import save_tasks

    task, config = local_task
    tasks_file = save_tasks([task], tmp_path / "tasks.jsonl")
    child = textwrap.dedent(f"""
        import time
        from protege.env.docker import DockerEnvironment
        from protege.env.base import EnvConfig, RepoSource
        from protege.tasks.schema import load_tasks
        task = load_tasks({str(tasks_file)!r})[0]
        cfg = EnvConfig(backend="docker", repos=RepoSource(mirror_template={config.repos.mirror_template!r}))
        env = DockerEnvironment(task, cfg)
        print("ready", flush=True)
        time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    try:
        assert proc.stdout.readline().strip() == "ready"
        import socket

        owner = f"{socket.gethostname()}:{proc.pid}"
        assert len(_labelled(client, owner)) == 1
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert len(_labelled(client, owner)) == 1  # SIGKILL skips atexit: the container stays
    finally:
        if proc.poll() is None:
            proc.kill()
    removed = cleanup_containers(client)
    assert removed and not _labelled(client, owner)
    assert not _labelled(client)


@pytest.mark.parametrize("ending", ["exit", "exception", "keyboardinterrupt"])
def test_container_removed_on_every_exit(client, local_task, tmp_path, ending):
    """Left open at a normal exit, or unwinding from an error or Ctrl-C: no container stays."""
    from protege.tasks.schema import save_tasks

    task, config = local_task
    tasks_file = save_tasks([task], tmp_path / "tasks.jsonl")
    endings = {"exit": "env = DockerEnvironment(task, cfg)  # never closed: atexit removes it",
               "exception": "with DockerEnvironment(task, cfg):\n    raise RuntimeError('boom')",
               "keyboardinterrupt": "with DockerEnvironment(task, cfg):\n    raise KeyboardInterrupt"}
    child = textwrap.dedent(f"""
        from protege.env.docker import DockerEnvironment
        from protege.env.base import EnvConfig, RepoSource
        from protege.tasks.schema import load_tasks
        task = load_tasks({str(tasks_file)!r})[0]
        cfg = EnvConfig(backend="docker", repos=RepoSource(mirror_template={config.repos.mirror_template!r}))
    """) + endings[ending] + "\n"
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    assert (proc.returncode == 0) == (ending == "exit"), proc.stderr[-500:]
    assert not _labelled(client)


def test_bundled_instances_match_local(client):
    """One bundled instance per package, graded in the base image and locally: same verdicts."""
    from protege.tasks.bundled import load_bundled

    tasks = load_bundled()
    sample = [next(t for t in tasks if t.extra["package"] == p) for p in sorted({t.extra["package"] for t in tasks})]
    docker_cfg = EnvConfig(backend="docker")
    for task in sample:
        verdicts = {backend: (grade(task, task.patch, cfg).resolved, grade(task, "", cfg).resolved)
                    for backend, cfg in (("docker", docker_cfg), ("local", EnvConfig()))}
        assert verdicts == {"docker": (True, False), "local": (True, False)}, (task.instance_id, verdicts)
