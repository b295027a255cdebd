"""Does local grading agree with SWE-bench? Gold patches must resolve, empty patches must not.

`validate_local` grades the gold and the empty patch of a sample of instances with the
swebench-local runner (every instance of some repositories, N per (repo, version) of the
rest), one CSV row per grading, appended as it finishes so a rerun resumes; `summary_table`
puts them per (repo, version): resolved gold, unresolved empty, errors with their reasons,
network-only verdicts, median seconds. `docs/SWEBENCH_LOCAL.md` holds the table and the
command that made it.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from protege.core.csv_rows import resumable_rows
from protege.core.text import markdown_table
from protege.env.base import EnvConfig
from protege.env.swebench_local import grade_local
from protege.tasks.schema import Task

FIELDS = ["key", "instance_id", "repo", "version", "patch", "outcome", "resolved", "expected", "python",
          "env_s", "copy_s", "install_s", "total_s", "network_tests", "error", "notes"]
KINDS = ("gold", "empty")


def sample(tasks: list[Task], per_version: int = 1, every: set[str] | frozenset[str] = frozenset()) -> list[Task]:
    """All instances of the repositories in `every`, the first `per_version` (by instance id) of
    each (repo, version) of the others.

    >>> ts = [Task(f"r__r-{i}", "o/r", "c", "", "", [], [], version=v) for i, v in enumerate("aab")]
    >>> [t.instance_id for t in sample(ts)], len(sample(ts, every={"o/r"}))
    (['r__r-0', 'r__r-2'], 3)
    """
    groups: dict[tuple[str, str], list[Task]] = defaultdict(list)
    for t in sorted(tasks, key=lambda t: t.instance_id):
        groups[(t.repo, t.version)].append(t)
    return [t for (repo, _), ts in sorted(groups.items()) for t in (ts if repo in every else ts[:per_version])]


def expected(kind: str, outcome: str) -> bool:
    """Whether a grading agrees with SWE-bench: gold resolves, empty does not (an error never agrees).

    >>> expected("gold", "resolved"), expected("empty", "unresolved"), expected("empty", "error")
    (True, True, False)
    """
    return outcome == "resolved" if kind == "gold" else outcome == "unresolved"


def grade_row(task: Task, kind: str, env_config: EnvConfig | None, log_dir: Path | None,
              python_fallback: bool = False) -> dict[str, Any]:
    patch = task.patch if kind == "gold" else ""
    report = grade_local(task, patch, env_config, log_dir=log_dir / kind if log_dir else None, model_name=kind,
                         python_fallback=python_fallback)
    t = report.timings
    return {"key": f"{task.instance_id}/{kind}", "instance_id": task.instance_id, "repo": task.repo,
            "version": task.version, "patch": kind, "outcome": report.outcome, "resolved": report.resolved,
            "expected": expected(kind, report.outcome), "python": report.python_version or "",
            **{k: t.get(k, "") for k in ("env_s", "copy_s", "install_s", "total_s")},
            "network_tests": json.dumps(report.network_tests) if report.network_tests else "",
            "error": reason(report.error),
            "notes": " | ".join(report.notes)}


def reason(error: str | None) -> str:
    """The line of an error that says why: pip's or Python's last error line, else the last line
    that is not an exit code or a notice.

    >>> reason("building failed:\\nERROR: No matching distribution found for cdms2\\n[notice] pip\\n[exit code 1]")
    'ERROR: No matching distribution found for cdms2'
    """
    lines = [ln.strip() for ln in (error or "").splitlines() if ln.strip()]
    useful = [ln for ln in lines if not re.match(r"\[exit code|\[notice\]|You (are using|should consider)", ln)]
    errors = [ln for ln in useful if re.match(r"(ERROR|E  |\w+Error\b|\w+Exception\b)", ln)]
    return ((errors or useful or [""])[-1])[:300]


def validate_local(tasks: list[Task], out: Path, env_config: EnvConfig | None = None, workers: int = 2,
                   log_dir: Path | None = None, python_fallback: bool = False,
                   progress: bool = True) -> list[dict[str, Any]]:
    """Gold and empty for every task (rows not yet in `out`), in parallel; all rows."""
    items = [(t, kind) for t in tasks for kind in KINDS]
    return resumable_rows(items, lambda it: f"{it[0].instance_id}/{it[1]}",
                          lambda it: grade_row(it[0], it[1], env_config, log_dir, python_fallback),
                          out, FIELDS, workers=workers, desc="validate-local", progress=progress)


def summary_table(rows: list[dict[str, Any]]):
    """Per (repo, version): instances, gold resolved, empty unresolved, errors, network-only
    verdicts, gradings that set network tests aside (failing the same way under gold), the median seconds of a grading with a warm cache (its total less the time spent
    building, or waiting for, the shared environment) and the build's seconds."""
    import pandas as pd

    df = pd.DataFrame(rows)
    for col in ("env_s", "total_s"):
        df[col] = pd.to_numeric(df[col], errors="coerce")
    df["ok"] = df["expected"].astype(str).str.lower() == "true"
    df["error"] = df["error"].fillna("").astype(str)
    gold, empty = df[df.patch == "gold"], df[df.patch == "empty"]
    keys = ["repo", "version"]
    table = gold.groupby(keys).agg(instances=("instance_id", "count"), gold_resolved=("ok", "sum"),
                                   python=("python", "first")).join(
        empty.groupby(keys).agg(empty_unresolved=("ok", "sum"))).join(
        df.groupby(keys).agg(errors=("outcome", lambda s: int((s == "error").sum())),
                             network=("outcome", lambda s: int((s == "network").sum())),
                             net_set_aside=("network_tests", lambda s: int(s.fillna("").astype(bool).sum())))).join(
        df.assign(warm_s=df.total_s - df.env_s).groupby(keys).agg(median_s=("warm_s", "median"),
                                                                   build_s=("env_s", "max")))
    return table.reset_index().fillna({"empty_unresolved": 0})


def problems(rows: list[dict[str, Any]]) -> list[str]:
    """One line per grading that disagrees with SWE-bench, with its outcome and reason."""
    return [f"{r['instance_id']} {r['patch']}: {r['outcome']}" + (f" ({r['error']})" if r.get("error") else "")
            for r in rows if str(r["expected"]).lower() != "true"]


def totals(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Counts over all rows: gold resolved of gold graded and of gold with a verdict (not
    `network`: every FAIL_TO_PASS test needs the internet), empty unresolved, errors."""
    gold = [r for r in rows if r["patch"] == "gold"]
    empty = [r for r in rows if r["patch"] == "empty"]
    return {"gold": len(gold), "gold_resolved": sum(r["outcome"] == "resolved" for r in gold),
            "gold_verdict": sum(r["outcome"] != "network" for r in gold),
            "empty": len(empty), "empty_unresolved": sum(r["outcome"] == "unresolved" for r in empty),
            "empty_resolved": sum(r["outcome"] == "resolved" for r in empty),
            "errors": sum(r["outcome"] == "error" for r in rows),
            "network": sum(r["outcome"] == "network" for r in rows)}


def markdown_report(rows: list[dict[str, Any]]) -> str:
    """The per-(repo, version) table, the totals and every disagreement, as markdown."""
    table = summary_table(rows)
    cols = ["repo", "version", "python", "instances", "gold_resolved", "empty_unresolved", "errors", "network",
            "net_set_aside", "median_s", "build_s"]
    t = totals(rows)
    share = 100 * t["gold_resolved"] / max(1, t["gold_verdict"])
    lines = [markdown_table(cols, table[cols].values.tolist()), "",
             f"Gold resolved {t['gold_resolved']}/{t['gold']} ({t['gold_resolved']}/{t['gold_verdict']} = "
             f"{share:.1f}% of those with a verdict); empty unresolved {t['empty_unresolved']}/{t['empty']} "
             f"(resolved: {t['empty_resolved']}); errors {t['errors']}; no verdict (network) {t['network']}.", ""]
    lines += [f"- {line}" for line in problems(rows)]
    return "\n".join(lines)
