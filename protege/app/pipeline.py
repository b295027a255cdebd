"""The pipeline: the numbered notebooks executed in order with papermill, resumable; grids
(sweeps) over their parameters; every figure regenerated from the recorded results alone.

Folders (``root`` = the checkout)::

    notebooks/NN_name.ipynb                 committed, output-free, first code cell tagged `parameters`
    runs/<run-id>/NN_stage/                 a run's artifacts (gitignored): models, trajectories, datasets
    papermill_runs/<run-id>/
        NN_name.ipynb                       executed copy (kept when it fails: the error is in it)
        status.json                         per notebook: done | failed | running, wall time, parameters, versions
        run.json                            preset, params, start / end, wall times, git commit, machine
        results/NN_stage/...                the small result files of runs/<run-id>/ (RESULT_FILES)
    papermill_runs/<sweep-id>/
        sweep.json                          the grid and its points (id, parameters, status)
        sweep_metrics.csv                   one row per finished point (figures_sweep.sweep_table)
        NN_figures.ipynb                    the figures notebook run once over the whole sweep
        <point-id>/                         one run per point, laid out as papermill_runs/<run-id>/
    figures/<run-id>_<figure>.png           figures.figures_for_run of each run's results/
    figures/<sweep-id>_sweep_<figure>.png   figures_sweep.figures_for_sweep of each sweep

Each notebook gets ``preset`` and ``run_dir`` (``runs/<run-id>``, relative to ``root``, where
it is executed), ``run_id`` / ``sweep_dir`` when it declares them, and those of the extra
parameters its `parameters` cell declares; a parameter that no executed notebook declares is an
error (papermill would only warn). ``key=value`` goes to every notebook declaring ``key``;
``NN:key=value`` only to notebook NN; ``key.sub=value`` sets one entry of a dict parameter
(``04:overrides.beta=0.05``).

A re-run of the same run id skips the notebooks that finished (with the same parameters; other
parameters are an error unless ``force``) and re-executes the failed or unfinished one; the
stages resume their own work inside ``runs/<run-id>/``.

CLI::

    protege pipeline run --preset smoke [--run-id ID] [-p key=value ...] [--notebooks 01,02]
    protege pipeline sweep --preset small --grid lambda_loop=0,0.2 --grid lambda_collab=0,0.2 \\
        --sweep-id ID [--reuse-from RUN] [-p key=value ...]
    protege pipeline figures [--papermill-runs papermill_runs] [--figures-dir figures]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from protege.app.params import (
    AUTO_PARAMETERS,
    PRESETS,
    PipelineError,
    declared_parameters,
    route_parameters,
)
from protege.app.records import (
    NOTEBOOK_GLOB,
    check_id,
    collect_results,
    find_notebooks,
    git_commit,
    machine,
    normal,
    read_json,
    utc_now,
    versions,
    write_json,
)
from protege.app.viewer import link_report
from protege.stages import figures, figures_sweep

# ------------------------------------------------------------------------------ parameters


# ------------------------------------------------------------------------------- records


# ------------------------------------------------------------------------------- execution


def plan(notebooks: list[Path], auto: dict[str, Any], params: dict[str, Any]) -> list[tuple[Path, dict[str, Any]]]:
    """Each notebook with the parameters it gets: the pipeline's own (`auto`, where declared)
    and the declared ones of `params`. A key of `params` that no notebook uses is an error."""
    if clash := sorted(k for k in params if (k.partition(":")[2] if ":" in k else k).partition(".")[0]
                       in AUTO_PARAMETERS):
        raise PipelineError(f"{', '.join(clash)}: set by the pipeline itself (use --preset / --run-id)")
    out, used = [], set()
    for nb in notebooks:
        declared = declared_parameters(nb)
        routed, keys = route_parameters(declared, nb.stem, params)
        used.update(keys)
        out.append((nb, {**{k: v for k, v in auto.items() if k in declared}, **routed}))
    if unused := sorted(set(params) - used):
        raise PipelineError(f"parameter(s) {', '.join(unused)} declared by none of "
                            f"{', '.join(nb.name for nb in notebooks) or 'the (no) notebooks'}; "
                            "see their `parameters` cells (NN:key targets one notebook)")
    return out


def stage_marker(run_dir: Path, notebook: str) -> Path:
    """The file that says a notebook finished *on this machine*: it lives in the (gitignored) run
    folder beside the stage's artifacts, so a committed papermill record never stands in for them."""
    return run_dir / ".pipeline" / f"{notebook}.done"


def made_here(run_dir: Path, notebooks) -> bool:
    """Whether any of `notebooks` finished in `run_dir` on this machine (a committed record alone: False)."""
    return any(stage_marker(run_dir, name).exists() for name in notebooks)


def execute(steps: list[tuple[Path, dict[str, Any]]], pm_dir: Path, root: Path, *, force: bool = False,
            progress: bool = True, desc: str = "", run_dir: Path | None = None,
            reuse_records: bool = False) -> dict[str, Any]:
    """Execute the planned notebooks in order into pm_dir, resumably (pm_dir/status.json).
    A notebook recorded done is skipped only when its marker is in `run_dir` (its artifacts
    were made here), or with `reuse_records` (trust the record alone, e.g. a committed run).
    Raises PipelineError naming the notebook that failed; its executed copy keeps the error."""
    import papermill as pm
    from tqdm import tqdm

    status_path = pm_dir / "status.json"
    status = read_json(status_path, {"notebooks": {}})

    def finished_here(name: str) -> bool:
        return reuse_records or run_dir is None or stage_marker(run_dir, name).exists()

    for nb, params in steps:
        entry = status["notebooks"].get(nb.name, {})
        if entry.get("status") == "done" and not finished_here(nb.name):
            # A record from elsewhere (e.g. the committed reference run): run the notebook again.
            status["notebooks"][nb.name] = {**entry, "status": "recorded elsewhere"}
            continue
        if entry.get("status") == "done" and entry.get("parameters") != normal(params) and not force:
            raise PipelineError(f"{pm_dir / nb.name} finished with parameters {entry.get('parameters')}, now "
                                f"{normal(params)}: use another run id, or force to re-execute")
    bar = tqdm(total=len(steps), desc=desc or pm_dir.name, unit="notebook", disable=not progress)
    try:
        for nb, params in steps:
            entry = status["notebooks"].get(nb.name, {})
            bar.set_postfix_str(nb.name)
            if entry.get("status") == "done" and not force:
                bar.update()
                continue
            out = pm_dir / nb.name
            status["notebooks"][nb.name] = entry = {"status": "running", "started": utc_now(), "output": nb.name,
                                                    "parameters": normal(params), **versions()}
            write_json(status_path, status)
            start = time.monotonic()
            try:
                pm.execute_notebook(str(nb), str(out), parameters=params, kernel_name="python3", cwd=str(root),
                                    progress_bar=False, log_output=False, stdout_file=sys.stdout)
            except Exception as exc:  # recorded, then re-raised with the notebook named
                entry.update(status="failed", wall_s=round(time.monotonic() - start, 2), finished=utc_now(),
                             error=f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}")
                write_json(status_path, status)
                raise PipelineError(f"notebook {nb.name} failed ({entry['error']}); the executed notebook with "
                                    f"the error: {out}. Fix it and re-run the same command: finished notebooks "
                                    "are skipped.") from exc
            entry.update(status="done", wall_s=round(time.monotonic() - start, 2), finished=utc_now())
            entry.pop("error", None)
            write_json(status_path, status)
            if run_dir is not None:
                write_json(stage_marker(run_dir, nb.name), {"parameters": entry["parameters"],
                                                             "finished": entry["finished"]})
            if progress:
                tqdm.write(f"{desc or pm_dir.name}: {nb.name} done in {entry['wall_s']:.0f} s")
            bar.update()
    finally:
        bar.close()
    return status


def _write_run_json(pm_dir: Path, root: Path, run_id: str, preset: str, params: dict[str, Any], run_dir_rel: str,
                    state: str, extra: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
    """Write pm_dir/run.json; `previous` is the record as it stood before this run's "running" write."""
    old = read_json(pm_dir / "run.json", {})
    status = read_json(pm_dir / "status.json", {"notebooks": {}})
    wall = {name: e.get("wall_s") for name, e in status["notebooks"].items()}
    # The start carries over only for a run resumed here: a committed record's start is not this run's.
    here = made_here(root / run_dir_rel, status["notebooks"])
    # A re-run that executed nothing (everything done here already) keeps the record's finish time and
    # provenance: the commit and machine that made the stages, not the ones that found them done.
    finishes = [e["finished"] for e in status["notebooks"].values() if e.get("finished")]
    idle = (state == "done" and here and bool(previous.get("finished")) and bool(finishes)
            and max(finishes) <= previous["finished"])
    record = {"run_id": run_id, "preset": preset, "params": normal(params), "run_dir": run_dir_rel,
              "papermill_dir": pm_dir.relative_to(root).as_posix() if pm_dir.is_relative_to(root) else str(pm_dir),
              "status": state, "notebooks": {n: e.get("status") for n, e in status["notebooks"].items()},
              "started": (old.get("started") if here else None) or utc_now(),
              "finished": utc_now() if state != "running" else None,
              "wall_s": wall, "total_wall_s": round(sum(w or 0 for w in wall.values()), 2),
              "git_commit": git_commit(root), "machine": machine(), "versions": versions(), **extra}
    if idle:
        record.update({k: previous[k] for k in ("started", "finished", "git_commit", "machine", "versions")
                       if k in previous})
    write_json(pm_dir / "run.json", record)
    return record


def one_run(root: Path, run_id: str, preset: str, notebooks: list[Path], params: dict[str, Any], pm_dir: Path,
             run_dir_rel: str, auto_extra: dict[str, Any], *, force: bool, progress: bool,
             extra: dict[str, Any] | None = None, steps: list | None = None,
             reuse_records: bool = False) -> dict[str, Any]:
    steps = steps if steps is not None else plan(notebooks, {"preset": preset, "run_dir": run_dir_rel, **auto_extra},
                                                 params)
    pm_dir.mkdir(parents=True, exist_ok=True)
    previous = read_json(pm_dir / "run.json", {})
    _write_run_json(pm_dir, root, run_id, preset, params, run_dir_rel, "running", extra or {}, previous)
    state = "failed"
    try:
        execute(steps, pm_dir, root, force=force, progress=progress, desc=run_id, run_dir=root / run_dir_rel,
                reuse_records=reuse_records)
        state = "done"
    finally:
        copied, too_large = collect_results(root / run_dir_rel, pm_dir / "results")
        record = _write_run_json(pm_dir, root, run_id, preset, params, run_dir_rel, state,
                                 {**(extra or {}), "results": copied, "results_too_large": too_large}, previous)
    return record


def run_pipeline(preset: str, run_id: str | None = None, params: dict[str, Any] | None = None,
                 notebooks: list[str] | None = None, root: str | Path = ".", *, force: bool = False,
                 progress: bool = True, figures_dir: str | Path | None = "figures",
                 reuse_records: bool = False) -> dict[str, Any]:
    """Execute the numbered notebooks (all, or those in `notebooks`) of root/notebooks in order
    into root/papermill_runs/<run-id>/, artifacts in root/runs/<run-id>/ (run id default: the
    preset), resumably; copy the small results and make the run's figures in root/<figures_dir>
    (None: no figures). A notebook is skipped only when it finished on this machine
    (`stage_marker`), or with `reuse_records`. Returns the run record (run.json)."""
    if preset not in PRESETS:
        raise PipelineError(f"preset {preset!r}: one of {', '.join(PRESETS)}")
    root = Path(root)
    run_id = check_id("run id", run_id or preset)
    nbs = find_notebooks(root, notebooks)
    if not nbs:
        raise PipelineError(f"no notebooks matching {NOTEBOOK_GLOB} in {root / 'notebooks'}")
    pm_dir = root / "papermill_runs" / run_id
    record = one_run(root, run_id, preset, nbs, dict(params or {}), pm_dir, f"runs/{run_id}", {"run_id": run_id},
                      force=force, progress=progress, reuse_records=reuse_records)
    if (root / "runs" / run_id).is_dir():  # the episodes of every stage, in the browser

        record["report"] = link_report(root / "runs" / run_id, pm_dir)
        write_json(pm_dir / "run.json", record)
    if figures_dir is not None:

        made = figures.figures_for_run(pm_dir / "results", root / figures_dir, run_id)
        record["figures"] = [p.relative_to(root).as_posix() if p.is_relative_to(root) else str(p) for p in made]
        write_json(pm_dir / "run.json", record)
    return record


# ----------------------------------------------------------------------------------- sweeps


# ---------------------------------------------------------------------------------- figures


def regenerate_figures(papermill_runs: str | Path = "papermill_runs", figures_dir: str | Path = "figures") -> list[Path]:
    """Every figure of every recorded run (papermill_runs/<run>/results) and sweep
    (papermill_runs/<sweep>/sweep.json) into figures_dir, from those records only: no model,
    no runs/ folder; the same records give byte-identical files."""

    made: list[Path] = []
    if not Path(papermill_runs).is_dir():
        return made
    for folder in sorted(p for p in Path(papermill_runs).iterdir() if p.is_dir()):
        if (folder / "sweep.json").exists():
            made += figures_sweep.figures_for_sweep(folder, figures_dir, folder.name)
        elif (folder / "results").is_dir():
            made += figures.figures_for_run(folder / "results", figures_dir, folder.name)
    return made


# -------------------------------------------------------------------------------------- CLI


