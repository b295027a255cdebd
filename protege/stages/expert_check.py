"""Checks of the reference expert (ORACLE) against real checkouts: its exact-edit calls, replayed
through the agent's own editor in a fresh checkout of each task, must give the gold patch's files
back (`protege tasks check-edits`). One row per task, appended as it is done, so a long run
over a SWE-bench file resumes where it stopped."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from protege.agent.editor import EditorOptions
from protege.agent.tools import execute
from protege.core.actions import Action
from protege.core.csv_rows import resumable_rows
from protege.core.protocols import ExpertRequest
from protege.env.base import EnvConfig
from protege.env.factory import make_environment
from protege.models.exact_edits import FileDiff, file_diffs
from protege.models.line_words import describe, rebuild, tokens
from protege.models.patch_reading import guidance_calls, parse_patch
from protege.models.reference_expert import ReferenceExpert
from protege.tasks.schema import Task

FIELDS = ["instance_id", "repo", "shape", "files", "hunks", "calls", "exact", "reason", "seconds"]
_GOLD_FILE = ".protege-gold.patch"


def patch_shape(diffs: list[FileDiff]) -> str:
    """The hunk shapes of a patch, for the report: the kinds of change joined by "+" (replace,
    insert, delete, new-file, deleted-file, rename) and the traits (multi-hunk, multi-file, crlf,
    no-final-newline, whitespace-only).

    >>> patch_shape(file_diffs("diff --git a/m.py b/m.py\\n--- a/m.py\\n+++ b/m.py\\n@@ -1,2 +1,3 @@\\n x\\n+y\\n z\\n"))
    'insert'
    """
    kinds, traits = [], []
    for fd in diffs:
        if fd.old_path is None:
            kinds.append("new-file")
        elif fd.new_path is None:
            kinds.append("deleted-file")
        elif fd.old_path != fd.new_path:
            kinds.append("rename")
        for h in fd.hunks:
            gone = [ln for ln in h.old if ln not in h.new]
            came = [ln for ln in h.new if ln not in h.old]
            if fd.old_path and fd.new_path:
                kinds.append("replace" if gone and came else "insert" if came else "delete" if gone else "ending")
            if any("\r" in ln for ln in h.old + h.new):
                traits.append("crlf")
            if any(ln and not ln.endswith("\n") for ln in h.old + h.new):
                traits.append("no-final-newline")
            if gone and came and sorted("".join(ln.split()) for ln in gone) == sorted("".join(ln.split()) for ln in came):
                traits.append("whitespace-only")
    if sum(len(fd.hunks) for fd in diffs) > 1:
        traits.append("multi-hunk")
    if len(diffs) > 1:
        traits.append("multi-file")
    return "+".join(dict.fromkeys(sorted(set(kinds)) + sorted(set(traits)))) or "empty"


def _read_all(env: Any, paths: Iterable[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for path in paths:
        try:
            out[path] = env.read_file(path)
        except (OSError, UnicodeDecodeError):
            out[path] = None  # absent (deleted, renamed away) or not a regular file
    return out


def replay_task(task: Task, env_config: EnvConfig | None = None,
                options: EditorOptions = EditorOptions()) -> dict[str, Any]:
    """Replay the reference expert's exact-edit calls for one task in a fresh checkout and compare
    the touched files with the gold patch applied by `git apply` to the same checkout."""
    start = time.monotonic()
    diffs = file_diffs(task.patch)
    paths = list(dict.fromkeys(p for fd in diffs for p in (fd.old_path, fd.new_path) if p))
    row: dict[str, Any] = {"instance_id": task.instance_id, "repo": task.repo, "shape": patch_shape(diffs),
                           "files": len(diffs), "hunks": sum(len(fd.hunks) for fd in diffs)}
    try:
        with make_environment(task, env_config) as env:
            before = _read_all(env, [fd.old_path for fd in diffs if fd.old_path])
            request = ExpertRequest("What exactly is the fix?", [], task.instance_id, task.problem_statement,
                                    gold_patch=task.patch, files={p: t for p, t in before.items() if t is not None})
            calls = guidance_calls(ReferenceExpert("exact_edit").advise(request).text)
            refused = []
            for tool, args in calls:
                observation = execute(env, Action(tool, args), options=options)
                if observation.startswith("Error") or "[exit code" in observation:
                    refused.append(f"{tool} {args.get('command', '')} {args.get('path', '')}: {observation[:160]}")
            replayed = _read_all(env, paths)
            env.run("git checkout -q -- . && git clean -fdq", timeout_s=120)
            env.write_file(_GOLD_FILE, task.patch)
            applied = env.run(f"git apply {_GOLD_FILE} && rm -f {_GOLD_FILE}", timeout_s=120)
            gold = _read_all(env, paths)
    except Exception as exc:  # one task's checkout failing must not stop the report
        return {**row, "calls": 0, "exact": False, "reason": f"checkout: {type(exc).__name__}: {exc}"[:300],
                "seconds": round(time.monotonic() - start, 1)}
    differ = [p for p in paths if replayed.get(p) != gold.get(p)]
    reason = ("; ".join(refused) or (f"git apply of the gold patch failed: {applied.output[:200]}"
                                     if applied.exit_code else "") or
              (f"differs from gold in {', '.join(differ)}" if differ else ""))
    return {**row, "calls": len(calls), "exact": not refused and not differ and applied.exit_code == 0,
            "reason": reason.replace("\n", " "), "seconds": round(time.monotonic() - start, 1)}


def check_edits(tasks: list[Task], out: Path, env_config: EnvConfig | None = None, workers: int = 2,
                progress: bool = True) -> list[dict[str, Any]]:
    """Replay every task not yet in `out` (CSV, appended row by row) and return all rows."""
    return resumable_rows(tasks, lambda t: t.instance_id, lambda t: replay_task(t, env_config), out, FIELDS,
                          workers=workers, desc="check-edits", progress=progress)


def summary_table(rows: list[dict[str, Any]]):
    """Per repository: tasks, exact replays and their share, checkout errors, median seconds."""
    import pandas as pd

    df = pd.DataFrame(rows)
    df["exact"] = df["exact"].astype(str).str.lower() == "true"
    df["checkout_error"] = df["reason"].fillna("").astype(str).str.startswith("checkout:")
    df["seconds"] = pd.to_numeric(df["seconds"])
    table = (df.groupby("repo").agg(tasks=("instance_id", "count"), exact=("exact", "sum"),
                                    checkout_errors=("checkout_error", "sum"), median_s=("seconds", "median"))
             .reset_index())
    table["exact_share"] = (table["exact"] / (table["tasks"] - table["checkout_errors"]).clip(lower=1)).round(3)
    return table


def description_kind(text: str) -> str:
    """How a one-line description says the fix: in words (operator, number, truth value, swap,
    deletion) or by quoting the part that changes (missing part, replacement); "none" when it
    gives no precise description (the line is rewritten)."""
    for pattern, kind in (("wrong order", "swap"), ("makes it ", "operator words"), ("makes that number", "number"),
                          ("opposite truth value", "truth value"), ("deletes that part", "deletion"),
                          ("missing part is", "missing part (quoted)"), ("puts ", "replacement (quoted)")):
        if pattern in text:
            return kind
    return "none"


def check_descriptions(tasks: list[Task]) -> list[dict[str, Any]]:
    """One row per single-line hunk (one non-blank line removed, one added) of the tasks' gold
    patches: the reference expert's description of it, how it says the fix, and whether the
    rule-based reader (`line_words.rebuild`) gets the fixed line back from it and the wrong line."""
    rows = []
    for task in tasks:
        for change in parse_patch(task.patch):
            removed = [ln for ln in change.removed if ln.strip()]
            added = [ln for ln in change.added if ln.strip()]
            if len(removed) != 1 or len(added) != 1 or tokens(removed[0]) == tokens(added[0]):
                continue
            words = describe(removed[0], added[0])
            rows.append({"instance_id": task.instance_id, "repo": task.repo, "path": change.path,
                         "line": change.line, "kind": description_kind(words),
                         "rebuilt": rebuild(removed[0], words) == tokens(added[0]), "description": words})
    return rows
