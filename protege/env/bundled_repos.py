"""Bundled packages as real git repositories: one root commit holding the buggy tree.

The buggy tree is the clean package with the gold patch reversed, committed with a fixed
identity and date, so its hash is the instance's `base_commit` on every machine. The clean
source never enters the repository's history, so `git log -p` cannot reveal the fix.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from protege.core.paths import BUNDLED_PACKAGES_DIR
from protege.env.base import EnvironmentError_, git
from protege.tasks.schema import BUNDLED_REPO_PREFIX, Task

IGNORE = shutil.ignore_patterns("__pycache__", ".pytest_cache", "*.pyc", "*.egg-info")


def package_names() -> list[str]:
    return sorted(p.name for p in BUNDLED_PACKAGES_DIR.iterdir()
                  if p.is_dir() and (p / "tests").is_dir())


def package_of(task: Task) -> str:
    return task.repo[len(BUNDLED_REPO_PREFIX):]


def copy_package(name: str, dest: Path) -> None:
    src = BUNDLED_PACKAGES_DIR / name
    if not src.is_dir():
        raise EnvironmentError_(f"no bundled package {name!r} in {BUNDLED_PACKAGES_DIR}")
    shutil.copytree(src, dest, ignore=IGNORE)
    for path in dest.rglob("*"):  # git records only 644/755; normalise so hashes match
        path.chmod(0o755 if path.is_dir() else 0o644)


def commit_all(repo: Path, message: str) -> str:
    """Initialise (if needed) and commit everything; returns the commit hash."""
    if not (repo / ".git").exists():
        git(["init", "--quiet"], repo)
    git(["add", "-A"], repo)
    git(["commit", "--quiet", "--no-gpg-sign", "--allow-empty", "-m", message], repo)
    return git(["rev-parse", "HEAD"], repo).stdout.strip()


def base_message(name: str) -> str:
    return f"{name}: snapshot"


def materialise(task: Task, dest: Path) -> None:
    """Check a bundled instance out at its base commit in `dest`."""
    name = package_of(task)
    copy_package(name, dest)
    ok, log = apply_patch_reverse(dest, task.patch)
    if not ok:
        raise EnvironmentError_(f"instance {task.instance_id!r}: field 'patch': does not reverse-apply "
                                f"to the bundled package {name!r}: {log[-300:]}")
    head = commit_all(dest, base_message(name))
    if head != task.base_commit:
        raise EnvironmentError_(
            f"instance {task.instance_id!r}: field 'base_commit': bundled package {name!r} builds "
            f"commit {head}, the instance says {task.base_commit}; the package source changed "
            "since the benchmark was built (rebuild it with `protege bench build`)")


def apply_patch_reverse(repo: Path, patch: str) -> tuple[bool, str]:
    if not patch.strip():
        return True, ""
    proc = git(["apply", "-R", "--whitespace=nowarn", "-"], repo, check=False,
               input=patch if patch.endswith("\n") else patch + "\n")
    return proc.returncode == 0, proc.stderr

