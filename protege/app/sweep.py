"""A papermill sweep: one pipeline run per point of a parameter grid, each reusing the stages 01-03 of
a base run, resumable point by point, with the sweep's table, paired contrasts and figures."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from protege.app.params import (
    PRESETS,
    PipelineError,
    grid_points,
    point_id,
)
from protege.app.pipeline import execute, made_here, one_run, plan
from protege.app.records import (
    check_id,
    find_notebooks,
    normal,
    read_json,
    utc_now,
    write_json,
)
from protege.stages import figures_sweep
from protege.stages.contrasts import write_contrasts

FIGURES_NOTEBOOK = "06"  # the figures notebook: run once per sweep, not per point


UPSTREAM_STAGES = ("01", "02", "03")  # what sweep points share with --reuse-from


def _link_upstream(base_run: Path, run_dir: Path, stages: tuple[str, ...]) -> list[str]:
    """Symlink base_run's stage folders NN_* (NN in stages) into run_dir (relative links)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    linked = []
    for stage in sorted(p for p in base_run.iterdir() if p.is_dir() and p.name[:2] in stages):
        dest = run_dir / stage.name
        if not dest.exists() and not dest.is_symlink():
            dest.symlink_to(os.path.relpath(stage.resolve(), run_dir.resolve()), target_is_directory=True)
        linked.append(stage.name)
    return linked


def _check_base(root: Path, reuse_from: str, preset: str, notebooks: list[Path], stages: tuple[str, ...]) -> Path:
    base = root / "runs" / reuse_from
    if not base.is_dir() or not any(p.is_dir() and p.name[:2] in stages for p in base.iterdir()):
        raise PipelineError(f"--reuse-from {reuse_from}: {base} has no stage folder {'/'.join(stages)}_* "
                            f"(run `python -m protege.app.pipeline run --preset {preset} --run-id {reuse_from}` first)")
    pm_base = root / "papermill_runs" / reuse_from
    run = read_json(pm_base / "run.json", {})
    if run.get("preset") not in (None, preset):
        raise PipelineError(f"--reuse-from {reuse_from} was made with preset {run['preset']}, not {preset}")
    status = read_json(pm_base / "status.json", {"notebooks": {}})["notebooks"]
    unfinished = [nb.name for nb in notebooks if nb.name[:2] in stages and status.get(nb.name, {}).get("status") != "done"]
    if status and unfinished:
        raise PipelineError(f"--reuse-from {reuse_from}: {', '.join(unfinished)} not finished there")
    return base


def write_sweep_table(sweep_pm: Path) -> None:
    """sweep_metrics.csv from the points sweep.json records done (figures_sweep.sweep_table), and contrasts.csv
    (protege.stages.contrasts), rewritten with each sweep.json write so they always agree; none done: no file."""

    table = figures_sweep.sweep_table(sweep_pm)
    if table.empty:
        (sweep_pm / "sweep_metrics.csv").unlink(missing_ok=True)
    else:
        table.to_csv(sweep_pm / "sweep_metrics.csv", index=False)
    write_contrasts(sweep_pm)  # paired: each swept value against its reference (0), per pair and pooled


def _start_record(root: Path, sweep_pm: Path, definition: dict, points: list, point_nbs: list[Path],
                  force: bool) -> dict[str, Any]:
    """The sweep record to (re)start from: the points' status from an earlier run of the same sweep."""
    old = read_json(sweep_pm / "sweep.json", {})
    # Like a run's record, a committed sweep record (no point of it run on this machine) is replaced, not obeyed.
    if not any(made_here(root / p["run_dir"], [nb.name for nb in point_nbs]) for p in old.get("points", [])
               if p.get("run_dir")):
        old = {}
    if old and any(old.get(k) != v for k, v in definition.items()) and not force:
        raise PipelineError(f"{sweep_pm / 'sweep.json'} defines another sweep ({ {k: old.get(k) for k in definition} });"
                            " use another sweep id, or force")
    done, sweep_id = {p["id"]: p for p in old.get("points", [])}, definition["sweep_id"]
    return {**definition, "notebooks": [nb.name for nb in point_nbs], "started": old.get("started") or utc_now(),
              "finished": None, "points": [{"id": pid, "params": normal(p), "run_dir": f"runs/{sweep_id}/{pid}",
                                            "status": done.get(pid, {}).get("status", "pending"),
                                            "wall_s": done.get(pid, {}).get("wall_s")} for pid, p in points]}


def run_sweep(preset: str, grid: dict[str, list[Any]], sweep_id: str, base_params: dict[str, Any] | None = None,
              notebooks: list[str] | None = None, reuse_from: str | None = None, root: str | Path = ".", *,
              reuse_stages: tuple[str, ...] = UPSTREAM_STAGES, keep_going: bool = False, force: bool = False,
              progress: bool = True, figures_dir: str | Path | None = "figures") -> dict[str, Any]:
    """A papermill grid: one run per point of `grid` (every combination), each in
    root/papermill_runs/<sweep-id>/<point-id>/ with artifacts in root/runs/<sweep-id>/<point-id>/,
    resumable point by point. With `reuse_from` (a run id), each point's run folder starts with
    symlinks to that run's stage folders 01-03 (`reuse_stages`) and only the later notebooks run.
    The figures notebook (06) is not run per point but once over the sweep, after
    sweep_metrics.csv and the sweep figures are written. A point's notebooks get
    ``run_id = "<sweep-id>_<point-id>"`` (file-name safe); its run.json says "<sweep-id>/<point-id>".
    Returns the sweep record (sweep.json)."""
    from tqdm import tqdm

    if preset not in PRESETS:
        raise PipelineError(f"preset {preset!r}: one of {', '.join(PRESETS)}")
    root, sweep_id = Path(root), check_id("sweep id", sweep_id)
    base_params = dict(base_params or {})
    points = [(point_id(p), p) for p in grid_points(grid)]
    if len({pid for pid, _ in points}) != len(points):
        raise PipelineError(f"grid {grid} gives the same point id twice")
    nbs = find_notebooks(root, notebooks)
    fig_nbs = [nb for nb in nbs if nb.name[:2] == FIGURES_NOTEBOOK]
    point_nbs = [nb for nb in nbs if nb not in fig_nbs and not (reuse_from and nb.name[:2] in reuse_stages)]
    if not point_nbs:
        raise PipelineError(f"no notebook left to run per point (found {', '.join(p.name for p in nbs)})")
    base_run = _check_base(root, reuse_from, preset, nbs, reuse_stages) if reuse_from else None
    sweep_pm = root / "papermill_runs" / sweep_id
    plans = {pid: plan(point_nbs, {"preset": preset, "run_dir": f"runs/{sweep_id}/{pid}",
                                   "run_id": f"{sweep_id}_{pid}"}, {**base_params, **p}) for pid, p in points}
    definition = {"sweep_id": sweep_id, "preset": preset, "grid": normal(grid), "base_params": normal(base_params),
                  "reuse_from": reuse_from, "reuse_stages": list(reuse_stages) if reuse_from else []}
    record = _start_record(root, sweep_pm, definition, points, point_nbs, force)
    write_json(sweep_pm / "sweep.json", record)
    write_sweep_table(sweep_pm)  # a replaced committed record's table goes with it
    failed = []
    for entry in tqdm(record["points"], desc=f"sweep {sweep_id}", unit="point", disable=not progress):
        pid = entry["id"]
        if base_run is not None:
            _link_upstream(base_run, root / entry["run_dir"], reuse_stages)
        try:
            run = one_run(root, f"{sweep_id}/{pid}", preset, point_nbs, {**base_params, **entry["params"]},
                           sweep_pm / pid, entry["run_dir"], {}, force=force, progress=progress,
                           extra={"sweep_id": sweep_id, "point": pid, "reuse_from": reuse_from}, steps=plans[pid])
            entry.update(status="done", wall_s=run["total_wall_s"])
            entry.pop("error", None)
        except PipelineError as exc:
            entry.update(status="failed", error=str(exc))
            failed.append(f"{pid}: {exc}")
            if not keep_going:
                raise
        finally:
            write_json(sweep_pm / "sweep.json", record)
            write_sweep_table(sweep_pm)  # after each point, so an interrupted sweep's table is its own
    made = figures_sweep.figures_for_sweep(sweep_pm, root / figures_dir, sweep_id) if figures_dir is not None else []
    record["figures"] = [p.relative_to(root).as_posix() if p.is_relative_to(root) else str(p) for p in made]
    if fig_nbs:  # the figures notebook over the whole sweep (seconds; always re-run: points may have changed)
        steps = plan(fig_nbs, {"preset": preset, "run_dir": f"runs/{sweep_id}", "run_id": sweep_id,
                               "sweep_dir": f"papermill_runs/{sweep_id}"}, {})
        execute(steps, sweep_pm, root, force=True, progress=progress, desc=f"{sweep_id} figures")
    record["finished"] = utc_now()
    write_json(sweep_pm / "sweep.json", record)
    if failed:
        raise PipelineError(f"{len(failed)} sweep point(s) failed:\n" + "\n".join(failed))
    return record
