"""A task's repository at its `base_commit`: the bundled benchmark's built in place, a real
one cloned from a mirror or its URL (`RepoSource`)."""

from __future__ import annotations

from pathlib import Path

from protege.env.base import DEBRIS, EnvironmentError_, RepoSource, git
from protege.env.bundled_repos import materialise
from protege.tasks.schema import Task


def checkout(task: Task, dest: Path, repos: RepoSource | None = None) -> None:
    """Materialise the task's repository at base_commit in `dest` (which must not exist)."""
    if task.is_bundled:
        materialise(task, dest)
    else:
        _clone(task, dest, repos)
    # Build debris never belongs in a model patch (this list is for the model's own `git status`;
    # the patch itself is read with the trusted copy's, see trusted_git_dir).
    with (dest / ".git" / "info" / "exclude").open("a") as fh:
        fh.write("\n" + "\n".join(DEBRIS) + "\n")


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
