"""Grading many predictions into one report, with resume: the report file keeps one entry per
(model, instance, patch), and an entry is reused for the same model's same patch unless it errored."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from protege.core.trajectory import atomic_write
from protege.env.grading import patch_sha256
from protege.tasks.schema import Task


def load_predictions(path: str | Path) -> list[dict[str, Any]]:
    """SWE-bench predictions (.json list/dict or .jsonl): instance_id, model_name_or_path, model_patch."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}: line {n}: not valid JSON ({exc.msg})") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc.msg})") from None
        rows = list(data.values()) if isinstance(data, dict) else data
    for n, row in enumerate(rows):
        for key in ("instance_id", "model_patch"):
            if not isinstance(row, dict) or key not in row:
                iid = row.get("instance_id") if isinstance(row, dict) else None
                raise ValueError(f"{path}: prediction {n} (instance {iid!r}): field {key!r} missing")
    return rows


def entry_key(model: str, instance_id: str, sha: str) -> str:
    """A report entry's key: one grade per (model, instance, patch), so gold and empty runs, or one
    prediction at a time, into one report never replace each other.

    >>> entry_key("gold", "acme__calc-1", "ab" * 32)
    'gold :: acme__calc-1 :: abababababababab'
    """
    return f"{model} :: {instance_id} :: {sha[:16]}"


def read_report(path: str | Path) -> dict[str, dict]:
    """Every entry of a report file (see `write_report`); {} when there is none. Reports written
    before entries were keyed by (model, instance, patch) are read by their instance entries."""
    path = Path(path)
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    if "entries" in data:
        return data["entries"]
    legacy = data.get("instances", data)
    return {entry_key(r.get("model_name_or_path") or "model", iid, r.get("patch_sha256", "")): r
            for iid, r in legacy.items() if isinstance(r, dict)}


def write_report(path: str | Path, entries: dict[str, dict], view: dict[str, dict], predictions: str | None = None) -> None:
    """A report file: `instances` (the predictions just graded, by instance id), their `summary`,
    and `entries`, every grade ever made into this file."""

    atomic_write(Path(path), json.dumps({"predictions": predictions, "instances": view, "summary": summary(view),
                                         "entries": entries}, indent=1))


def grade_predictions(preds: list[dict[str, Any]], tasks: dict[str, Task], entries: dict[str, dict],
                      grade_one, save=None, workers: int = 1, progress: bool = False) -> dict[str, dict]:
    """The one grade-with-resume loop: grade each prediction into `entries` (keyed by `entry_key`;
    nothing is removed), calling `save(view)` after each, and return the view: {instance_id:
    report} of these predictions. An entry is reused only when it graded the same model's same
    patch and did not error; errored ones are graded again. `grade_one(task, patch, model_name)
    -> dict` grades one; an empty patch is RESOLVED_NO without running tests (FAIL_TO_PASS fails
    at base_commit by definition); a prediction that is not well formed is an ERROR entry."""
    from concurrent.futures import ThreadPoolExecutor

    def key(pred: dict[str, Any]) -> str:
        patch = pred.get("model_patch")
        return entry_key(str(pred.get("model_name_or_path") or "model"), str(pred.get("instance_id")),
                         patch_sha256(patch) if isinstance(patch, str) or patch is None else "not-a-string")

    view: dict[str, dict] = {}
    todo = []
    for pred in preds:
        old = entries.get(key(pred))
        if old and old.get("status") != "ERROR":
            view[str(pred.get("instance_id"))] = old
        else:
            todo.append(pred)
    lock = threading.Lock()

    def one(pred: dict[str, Any]) -> tuple[dict[str, Any], dict]:
        iid, patch = pred.get("instance_id"), pred.get("model_patch")
        name = str(pred.get("model_name_or_path") or "model")
        base = {"instance_id": iid, "model_name_or_path": name, "resolved": False}
        if not isinstance(patch, str | None):
            rep = {**base, "status": "ERROR", "error": f"field 'model_patch': a {type(patch).__name__}, not a string"}
        elif iid not in tasks:
            rep = {**base, "status": "ERROR", "error": f"instance {iid!r} not in the tasks"}
        elif not (patch or "").strip():
            rep = {**base, "status": "RESOLVED_NO", "patch_applied": False, "error": "empty patch"}
        else:
            try:
                rep = {**grade_one(tasks[iid], patch, name), "model_name_or_path": name}
            except Exception as exc:  # one broken grading is that entry's error, never the batch's
                rep = {**base, "status": "ERROR", "error": f"{type(exc).__name__}: {exc}"}
        return pred, {**rep, "patch_sha256": patch_sha256(patch) if isinstance(patch, str | None) else ""}

    with ThreadPoolExecutor(max(1, workers)) as pool:
        results = pool.map(one, todo)
        if progress:
            from tqdm.auto import tqdm

            results = tqdm(results, total=len(todo), desc="grade")
        for pred, rep in results:
            with lock:
                entries[key(pred)] = rep
                view[str(pred.get("instance_id"))] = rep
                if save is not None:
                    save(view)
    return view


def summary(report: dict[str, dict]) -> dict[str, int]:
    """Counts for a report: total, resolved, errors, and patches whose test infrastructure was reverted."""
    reps = list(report.values())
    return {"total": len(reps), "resolved": sum(bool(r.get("resolved")) for r in reps),
            "errors": sum(r.get("status") == "ERROR" for r in reps),
            "reverted_test_infra": sum(bool(r.get("reverted_files")) for r in reps)}
