"""The environment a config names: local (the sandbox) or Docker."""

from __future__ import annotations

from protege.env.base import EnvConfig, Environment
from protege.env.docker import DockerEnvironment
from protege.env.local import LocalEnvironment
from protege.tasks.schema import Task


def make_environment(task: Task, config: EnvConfig | None = None) -> Environment:
    """The environment named by `config.backend`."""
    config = config or EnvConfig()
    if config.backend == "local":
        return LocalEnvironment(task, config)
    if config.backend == "docker":
        return DockerEnvironment(task, config)
    raise ValueError(f"unknown environment backend {config.backend!r} (use 'local' or 'docker')")
