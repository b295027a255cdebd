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
        sweep_metrics.csv                   one row per finished point (figures.sweep_table)
        NN_figures.ipynb                    the figures notebook run once over the whole sweep
        <point-id>/                         one run per point, laid out as papermill_runs/<run-id>/
    figures/<run-id>_<figure>.png           figures.figures_for_run of each run's results/
    figures/<sweep-id>_sweep_<figure>.png   figures.figures_for_sweep of each sweep

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

import ast
import copy
import itertools
import json
import os
import platform
import re
import shutil
import sys
import time
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import typer

from protege import __version__
from protege.app.viewer import link_report
from protege.core.config import parse_assignments as parse
from protege.core.config import parse_value
from protege.core.trajectory import atomic_write, plain
from protege.stages import figures
from protege.stages.contrasts import write_contrasts

PRESETS = ("smoke", "small", "full")
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
# Small result files copied from runs/<run-id>/<stage>/ to papermill_runs/<run-id>/results/<stage>/.
RESULT_FILES = ("config.json", "metrics.json", "metrics.csv", "per_instance.csv", "steps.csv", "stats.csv",
                "stats_table.csv", "train_log.csv", "data_stats.json", "metrics_by_tier.csv", "metrics_by_mutation.csv",
                "paired.csv", "before_after.csv")
MAX_RESULT_BYTES = 20 * 2**20  # a result file larger than this stays in runs/ only (listed in run.json)
FIGURES_NOTEBOOK = "06"  # the figures notebook: run once per sweep, not per point
UPSTREAM_STAGES = ("01", "02", "03")  # what sweep points share with --reuse-from
AUTO_PARAMETERS = ("preset", "run_dir", "run_id", "sweep_dir")  # set by the pipeline, never by -p
_ID_RE = re.compile(r"^[A-Za-z0-9_.+=,-]+$")


class PipelineError(RuntimeError):
    """A notebook failed, or the pipeline was asked for something inconsistent."""


# ------------------------------------------------------------------------------ parameters


def parse_assignments(items: list[str] | None) -> dict[str, Any]:
    """``key=value`` strings (values through `parse_value`).

    >>> parse_assignments(["lambda_loop=0.2", "04:overrides.beta=0.05", "model=smollm2-135m"])
    {'lambda_loop': 0.2, '04:overrides.beta': 0.05, 'model': 'smollm2-135m'}
    """

    try:
        return parse(items, flag="--param")
    except ValueError as exc:
        raise PipelineError(str(exc)) from None


def parse_grid(items: list[str] | None) -> dict[str, list[Any]]:
    """``key=v1,v2,...`` strings into a grid (scalar values; comma-separated).

    >>> parse_grid(["lambda_loop=0,0.2", "lambda_collab=0.05"])
    {'lambda_loop': [0, 0.2], 'lambda_collab': [0.05]}
    """
    grid: dict[str, list[Any]] = {}
    for item in items or []:
        key, sep, values = item.partition("=")
        if not sep or not values.strip():
            raise PipelineError(f"expected key=v1,v2,..., got {item!r}")
        grid[key.strip()] = [parse_value(v.strip()) for v in values.split(",")]
    return grid


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, the last key varying fastest.

    >>> grid_points({"a": [0, 1], "b": ["x", "y"]})
    [{'a': 0, 'b': 'x'}, {'a': 0, 'b': 'y'}, {'a': 1, 'b': 'x'}, {'a': 1, 'b': 'y'}]
    """
    if not grid or any(not isinstance(v, (list, tuple)) or not v for v in grid.values()):
        raise PipelineError(f"a sweep grid needs at least one parameter, each with a non-empty list: {grid}")
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:g}"
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def point_id(params: dict[str, Any]) -> str:
    """Folder name of a sweep point: ``key=value`` joined by commas, other characters as ``_``.

    >>> point_id({"lambda_loop": 0.2, "lambda_collab": 0.0})
    'lambda_loop=0.2,lambda_collab=0'
    >>> point_id({"04:overrides.beta": 0.05, "model": "a/b c"})
    '04_overrides.beta=0.05,model=a_b_c'
    """
    text = ",".join(f"{k}={_fmt(v)}" for k, v in params.items())
    return re.sub(r"[^A-Za-z0-9_.+=,-]", "_", text)


def declared_parameters(notebook: str | Path) -> dict[str, Any]:
    """Names assigned in the notebook's `parameters` cell, with their defaults (None when a
    default is not a literal); {} without such a cell."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    cell = next((c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])), None)
    if cell is None:
        return {}
    try:
        tree = ast.parse(cell.source)
    except SyntaxError:  # IPython syntax in the cell: fall back on papermill's own reading
        import papermill as pm

        return dict.fromkeys(pm.inspect_notebook(str(notebook)))
    out: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            names, value = [t.id for t in node.targets if isinstance(t, ast.Name)], node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            names, value = [node.target.id], node.value
        else:
            continue
        try:
            default = ast.literal_eval(value)
        except (ValueError, SyntaxError, TypeError):
            default = None
        out.update(dict.fromkeys(names, default))
    return out


def _targets(key: str, notebook: str) -> str | None:
    """The parameter path a key sets in this notebook (stem such as "04_rl"), or None."""
    target, sep, name = key.partition(":")
    if not sep:
        return key
    if notebook == target or notebook.split("_", 1)[0] == target:
        return name
    return None


def route_parameters(declared: dict[str, Any], notebook: str, params: dict[str, Any]) -> tuple[dict[str, Any], list]:
    """The parameters one notebook gets from `params`, and the keys it used.

    >>> declared = {"preset": "smoke", "overrides": {"epochs": 1}, "lr": 1e-4}
    >>> route_parameters(declared, "03_sft", {"lr": 0.1, "overrides.seed": 2, "04:overrides.beta": 0.1, "x": 1})
    ({'lr': 0.1, 'overrides': {'epochs': 1, 'seed': 2}}, ['lr', 'overrides.seed'])
    >>> route_parameters(declared, "04_rl", {"04:overrides.beta": 0.1})
    ({'overrides': {'epochs': 1, 'beta': 0.1}}, ['04:overrides.beta'])
    """
    out: dict[str, Any] = {}
    used = []
    # whole values first, then dotted entries into them
    for key in sorted(params, key=lambda k: "." in (_targets(k, notebook) or "")):
        path = _targets(key, notebook)
        if path is None:
            continue
        base, _, rest = path.partition(".")
        if base not in declared:
            continue
        if rest:
            current = copy.deepcopy(out.get(base, declared[base]))
            if not isinstance(current, dict):
                raise PipelineError(f"{notebook}: {key} sets an entry of {base}, whose default is not a dict")
            node = current
            *parents, leaf = rest.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = params[key]
            out[base] = current
        else:
            out[base] = params[key]
        used.append(key)
    return out, sorted(used)


# ------------------------------------------------------------------------------- records


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


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _read_json(path: Path, default: Any) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else default


def _write_json(path: Path, data: Any) -> None:
    atomic_write(path, json.dumps(data, indent=2, default=str) + "\n")


def _normal(value: Any) -> Any:
    return plain(value)


def _check_id(kind: str, value: str) -> str:
    if not value or not _ID_RE.match(value):
        raise PipelineError(f"{kind} {value!r}: use letters, digits and _ . + = , - only")
    return value


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
    status = _read_json(status_path, {"notebooks": {}})

    def finished_here(name: str) -> bool:
        return reuse_records or run_dir is None or stage_marker(run_dir, name).exists()

    for nb, params in steps:
        entry = status["notebooks"].get(nb.name, {})
        if entry.get("status") == "done" and not finished_here(nb.name):
            # A record from elsewhere (e.g. the committed reference run): run the notebook again.
            status["notebooks"][nb.name] = {**entry, "status": "recorded elsewhere"}
            continue
        if entry.get("status") == "done" and entry.get("parameters") != _normal(params) and not force:
            raise PipelineError(f"{pm_dir / nb.name} finished with parameters {entry.get('parameters')}, now "
                                f"{_normal(params)}: use another run id, or force to re-execute")
    bar = tqdm(total=len(steps), desc=desc or pm_dir.name, unit="notebook", disable=not progress)
    try:
        for nb, params in steps:
            entry = status["notebooks"].get(nb.name, {})
            bar.set_postfix_str(nb.name)
            if entry.get("status") == "done" and not force:
                bar.update()
                continue
            out = pm_dir / nb.name
            status["notebooks"][nb.name] = entry = {"status": "running", "started": _now(), "output": nb.name,
                                                    "parameters": _normal(params), **versions()}
            _write_json(status_path, status)
            start = time.monotonic()
            try:
                pm.execute_notebook(str(nb), str(out), parameters=params, kernel_name="python3", cwd=str(root),
                                    progress_bar=False, log_output=False, stdout_file=sys.stdout)
            except Exception as exc:  # recorded, then re-raised with the notebook named
                entry.update(status="failed", wall_s=round(time.monotonic() - start, 2), finished=_now(),
                             error=f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}")
                _write_json(status_path, status)
                raise PipelineError(f"notebook {nb.name} failed ({entry['error']}); the executed notebook with "
                                    f"the error: {out}. Fix it and re-run the same command: finished notebooks "
                                    "are skipped.") from exc
            entry.update(status="done", wall_s=round(time.monotonic() - start, 2), finished=_now())
            entry.pop("error", None)
            _write_json(status_path, status)
            if run_dir is not None:
                _write_json(stage_marker(run_dir, nb.name), {"parameters": entry["parameters"],
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
    old = _read_json(pm_dir / "run.json", {})
    status = _read_json(pm_dir / "status.json", {"notebooks": {}})
    wall = {name: e.get("wall_s") for name, e in status["notebooks"].items()}
    # The start carries over only for a run resumed here: a committed record's start is not this run's.
    here = made_here(root / run_dir_rel, status["notebooks"])
    # A re-run that executed nothing (everything done here already) keeps the record's finish time and
    # provenance: the commit and machine that made the stages, not the ones that found them done.
    finishes = [e["finished"] for e in status["notebooks"].values() if e.get("finished")]
    idle = (state == "done" and here and bool(previous.get("finished")) and bool(finishes)
            and max(finishes) <= previous["finished"])
    record = {"run_id": run_id, "preset": preset, "params": _normal(params), "run_dir": run_dir_rel,
              "papermill_dir": pm_dir.relative_to(root).as_posix() if pm_dir.is_relative_to(root) else str(pm_dir),
              "status": state, "notebooks": {n: e.get("status") for n, e in status["notebooks"].items()},
              "started": (old.get("started") if here else None) or _now(),
              "finished": _now() if state != "running" else None,
              "wall_s": wall, "total_wall_s": round(sum(w or 0 for w in wall.values()), 2),
              "git_commit": git_commit(root), "machine": machine(), "versions": versions(), **extra}
    if idle:
        record.update({k: previous[k] for k in ("started", "finished", "git_commit", "machine", "versions")
                       if k in previous})
    _write_json(pm_dir / "run.json", record)
    return record


def _one_run(root: Path, run_id: str, preset: str, notebooks: list[Path], params: dict[str, Any], pm_dir: Path,
             run_dir_rel: str, auto_extra: dict[str, Any], *, force: bool, progress: bool,
             extra: dict[str, Any] | None = None, steps: list | None = None,
             reuse_records: bool = False) -> dict[str, Any]:
    steps = steps if steps is not None else plan(notebooks, {"preset": preset, "run_dir": run_dir_rel, **auto_extra},
                                                 params)
    pm_dir.mkdir(parents=True, exist_ok=True)
    previous = _read_json(pm_dir / "run.json", {})
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
    run_id = _check_id("run id", run_id or preset)
    nbs = find_notebooks(root, notebooks)
    if not nbs:
        raise PipelineError(f"no notebooks matching {NOTEBOOK_GLOB} in {root / 'notebooks'}")
    pm_dir = root / "papermill_runs" / run_id
    record = _one_run(root, run_id, preset, nbs, dict(params or {}), pm_dir, f"runs/{run_id}", {"run_id": run_id},
                      force=force, progress=progress, reuse_records=reuse_records)
    if (root / "runs" / run_id).is_dir():  # the episodes of every stage, in the browser

        record["report"] = link_report(root / "runs" / run_id, pm_dir)
        _write_json(pm_dir / "run.json", record)
    if figures_dir is not None:

        made = figures.figures_for_run(pm_dir / "results", root / figures_dir, run_id)
        record["figures"] = [p.relative_to(root).as_posix() if p.is_relative_to(root) else str(p) for p in made]
        _write_json(pm_dir / "run.json", record)
    return record


# ----------------------------------------------------------------------------------- sweeps


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
    run = _read_json(pm_base / "run.json", {})
    if run.get("preset") not in (None, preset):
        raise PipelineError(f"--reuse-from {reuse_from} was made with preset {run['preset']}, not {preset}")
    status = _read_json(pm_base / "status.json", {"notebooks": {}})["notebooks"]
    unfinished = [nb.name for nb in notebooks if nb.name[:2] in stages and status.get(nb.name, {}).get("status") != "done"]
    if status and unfinished:
        raise PipelineError(f"--reuse-from {reuse_from}: {', '.join(unfinished)} not finished there")
    return base


def write_sweep_table(sweep_pm: Path) -> None:
    """sweep_metrics.csv from the points sweep.json records done (figures.sweep_table), and contrasts.csv
    (protege.stages.contrasts), rewritten with each sweep.json write so they always agree; none done: no file."""

    table = figures.sweep_table(sweep_pm)
    if table.empty:
        (sweep_pm / "sweep_metrics.csv").unlink(missing_ok=True)
    else:
        table.to_csv(sweep_pm / "sweep_metrics.csv", index=False)
    write_contrasts(sweep_pm)  # paired: each swept value against its reference (0), per pair and pooled


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
    root, sweep_id = Path(root), _check_id("sweep id", sweep_id)
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
    definition = {"sweep_id": sweep_id, "preset": preset, "grid": _normal(grid), "base_params": _normal(base_params),
                  "reuse_from": reuse_from, "reuse_stages": list(reuse_stages) if reuse_from else []}
    old = _read_json(sweep_pm / "sweep.json", {})
    # Like a run's record, a committed sweep record (no point of it run on this machine) is replaced, not obeyed.
    if not any(made_here(root / p["run_dir"], [nb.name for nb in point_nbs]) for p in old.get("points", [])
               if p.get("run_dir")):
        old = {}
    if old and any(old.get(k) != v for k, v in definition.items()) and not force:
        raise PipelineError(f"{sweep_pm / 'sweep.json'} defines another sweep ({ {k: old.get(k) for k in definition} });"
                            " use another sweep id, or force")
    done = {p["id"]: p for p in old.get("points", [])}
    record = {**definition, "notebooks": [nb.name for nb in point_nbs], "started": old.get("started") or _now(),
              "finished": None, "points": [{"id": pid, "params": _normal(p), "run_dir": f"runs/{sweep_id}/{pid}",
                                            "status": done.get(pid, {}).get("status", "pending"),
                                            "wall_s": done.get(pid, {}).get("wall_s")} for pid, p in points]}
    _write_json(sweep_pm / "sweep.json", record)
    write_sweep_table(sweep_pm)  # a replaced committed record's table goes with it
    failed = []
    for entry in tqdm(record["points"], desc=f"sweep {sweep_id}", unit="point", disable=not progress):
        pid = entry["id"]
        if base_run is not None:
            _link_upstream(base_run, root / entry["run_dir"], reuse_stages)
        try:
            run = _one_run(root, f"{sweep_id}/{pid}", preset, point_nbs, {**base_params, **entry["params"]},
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
            _write_json(sweep_pm / "sweep.json", record)
            write_sweep_table(sweep_pm)  # after each point, so an interrupted sweep's table is its own
    made = figures.figures_for_sweep(sweep_pm, root / figures_dir, sweep_id) if figures_dir is not None else []
    record["figures"] = [p.relative_to(root).as_posix() if p.is_relative_to(root) else str(p) for p in made]
    if fig_nbs:  # the figures notebook over the whole sweep (seconds; always re-run: points may have changed)
        steps = plan(fig_nbs, {"preset": preset, "run_dir": f"runs/{sweep_id}", "run_id": sweep_id,
                               "sweep_dir": f"papermill_runs/{sweep_id}"}, {})
        execute(steps, sweep_pm, root, force=True, progress=progress, desc=f"{sweep_id} figures")
    record["finished"] = _now()
    _write_json(sweep_pm / "sweep.json", record)
    if failed:
        raise PipelineError(f"{len(failed)} sweep point(s) failed:\n" + "\n".join(failed))
    return record


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
            made += figures.figures_for_sweep(folder, figures_dir, folder.name)
        elif (folder / "results").is_dir():
            made += figures.figures_for_run(folder / "results", figures_dir, folder.name)
    return made


# -------------------------------------------------------------------------------------- CLI

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="The papermill pipeline: notebooks 01-06 per run, sweeps, figures from the records.")


def _split(text: str | None) -> list[str] | None:
    return [s for s in text.split(",") if s.strip()] if text else None


def _fail(exc: PipelineError) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(1)


Preset = Annotated[str, typer.Option(help="smoke | small | full")]
Params = Annotated[list[str] | None, typer.Option("-p", "--param", help="key=value (repeatable); NN:key for one "
                                                                        "notebook, key.sub for a dict entry")]
Notebooks = Annotated[str | None, typer.Option(help="only these, e.g. 04,05 (default: all)")]
Root = Annotated[Path, typer.Option(help="checkout root (notebooks/, runs/, papermill_runs/, figures/)")]
Force = Annotated[bool, typer.Option(help="re-execute finished notebooks too")]


@app.command("run")
def run_cmd(preset: Preset = "smoke",
            run_id: Annotated[str | None, typer.Option(help="run folder name (default: the preset); "
                                                            "the same id resumes")] = None,
            param: Params = None, notebooks: Notebooks = None, root: Root = Path("."), force: Force = False,
            reuse_records: Annotated[bool, typer.Option(help="skip notebooks recorded done even when their "
                                                             "artifacts were not made on this machine")] = False):
    """Run the numbered notebooks for one preset; resumable."""
    try:
        record = run_pipeline(preset, run_id, parse_assignments(param), _split(notebooks), root, force=force,
                              reuse_records=reuse_records)
    except PipelineError as exc:
        _fail(exc)
    typer.echo(run_summary(record))
    return record


def run_summary(record: dict[str, Any]) -> str:
    """The per-notebook wall times and the total of a run record (what `make small` prints)."""
    lines = [f"  {name:24s} {wall or 0:8.0f} s" for name, wall in record.get("wall_s", {}).items()]
    lines.append(f"run {record['run_id']}: {record['status']} in {record['total_wall_s']:.0f} s "
                 f"(preset {record.get('preset', '?')}); records in {record['papermill_dir']}; "
                 f"{len(record.get('figures', []))} figures")
    return "\n".join(lines)


@app.command("sweep")
def sweep_cmd(grid: Annotated[list[str], typer.Option(help="key=v1,v2 (repeatable: every combination is a point)")],
              sweep_id: Annotated[str, typer.Option(help="sweep folder name; the same id resumes")],
              preset: Preset = "small",
              reuse_from: Annotated[str | None, typer.Option(help="run id whose stages 01-03 every point "
                                                                  "shares")] = None,
              param: Params = None, notebooks: Notebooks = None, root: Root = Path("."),
              keep_going: Annotated[bool, typer.Option(help="run the other points when one fails")] = False,
              force: Force = False):
    """A papermill grid over notebook parameters: one run per point, then the summary figures."""
    try:
        record = run_sweep(preset, parse_grid(grid), sweep_id, parse_assignments(param), _split(notebooks),
                           reuse_from, root, keep_going=keep_going, force=force)
    except PipelineError as exc:
        _fail(exc)
    typer.echo(f"sweep {sweep_id}: {sum(p['status'] == 'done' for p in record['points'])}/{len(record['points'])} "
               f"points done; figures: {', '.join(record['figures']) or 'none'}")


@app.command("figures")
def figures_cmd(papermill_runs: Annotated[Path, typer.Option(help="the recorded runs")] = Path("papermill_runs"),
                figures_dir: Annotated[Path, typer.Option(help="where the figures go")] = Path("figures")):
    """Regenerate every figure from papermill_runs/ alone (seconds, no model)."""
    start = time.monotonic()
    made = regenerate_figures(papermill_runs, figures_dir)
    typer.echo(f"{len(made)} figures in {figures_dir} ({time.monotonic() - start:.1f} s)")

