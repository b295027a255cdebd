"""What a pipeline run records beside its executed notebooks: the notebooks found, the commit, the
machine and versions, small result files copied into papermill_runs/, and JSON written atomically."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from protege import __version__
from protege.app.params import (
    PipelineError,
)
from protege.core.trajectory import atomic_write, plain

NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"


# Small result files copied from runs/<run-id>/<stage>/ to papermill_runs/<run-id>/results/<stage>/.
RESULT_FILES = ("config.json", "metrics.json", "metrics.csv", "per_instance.csv", "steps.csv", "stats.csv",
                "stats_table.csv", "train_log.csv", "data_stats.json", "metrics_by_tier.csv", "metrics_by_mutation.csv",
                "paired.csv", "before_after.csv")


MAX_RESULT_BYTES = 20 * 2**20  # a result file larger than this stays in runs/ only (listed in run.json)


_ID_RE = re.compile(r"^[A-Za-z0-9_.+=,-]+$")


def find_notebooks(root: str | Path = ".", select: list[str] | None = None) -> list[Path]:
    """The numbered notebooks under root/notebooks, in order; `select` keeps those whose name
    or number is listed ("04", "04_rl", "04_rl.ipynb")."""
    found = sorted((Path(root) / "notebooks").glob(NOTEBOOK_GLOB))
    if select is None:
        return found
    wanted = {s.strip().removesuffix(".ipynb") for s in select if s.strip()}
    chosen = [p for p in found if p.stem in wanted or p.stem.split("_", 1)[0] in wanted]
    missing = [w for w in wanted if not any(p.stem == w or p.stem.split("_", 1)[0] == w for p in chosen)]
    if missing:
        raise PipelineError(f"no notebook {', '.join(sorted(missing))} in {Path(root) / 'notebooks'} "
                            f"(found: {', '.join(p.name for p in found) or 'none'})")
    return chosen


def git_commit(root: str | Path = ".") -> str | None:
    """The checked-out commit, read from .git (None outside a git checkout)."""
    git = Path(root) / ".git"
    try:
        if git.is_file():  # a worktree: "gitdir: <path>"
            git = (Path(root) / git.read_text().split(":", 1)[1].strip()).resolve()
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head
        ref = head[5:]
        common = (git / (git / "commondir").read_text().strip()).resolve() if (git / "commondir").exists() else git
        for base in (git, common):
            if (base / ref).exists():
                return (base / ref).read_text().strip()
            if (base / "packed-refs").exists():
                for line in (base / "packed-refs").read_text().splitlines():
                    if line.endswith(" " + ref):
                        return line.split()[0]
    except OSError:
        return None
    return None


@lru_cache(maxsize=1)
def _torch_device() -> str:
    try:
        import torch
    except ImportError:
        return "none (torch not installed)"
    if torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)}, {torch.cuda.device_count()} device(s))"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def machine() -> dict[str, Any]:
    """Where a run was made: CPU count, torch device, platform, Python."""
    return {"cpu_count": os.cpu_count(), "torch_device": _torch_device(), "platform": platform.platform(),
            "python": platform.python_version()}


def versions() -> dict[str, str]:
    import papermill  # imports jupyter machinery: only when a record is written

    return {"protege": __version__, "papermill": papermill.__version__}


def collect_results(run_dir: str | Path, results_dir: str | Path) -> tuple[list[str], list[str]]:
    """Copy the small result files (RESULT_FILES, at most MAX_RESULT_BYTES) of run_dir and of
    each of its stage folders (symlinked ones included) to results_dir, same relative paths.
    Returns (copied, left out as too large), relative paths."""
    run_dir, results_dir = Path(run_dir), Path(results_dir)
    copied, too_large = [], []
    if not run_dir.is_dir():
        return copied, too_large
    folders = [run_dir] + sorted(p for p in run_dir.iterdir() if p.is_dir())
    for folder in folders:
        for name in RESULT_FILES:
            src = folder / name
            if not src.is_file():
                continue
            rel = src.relative_to(run_dir).as_posix()
            if src.stat().st_size > MAX_RESULT_BYTES:
                too_large.append(rel)
                continue
            dest = results_dir / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
            copied.append(rel)
    return copied, too_large


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_json(path: Path, default: Any) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else default


def write_json(path: Path, data: Any) -> None:
    atomic_write(path, json.dumps(data, indent=2, default=str) + "\n")


def normal(value: Any) -> Any:
    return plain(value)


def check_id(kind: str, value: str) -> str:
    if not value or not _ID_RE.match(value):
        raise PipelineError(f"{kind} {value!r}: use letters, digits and _ . + = , - only")
    return value
