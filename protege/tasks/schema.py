"""Tasks in the SWE-bench schema, loaded from .json / .jsonl / .parquet files or a hub name.

Every validation error names the file, the instance and the field, e.g.::

    data/tasks.jsonl: instance 'astropy__astropy-1' (row 3): field 'FAIL_TO_PASS': not a JSON list of strings
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

REQUIRED_FIELDS = ("instance_id", "repo", "base_commit", "patch", "problem_statement",
                   "FAIL_TO_PASS", "PASS_TO_PASS")
# swebench 5.x fields: optional here, but when present they are type-checked.
OPTIONAL_STR_FIELDS = ("test_patch", "hints_text", "created_at", "version",
                       "environment_setup_commit", "difficulty", "image", "eval_script",
                       "log_parser", "eval_type")
EVAL_TYPES = ("pass_and_fail", "fail_only")


class TaskError(ValueError):
    """A task file or instance is malformed; the message names file, instance and field."""

    def __init__(self, source: str, message: str, instance_id: str | None = None,
                 field_name: str | None = None, row: int | None = None):
        self.source, self.instance_id, self.field_name, self.row = source, instance_id, field_name, row
        where = source
        if instance_id is not None or row is not None:
            where += f": instance {instance_id!r}" if instance_id is not None else ":"
            if row is not None:
                where += f" (row {row})"
        if field_name is not None:
            where += f": field {field_name!r}"
        super().__init__(f"{where}: {message}")


@dataclass
class Task:
    """One SWE-bench instance. FAIL_TO_PASS / PASS_TO_PASS are lists (JSON strings on disk)."""

    instance_id: str
    repo: str
    base_commit: str
    patch: str
    problem_statement: str
    FAIL_TO_PASS: list[str]
    PASS_TO_PASS: list[str]
    test_patch: str = ""
    hints_text: str = ""
    created_at: str = ""
    version: str = ""
    environment_setup_commit: str = ""
    difficulty: str = ""
    image: str = ""
    eval_script: str = ""
    log_parser: str = "parse_log_pytest"
    eval_type: str = "pass_and_fail"
    # Anything else in the row (bundled-benchmark metadata: package, tier, mutation, split...).
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_bundled(self) -> bool:
        return self.repo.startswith(BUNDLED_REPO_PREFIX)

    def to_record(self) -> dict[str, Any]:
        """The on-disk row: SWE-bench column order, test lists as JSON strings, extras last."""
        rec = asdict(self)
        extra = rec.pop("extra")
        rec["FAIL_TO_PASS"] = json.dumps(self.FAIL_TO_PASS)
        rec["PASS_TO_PASS"] = json.dumps(self.PASS_TO_PASS)
        rec.update(extra)
        return rec


BUNDLED_REPO_PREFIX = "protege-bench/"
_KNOWN = {f.name for f in fields(Task)} - {"extra"}


def _test_list(value: Any, src: str, iid: str, name: str, row: int | None) -> list[str]:
    if isinstance(value, str):
        try:
            value = _loads(value) if value.strip() else []
        except json.JSONDecodeError as exc:
            raise TaskError(src, f"not valid JSON ({exc.msg})", iid, name, row) from None
        except ValueError as exc:
            raise TaskError(src, f"not valid JSON ({exc})", iid, name, row) from None
    if hasattr(value, "tolist"):  # numpy arrays from parquet list columns
        value = value.tolist()
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise TaskError(src, "must be a list of test ids (or its JSON string)", iid, name, row)
    return value


def task_from_record(rec: dict[str, Any], source: str = "<record>", row: int | None = None) -> Task:
    """Validate one row and build a Task; raises TaskError naming source, instance and field."""
    if not isinstance(rec, dict):
        raise TaskError(source, f"expected an object, got {type(rec).__name__}", row=row)
    iid = rec.get("instance_id")
    if not isinstance(iid, str) or not iid.strip():
        raise TaskError(source, "missing or empty", None, "instance_id", row)
    if iid in (".", "..") or any(c in iid for c in "/\\") or any(ord(c) < 32 for c in iid):
        # ids name files (trajectories, grading logs): no path separators, no control characters
        raise TaskError(source, "must not contain '/', '\\' or control characters, nor be '.' or '..'",
                        iid, "instance_id", row)
    for name in REQUIRED_FIELDS:
        if name not in rec or rec[name] is None:
            raise TaskError(source, "missing", iid, name, row)
    for name in ("repo", "base_commit", "patch", "problem_statement", *OPTIONAL_STR_FIELDS):
        value = rec.get(name)
        if value is not None and not isinstance(value, str):
            raise TaskError(source, f"must be a string, got {type(value).__name__}", iid, name, row)
    if "/" not in rec["repo"]:
        raise TaskError(source, f"must look like 'owner/name', got {rec['repo']!r}", iid, "repo", row)
    if not rec["base_commit"].strip():
        raise TaskError(source, "empty", iid, "base_commit", row)
    if rec["patch"].strip() and "diff --git" not in rec["patch"] and "--- " not in rec["patch"]:
        raise TaskError(source, "is not a unified diff", iid, "patch", row)
    f2p = _test_list(rec["FAIL_TO_PASS"], source, iid, "FAIL_TO_PASS", row)
    p2p = _test_list(rec["PASS_TO_PASS"], source, iid, "PASS_TO_PASS", row)
    eval_type = rec.get("eval_type") or "pass_and_fail"
    if eval_type not in EVAL_TYPES:
        raise TaskError(source, f"must be one of {EVAL_TYPES}, got {eval_type!r}", iid, "eval_type", row)
    log_parser = rec.get("log_parser") or "parse_log_pytest"
    from swebench.harness.log_parsers import PARSER_REGISTRY  # deferred: swebench is slow to import

    if log_parser not in PARSER_REGISTRY:
        raise TaskError(source, f"unknown swebench log parser {log_parser!r}", iid, "log_parser", row)
    kwargs = {k: rec[k] for k in _KNOWN if k in rec and rec[k] is not None}
    kwargs.update(FAIL_TO_PASS=f2p, PASS_TO_PASS=p2p, eval_type=eval_type, log_parser=log_parser)
    extra = {k: v for k, v in rec.items() if k not in _KNOWN}
    return Task(**kwargs, extra=extra)


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _read_rows(path: Path, problems: list[TaskError] | None = None) -> list[Any]:
    """The rows of a task file. With `problems` (collect mode) a .jsonl line that is not valid
    JSON (a torn write) or not UTF-8 is recorded there, naming its line, and the rest is read."""
    src = str(path)
    suffix = "".join(path.suffixes[-1:]).lower()
    if suffix == ".jsonl":
        rows = []
        with path.open("rb") as fh:
            for lineno, raw in enumerate(fh, 1):
                if not raw.strip():
                    continue
                try:
                    rows.append(_loads(raw.decode("utf-8")))
                except UnicodeDecodeError as exc:
                    error = TaskError(src, f"line {lineno} is not UTF-8 (byte {exc.start})")
                except json.JSONDecodeError as exc:
                    error = TaskError(src, f"line {lineno} is not valid JSON ({exc.msg})")
                except ValueError as exc:
                    error = TaskError(src, f"line {lineno} is not valid JSON ({exc})")
                else:
                    continue
                if problems is None:
                    raise error
                problems.append(error)
        return rows
    if suffix == ".json":
        try:
            data = _loads(path.read_bytes().decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise TaskError(src, f"not UTF-8 (byte {exc.start})") from None
        except json.JSONDecodeError as exc:
            raise TaskError(src, f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
        except ValueError as exc:
            raise TaskError(src, f"not valid JSON ({exc})") from None
        if isinstance(data, dict) and isinstance(data.get("instances"), list):
            data = data["instances"]
        if not isinstance(data, list):
            raise TaskError(src, "expected a JSON list of instances (or {'instances': [...]})")
        return data
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as exc:  # pyarrow raises several types for corrupt files
            raise TaskError(src, f"cannot read parquet: {exc}") from None
        return table.to_pylist()
    raise TaskError(src, f"unsupported file type {suffix!r} (use .json, .jsonl or .parquet)")


def load_tasks(source: str | Path, split: str = "test", *, errors: Literal["raise", "collect"] = "raise",
               ) -> list[Task] | tuple[list[Task], list[TaskError]]:
    """Load and validate tasks from a file, or from a hub dataset name at full scale.

    With ``errors="collect"`` bad rows are skipped and returned beside the good ones, so a
    batch goes on; with ``"raise"`` (default) the first bad row raises. Duplicate instance
    ids are an error either way.
    """
    path = Path(source)
    problems: list[TaskError] = []
    if path.is_dir():
        raise TaskError(str(source), "is a folder, not a task file")
    if path.exists():
        rows = _read_rows(path, problems if errors == "collect" else None)
        src = str(path)
    elif isinstance(source, str) and "/" in source and not path.suffix:
        rows, src = _hub_rows(source, split), f"{source}[{split}]"
    else:
        raise TaskError(str(source), "no such file (and not a hub dataset name 'owner/name')")
    tasks, seen = [], set()
    for row, rec in enumerate(rows):
        try:
            task = task_from_record(rec, src, row)
            if task.instance_id in seen:
                raise TaskError(src, "duplicate instance id", task.instance_id, "instance_id", row)
        except TaskError as exc:
            if errors == "raise":
                raise
            problems.append(exc)
            continue
        seen.add(task.instance_id)
        tasks.append(task)
    return (tasks, problems) if errors == "collect" else tasks


def _hub_rows(name: str, split: str) -> list[dict]:
    """Full scale only: needs a reachable dataset hub (e.g. princeton-nlp/SWE-bench_Verified)."""
    from datasets import load_dataset

    return [dict(r) for r in load_dataset(name, split=split)]


def save_tasks(tasks: Iterable[Task], path: str | Path) -> Path:
    """Write tasks as .jsonl (sorted keys kept in schema order, so rebuilds are byte-identical)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for task in tasks:
            fh.write(json.dumps(task.to_record(), ensure_ascii=False) + "\n")
    return path


def select(tasks: list[Task], ids: Iterable[str] | None = None, limit: int | None = None) -> list[Task]:
    """Tasks filtered by instance ids (in the given order) and/or truncated to `limit`."""
    if ids is not None:
        by_id = {t.instance_id: t for t in tasks}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise KeyError(f"unknown instance ids: {missing[:5]}")
        tasks = [by_id[i] for i in ids]
    return tasks[:limit] if limit is not None else tasks
