"""Paired contrasts between the points of a sweep: what changing one swept value did, task by task.

A sweep point differs from another in its swept values only; both evaluated the same held-out
tasks, so "what did lambda_loop = 0.3 change against lambda_loop = 0?" is a paired question:
for each pair of points that differ in that one key (everything else, the training seed
included, the same), B - A over the tasks with a bootstrap interval and the exact sign test
(`protege.core.metrics.paired_difference`), per condition and metric; and pooled over the pairs
(each (pair, task) one unit), which is how two training seeds are combined.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from protege.core.metrics import paired_difference
from protege.stages.figures_sweep import finished_points

# per_instance.csv columns compared (0/1 or counts per task)
CONTRAST_METRICS = ("resolved", "loop", "repeats", "expert_calls", "format_errors", "steps")
CONTRAST_COLUMNS = ("key", "value", "reference", "pair", "condition", "metric", "n", "a", "b", "diff", "lo", "hi",
                    "b_better", "a_better", "p_sign")


def reference_value(values: list[Any]) -> Any:
    """What a swept value is compared against: 0 when swept (no penalty), else the first value.

    >>> reference_value([0.3, 0, 0.1]), reference_value(["a", "b"])
    (0, 'a')
    """
    return next((v for v in values if v == 0 and not isinstance(v, bool)), values[0])


def pairs(points: list[dict[str, Any]], key: str, reference: Any) -> list[tuple[dict, dict]]:
    """(reference point, point) for every point whose `key` differs from `reference` and whose other
    swept values equal the reference point's.

    >>> pts = [{"id": f"{a}{s}", "params": {"a": a, "seed": s}} for a in (0, 1) for s in (0, 1)]
    >>> [(r["id"], p["id"]) for r, p in pairs(pts, "a", 0)]
    [('00', '10'), ('01', '11')]
    """
    out = []
    for point in points:
        params = point["params"]
        if params.get(key) == reference:
            continue
        rest = {k: v for k, v in params.items() if k != key}
        ref = next((r for r in points if r["params"].get(key) == reference
                    and {k: v for k, v in r["params"].items() if k != key} == rest), None)
        if ref is not None:
            out.append((ref, point))
    return out


def _values(rows: list[dict[str, str]], condition: str, metric: str, unit: str = "") -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for r in rows:
        if r["condition"] == condition and r.get(metric, "") not in ("", None):
            out.setdefault(unit + r["instance_id"], []).append(float(r[metric]))
    return out


def _read_per_instance(point_dir: Path) -> list[dict[str, str]]:
    import csv

    path = point_dir / "results" / "05_eval" / "per_instance.csv"
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def sweep_contrasts(sweep_dir: str | Path, n_boot: int = 2000) -> list[dict[str, Any]]:
    """Every swept key against its reference value (`reference_value`), per pair of points and
    pooled over pairs, for each condition both points ran and each metric of CONTRAST_METRICS."""

    sweep_dir = Path(sweep_dir)
    grid = json.loads((sweep_dir / "sweep.json").read_text(encoding="utf-8"))["grid"]
    points = finished_points(sweep_dir)
    rows = {p["id"]: _read_per_instance(sweep_dir / p["id"]) for p in points}
    out: list[dict[str, Any]] = []
    for key, values in grid.items():
        ref = reference_value(values)
        matched = pairs(points, key, ref)
        for value in [v for v in values if v != ref]:
            chosen = [(a, b) for a, b in matched if b["params"][key] == value]
            conditions = sorted({r["condition"] for a, b in chosen for r in rows[a["id"]]}
                                & {r["condition"] for a, b in chosen for r in rows[b["id"]]})
            for condition in conditions:
                for metric in CONTRAST_METRICS:
                    pooled_a: dict[str, list[float]] = {}
                    pooled_b: dict[str, list[float]] = {}
                    for a, b in chosen:
                        rest = ",".join(f"{k}={v}" for k, v in b["params"].items() if k != key) or "-"
                        va, vb = _values(rows[a["id"]], condition, metric), _values(rows[b["id"]], condition, metric)
                        if not va or not vb:
                            continue
                        out.append({"key": key, "value": value, "reference": ref, "pair": rest, "condition": condition,
                                    "metric": metric, **paired_difference(va, vb, n_boot=n_boot)})
                        pooled_a.update(_values(rows[a["id"]], condition, metric, rest + "/"))
                        pooled_b.update(_values(rows[b["id"]], condition, metric, rest + "/"))
                    if len(chosen) > 1 and pooled_a:
                        out.append({"key": key, "value": value, "reference": ref, "pair": "pooled",
                                    "condition": condition, "metric": metric,
                                    **paired_difference(pooled_a, pooled_b, n_boot=n_boot)})
    return out


def write_contrasts(sweep_dir: str | Path) -> Path | None:
    """<sweep_dir>/contrasts.csv from `sweep_contrasts`; None (and no file) when nothing pairs."""
    import csv

    sweep_dir = Path(sweep_dir)
    rows = sweep_contrasts(sweep_dir)
    path = sweep_dir / "contrasts.csv"
    if not rows:
        path.unlink(missing_ok=True)
        return None
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, CONTRAST_COLUMNS)
        writer.writeheader()
        writer.writerows({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()} for r in rows)
    return path
