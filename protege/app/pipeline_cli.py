"""`protege pipeline run | sweep | figures`: the command line of the papermill pipeline."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from protege.app.params import (
    PipelineError,
    parse_assignments,
    parse_grid,
)
from protege.app.pipeline import regenerate_figures, run_pipeline
from protege.app.sweep import run_sweep

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
