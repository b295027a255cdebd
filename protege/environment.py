"""Environments: a task's repository checked out at `base_commit`, commands run sandboxed.

`Environment` is the protocol the agent loop, collection, RL and grading all use.
`LocalEnvironment` is the default: a fresh temporary workspace per task, each command run
by `protege.sandbox.run_command`. The Docker environment (`protege.docker_env`) follows the
same protocol.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from protege.sandbox import CommandResult, SandboxConfig, hand_over, run_command
from protege.tasks import Task


class EnvironmentError_(RuntimeError):
    """The workspace could not be created or the repository not checked out."""


@runtime_checkable
class Environment(Protocol):
    """A task's repository that an agent can act on. Paths are relative to `workdir`."""

    task: Task
    workdir: str

    def run(self, command: str, timeout_s: float | None = None) -> CommandResult: ...
    def read_file(self, path: str) -> str: ...
    def write_file(self, path: str, content: str) -> None: ...
    def diff(self) -> str: ...
    def close(self) -> None: ...


@dataclass
class RepoSource:
    """Where a real repository comes from. Templates take {repo}, {owner} and {name}."""

    clone_url_template: str = "https://github.com/{repo}.git"  # used when no mirror is given
    mirror_template: str | None = None  # a local path (or URL) such as "/srv/mirrors/{owner}__{name}"

    def location(self, repo: str) -> str:
        owner, _, name = repo.partition("/")
        template = self.mirror_template or self.clone_url_template
        return template.format(repo=repo, owner=owner, name=name)


@dataclass
class EnvConfig:
    """How environments are made: backend, sandbox limits and where repositories come from."""

    backend: str = "local"  # "local" | "docker"
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    repos: RepoSource = field(default_factory=RepoSource)
    workspace_root: str | None = None  # parent folder of temporary workspaces; None = system temp
    keep_workspace: bool = False  # keep the folder after close (debugging)
    docker: Any = None  # backend "docker" only: a protege.docker_env.DockerOptions; None = defaults


GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "protege", "GIT_AUTHOR_EMAIL": "protege@localhost",
    "GIT_COMMITTER_NAME": "protege", "GIT_COMMITTER_EMAIL": "protege@localhost",
    # Fixed dates make bundled base commits byte-identical across machines and rebuilds.
    "GIT_AUTHOR_DATE": "2025-01-01T00:00:00+0000", "GIT_COMMITTER_DATE": "2025-01-01T00:00:00+0000",
}


def git(args: list[str], cwd: Path, check: bool = True, input: str | None = None,
        timeout: float = 600) -> subprocess.CompletedProcess:
    """Trusted git on the host (never model input), with a clean config and fixed identity."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd), "LANG": "C.UTF-8",
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0",
           **GIT_IDENTITY}
    proc = subprocess.run(["git", "-c", "safe.directory=*", "-c", "core.autocrlf=false",
                           "-c", "init.defaultBranch=main", *args], cwd=cwd, env=env, input=input,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise EnvironmentError_(f"git {' '.join(args[:3])} failed in {cwd}: {proc.stderr.strip()[-800:]}")
    return proc


def workspace_diff(repo_dir: Path, base_commit: str) -> str:
    """The model patch: every change against base_commit, new files included, binary-safe."""
    git(["add", "-A"], repo_dir)
    diff = git(["diff", "--cached", "--binary", "--no-color", "--no-ext-diff", base_commit], repo_dir).stdout
    git(["reset", "-q"], repo_dir)
    return diff


def apply_patch(repo_dir: Path, patch: str) -> tuple[bool, str]:
    """Apply a unified diff with `git apply`, falling back to `patch -p1 --fuzz`; (ok, log)."""
    if not patch.strip():
        return True, "empty patch"
    if not patch.endswith("\n"):
        patch += "\n"
    first = git(["apply", "--verbose", "--whitespace=nowarn", "-"], repo_dir, check=False, input=patch)
    if first.returncode == 0:
        return True, first.stderr
    second = subprocess.run(["patch", "--batch", "--fuzz=5", "-p1", "-i", "-"], cwd=repo_dir,
                            input=patch, capture_output=True, text=True, timeout=120)
    if second.returncode == 0:
        return True, first.stderr + second.stdout
    return False, (first.stderr + second.stdout + second.stderr).strip()


class LocalEnvironment:
    """A fresh temporary workspace (`repo/` and `home/`) for one task, removed on close."""

    def __init__(self, task: Task, config: EnvConfig | None = None):
        self.task = task
        self.config = config or EnvConfig()
        self.root: Path | None = None
        self.repo_dir: Path | None = None
        self._start()

    # Context-manager use guarantees cleanup on every exit path.
    def __enter__(self) -> "LocalEnvironment":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def workdir(self) -> str:
        return str(self.repo_dir)

    def _start(self) -> None:
        try:
            parent = self.config.workspace_root
            if parent:
                Path(parent).mkdir(parents=True, exist_ok=True)
            self.root = Path(tempfile.mkdtemp(prefix="protege-ws-", dir=parent))
        except OSError as exc:
            raise EnvironmentError_(f"instance {self.task.instance_id!r}: cannot create a workspace "
                                    f"under {self.config.workspace_root or tempfile.gettempdir()!r}: {exc}") from exc
        try:
            self.repo_dir = self.root / "repo"
            (self.root / "home").mkdir()
            checkout(self.task, self.repo_dir, self.config.repos)
            hand_over(self.root, self.config.sandbox)
        except BaseException:
            self.close()
            raise

    def run(self, command: str, timeout_s: float | None = None) -> CommandResult:
        if self.repo_dir is None:
            raise EnvironmentError_("environment is closed")
        return run_command(command, self.repo_dir, self.root / "home", self.config.sandbox,
                           writable=[self.root], timeout_s=timeout_s)

    def _resolve(self, path: str) -> Path:
        candidate = (self.repo_dir / path).resolve() if not os.path.isabs(path) else Path(path).resolve()
        if not candidate.is_relative_to(self.repo_dir.resolve()):
            raise PermissionError(f"{path!r} is outside the repository {self.workdir}")
        return candidate

    def read_file(self, path: str) -> str:
        return self._resolve(path).read_text(encoding="utf-8", errors="replace")

    def write_file(self, path: str, content: str) -> None:
        target = self._resolve(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
        if os.geteuid() == 0 and self.config.sandbox.sandbox_uid >= 0:
            os.chown(target, self.config.sandbox.sandbox_uid, self.config.sandbox.sandbox_uid)

    def diff(self) -> str:
        return workspace_diff(self.repo_dir, self.task.base_commit)

    def close(self) -> None:
        if self.root is not None and not self.config.keep_workspace:
            shutil.rmtree(self.root, ignore_errors=True)
        self.root = self.repo_dir = None


def checkout(task: Task, dest: Path, repos: RepoSource | None = None) -> None:
    """Materialise the task's repository at base_commit in `dest` (which must not exist)."""
    if task.is_bundled:
        from protege.benchmark.repos import materialise

        materialise(task, dest)
    else:
        _clone(task, dest, repos)
    # Build debris never belongs in a model patch.
    with (dest / ".git" / "info" / "exclude").open("a") as fh:
        fh.write("\n__pycache__/\n*.pyc\n.pytest_cache/\n.protege_patch.diff\n")


def _clone(task: Task, dest: Path, repos: RepoSource | None) -> None:
    source = (repos or RepoSource()).location(task.repo)
    dest.parent.mkdir(parents=True, exist_ok=True)
    local = Path(source)
    args = ["clone", "--quiet", "--no-checkout"]
    if local.exists():
        args.append("--no-hardlinks")
    proc = git([*args, source, str(dest)], dest.parent, check=False)
    if proc.returncode != 0:
        raise EnvironmentError_(f"instance {task.instance_id!r}: field 'repo': cannot clone "
                                f"{task.repo!r} from {source!r}: {proc.stderr.strip()[-500:]}")
    proc = git(["checkout", "--quiet", "--detach", task.base_commit], dest, check=False)
    if proc.returncode != 0:
        raise EnvironmentError_(f"instance {task.instance_id!r}: field 'base_commit': "
                                f"{task.base_commit!r} not found in {source!r}: {proc.stderr.strip()[-300:]}")


def make_environment(task: Task, config: EnvConfig | None = None) -> Environment:
    """The environment named by `config.backend`."""
    config = config or EnvConfig()
    if config.backend == "local":
        return LocalEnvironment(task, config)
    if config.backend == "docker":
        from protege.docker_env import DockerEnvironment

        return DockerEnvironment(task, config)
    raise ValueError(f"unknown environment backend {config.backend!r} (use 'local' or 'docker')")
