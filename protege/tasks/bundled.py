"""The bundled benchmark's instances (built by `protege.bugbench`): where they are, their
difficulty tiers, and the task sources every stage names (``bundled[:train|:test]`` or a file)."""

from __future__ import annotations

from pathlib import Path

from protege.core.paths import BUNDLED_DATA_DIR
from protege.tasks.schema import Task, load_tasks

INSTANCES_FILE = BUNDLED_DATA_DIR / "instances.jsonl"
TIERS = ("easy", "medium", "hard")
# A fourth tier, above "easy": the reporter also says where the bug is and what is wrong with the
# line (what the reference expert's "description" hint says). The protégé can fix these alone,
# so asking the expert there is waste: what makes *selective* asking learnable and penalisable.
PINPOINTED = "pinpointed"


def load_bundled(split: str | None = None, path: Path | None = None) -> list[Task]:
    """The bundled instances, optionally only the 'train' or 'test' split."""
    tasks = load_tasks(path or INSTANCES_FILE)
    return [t for t in tasks if split is None or t.extra.get("split") == split]


def load_source(spec: str) -> list[Task]:
    """A task source as the CLI and every stage name it: ``bundled`` / ``bundled:train`` /
    ``bundled:test`` (the bundled benchmark) or a task file / hub dataset (`load_tasks`)."""
    kind, _, split = spec.partition(":")
    if kind == "bundled":
        return load_bundled(split or None)
    return load_tasks(spec)
