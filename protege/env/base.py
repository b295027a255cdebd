"""What every environment is: the `Environment` protocol the agent loop, collection, RL and
grading use, its settings, its errors, and the trusted git on the host (repositories the model
never wrote: our own checkouts and mirrors)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from protege.env.sandbox import CommandResult, SandboxConfig
from protege.tasks.schema import Task

DEBRIS = ("__pycache__/", "*.pyc", ".pytest_cache/", ".protege_patch.diff")  # never part of a model patch


class EnvironmentError_(RuntimeError):
    """The workspace could not be created or the repository not checked out."""


class PatchTooLarge(EnvironmentError_):
    """The work tree differs from base_commit by more than `EnvConfig.max_patch_bytes`."""


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
    max_patch_bytes: int = 2_000_000  # a model patch larger than this ends the episode as patch_too_large; -1 = no cap
    editor_max_bytes: int = 2_000_000  # the editor refuses files larger than this (bash can still read parts)
    docker: Any = None  # backend "docker" only: a protege.env.docker.DockerOptions; None = defaults


GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "protege", "GIT_AUTHOR_EMAIL": "protege@localhost",
    "GIT_COMMITTER_NAME": "protege", "GIT_COMMITTER_EMAIL": "protege@localhost",
    # Fixed dates make bundled base commits byte-identical across machines and rebuilds.
    "GIT_AUTHOR_DATE": "2025-01-01T00:00:00+0000", "GIT_COMMITTER_DATE": "2025-01-01T00:00:00+0000",
}


def git(args: list[str], cwd: Path, check: bool = True, input: str | None = None,
        timeout: float = 600) -> subprocess.CompletedProcess:
    """Trusted git on the host, on repositories the model never wrote (our own checkouts and
    mirrors), with a clean config and fixed identity."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd), "LANG": "C.UTF-8",
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0",
           **GIT_IDENTITY}
    proc = subprocess.run(["git", "-c", "core.autocrlf=false", "-c", "core.hooksPath=/dev/null",
                           "-c", "init.defaultBranch=main", *args], cwd=cwd, env=env, input=input,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise EnvironmentError_(f"git {' '.join(args[:3])} failed in {cwd}: {proc.stderr.strip()[-800:]}")
    return proc
