"""`protege` command line: the bundled benchmark, task files, grading predictions."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from protege.app import viewer
from protege.app.cli_agent import app as agent_app
from protege.app.pipeline_cli import app as pipeline_app
from protege.app.presets import presets_markdown
from protege.bugbench import build as bugbench
from protege.bugbench import validate as validation
from protege.core.config import parse_assignments
from protege.env import harness, reports, swebench_local, swebench_validate
from protege.env.base import EnvConfig, RepoSource
from protege.env.swebench_recipes import REFUSED
from protege.models.exact_edits import file_diffs
from protege.stages import rl, rl_config, sft, sft_config
from protege.stages.compare import compare, compare_runs, comparison_markdown
from protege.stages.evaluate import run_evaluation
from protege.stages.evaluate_config import EvalConfig, resolve_conditions
from protege.stages.expert_check import check_descriptions, check_edits, summary_table
from protege.stages.figures import evaluation_figures
from protege.tasks.bundled import load_bundled, load_source
from protege.tasks.schema import TaskError, load_tasks, save_tasks

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="SWE-Protégé study kit: benchmark, tasks, grading, agents.")
bench = typer.Typer(no_args_is_help=True, help="The bundled bug-fix benchmark.")
tasks_app = typer.Typer(no_args_is_help=True, help="SWE-bench task files.")
app.add_typer(bench, name="bench")
app.add_typer(tasks_app, name="tasks")


app.add_typer(agent_app, name="agent", help="Run a policy on instances: trajectories + predictions.")
app.add_typer(pipeline_app, name="pipeline", help="Run notebooks 01-06 with papermill, sweep parameters, regenerate figures.")

Preset = Annotated[str, typer.Option(help="smoke | small | full")]
Overrides = Annotated[list[str] | None, typer.Option("--set", metavar="KEY=VALUE",
                                                     help="override a config field (repeatable); a dotted key "
                                                          "sets one entry of a dict field")]


@app.command("presets")
def presets_cmd() -> None:
    """Every stage's smoke / small / full scale knobs on one screen (a markdown table)."""

    typer.echo(presets_markdown())


@app.command("sft")
def sft_cmd(preset: Preset = "smoke",
            data: Annotated[Path | None, typer.Option(help="dataset folder written by protege.stages.dataset.save_dataset")] = None,
            out: Annotated[Path | None, typer.Option(help="run folder (created; resumed when it holds checkpoints)")] = None,
            overrides: Overrides = None,
            dry_run: Annotated[bool, typer.Option(help="resolve the configuration, load no weights")] = False,
            resume: Annotated[bool, typer.Option(help="continue from the last checkpoint in OUT")] = True) -> int:
    """Stage 03: supervised fine-tuning of the protégé (TRL SFTTrainer)."""

    config = sft_config.SFTRunConfig.preset(preset, **parse_assignments(overrides))
    config.validate()
    if dry_run:
        typer.echo(json.dumps(sft.dry_run(config, data), indent=2, default=str))
        return 0
    if not data or not out:
        raise typer.BadParameter("--data and --out are required (unless --dry-run)")
    sft.train(config, data, out, resume=resume)
    return 0


@app.command("rl")
def rl_cmd(out: Annotated[Path, typer.Option(help="run folder (resumed when it holds checkpoints)")],
           preset: Preset = "smoke", overrides: Overrides = None,
           resume: Annotated[bool, typer.Option(help="continue an existing run")] = True,
           evaluate: Annotated[bool, typer.Option(help="then compare before/after on held-out tasks")] = False):
    """Stage 04: penalised RL (GRPO-style PPO) of the protégé; reward.X / agent.X set reward / agent fields."""

    config = rl_config.RLRunConfig.preset(preset, **parse_assignments(overrides))
    result = rl.train(config, out, resume=resume)
    if evaluate:
        typer.echo(rl.evaluate_before_after(config, out).to_string(index=False))
    typer.echo(f"[rl] {result.steps} steps logged in {result.out_dir / 'steps.csv'}; model in {result.final_dir}")
    return result


@app.command("evaluate")
def evaluate_cmd(run_dir: Annotated[Path, typer.Option(help="pipeline run folder (holds 03_sft/, 04_rl/ ...)")],
                 preset: Preset = "smoke",
                 out: Annotated[Path | None, typer.Option(help="output folder (default: RUN_DIR/05_eval); "
                                                               "re-running resumes")] = None,
                 overrides: Overrides = None,
                 dry_run: Annotated[bool, typer.Option(help="print the resolved conditions and stop")] = False,
                 progress: bool = True) -> int:
    """Stage 05: evaluation conditions x seeds (Pass@1 with intervals, expert use, loops, cost)."""
    from dataclasses import asdict


    config = EvalConfig.preset(preset, **parse_assignments(overrides))
    if dry_run:
        typer.echo(json.dumps([asdict(c) for c in resolve_conditions(config, run_dir)], indent=2))
        return 0
    result = run_evaluation(config, run_dir, out or run_dir / "05_eval", progress=progress)
    typer.echo(f"{result.out_dir / 'metrics.csv'}")
    for m in result.metrics:
        typer.echo(f"  {m['condition']:<22} " + (f"skipped: {m['skipped']}" if m["skipped"] else
                   f"pass@1 {m['pass1_mean']:.3f} [{m['pass1_lo']:.3f}, {m['pass1_hi']:.3f}]  "
                   f"calls/task {m['expert_calls_per_task']:.2f}  loops {m['loop_rate']:.2f}"
                   + ("  ORACLE" if m["oracle"] else "")))
    return 0


@app.command("compare")
def compare_cmd(a: Annotated[Path, typer.Argument(help="per_instance.csv or evaluation folder of condition A")],
                b: Annotated[Path, typer.Argument(help="the same for condition B")],
                a_condition: Annotated[str | None, typer.Option(help="A's condition (needed if A holds several)")] = None,
                b_condition: Annotated[str | None, typer.Option(help="B's condition (needed if B holds several)")] = None,
                by: Annotated[str, typer.Option(help="per-group rows: tier, mutation, or none")] = "tier") -> None:
    """B against A on the same tasks: Pass@1 and expert calls, B - A with paired intervals."""

    try:
        table = compare(a, b, a_condition, b_condition, None if by == "none" else by)
    except (FileNotFoundError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(comparison_markdown(table))


@app.command("compare-runs")
def compare_runs_cmd(out: Annotated[Path, typer.Argument(help="folder for the side-by-side tables")],
                     run: Annotated[list[str], typer.Option(help="LABEL=EVAL_DIR, at least twice; the first is A")],
                     conditions: Annotated[str, typer.Option(help="comma-separated; default: every shared one")] = "",
                     figures_dir: Annotated[Path | None, typer.Option(help="also draw the stage-05 figures here")] = None,
                     run_id: Annotated[str, typer.Option(help="names the figures")] = "") -> None:
    """Evaluations of different runs side by side (e.g. the tool and the token protégé): the shared
    conditions as `<condition> [<label>]`, each run against the first task by task (paired.csv),
    comparison.md, and the stage-05 figures of them all together."""
    runs = dict(r.split("=", 1) for r in run if "=" in r)
    if len(runs) != len(run) or len(runs) < 2:
        typer.echo("error: give --run LABEL=EVAL_DIR at least twice, with distinct labels", err=True)
        raise typer.Exit(2)
    try:
        result = compare_runs(runs, out, [c for c in conditions.split(",") if c] or None)
    except (FileNotFoundError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo((out / "comparison.md").read_text())
    if figures_dir is not None:
        for path in evaluation_figures(out, figures_dir, run_id or out.name):
            typer.echo(f"figure: {path}")
    typer.echo(f"{len(result['conditions'])} conditions side by side in {out}")


def _env_config(backend: str, mirror_template: str | None, workspace_root: str | None):
    repos = RepoSource(mirror_template=mirror_template) if mirror_template else RepoSource()
    return EnvConfig(backend=backend, repos=repos, workspace_root=workspace_root)


def _load(instances: str):
    if instances in ("bundled", "bundled:train", "bundled:test"):
        split = instances.partition(":")[2] or None
        return load_bundled(split)
    return load_tasks(instances)


@bench.command("build")
def bench_build(seed: int = typer.Option(0, help="seed for site order and issue wording"),
                per_package: int = typer.Option(26, help="validated instances per package"),
                max_candidates: int = typer.Option(90, help="candidates tried per package"),
                workers: int = typer.Option(2, help="candidates validated in parallel"),
                out: Path | None = typer.Option(None, help="output .jsonl (default: the bundled file)"),
                package: list[str] | None = typer.Option(None, help="only these packages")):
    """Inject bugs, validate each by running the tests, write the instances."""

    cfg = bugbench.BuildConfig(seed=seed, per_package=per_package, max_candidates=max_candidates, workers=workers)
    tasks, report = bugbench.build(cfg, out=out, packages=package)
    typer.echo(report.summary())
    typer.echo(f"wrote {len(tasks)} instances")


@bench.command("list")
def bench_list(split: str | None = typer.Option(None, help="train or test"),
               package: str | None = None, tier: str | None = None):
    """One line per bundled instance: id, split, tier, failing tests."""

    rows = [t for t in load_bundled(split) if (package is None or t.extra["package"] == package)
            and (tier is None or t.difficulty == tier)]
    for t in rows:
        typer.echo(f"{t.instance_id:<32} {t.extra['split']:<5} {t.difficulty:<6} "
                   f"F2P={len(t.FAIL_TO_PASS):<3} P2P={len(t.PASS_TO_PASS)}")
    typer.echo(f"{len(rows)} instances")


@bench.command("validate")
def bench_validate(split: str | None = typer.Option(None, help="train or test"),
                   package: str | None = None, limit: int | None = None,
                   workers: int = 2, backend: str = typer.Option("local", help="local or docker"),
                   report: Path | None = typer.Option(None, help="write per-instance rows as JSON")):
    """Grade every instance with its gold patch (must resolve) and the empty patch (must not)."""

    start = time.monotonic()
    tasks = [t for t in load_bundled(split) if package is None or t.extra["package"] == package][:limit]
    rows = validation.validate(tasks, _env_config(backend, None, None), workers=workers)
    table = validation.validation_table(rows)
    typer.echo(table.to_string(index=False))
    ok = sum(r["ok"] for r in rows)
    gold = sum(r["gold_resolved"] for r in rows)
    empty = sum(not r["empty_resolved"] for r in rows)
    typer.echo(f"instances {len(rows)}: gold resolved {gold}/{len(rows)} ({100 * gold / max(1, len(rows)):.1f}%), "
               f"empty not resolved {empty}/{len(rows)} ({100 * empty / max(1, len(rows)):.1f}%); "
               f"backend {backend}; wall time {time.monotonic() - start:.1f}s")
    for r in rows:
        if not r["ok"]:
            typer.echo(f"FAILED {r['instance_id']}: gold={r['gold_resolved']} empty={r['empty_resolved']} {r['error'] or ''}")
    if report:
        report.write_text(json.dumps(rows, indent=1))
    raise typer.Exit(0 if ok == len(rows) else 1)


@tasks_app.command("validate")
def tasks_validate(files: list[Path]):
    """Load and validate SWE-bench files (.json / .jsonl / .parquet); print counts per repo."""
    from collections import Counter


    bad_total = 0
    for path in files:  # every file is checked and reported, a broken one included
        try:
            tasks, problems = load_tasks(path, errors="collect")
        except TaskError as exc:
            typer.echo(f"{path}: unreadable: {exc}")
            bad_total += 1
            continue
        by_repo = Counter(t.repo for t in tasks)
        typer.echo(f"{path}: {len(tasks)} valid instances, {len(problems)} invalid; "
                   f"{len(by_repo)} repos: {dict(by_repo.most_common(5))}")
        for p in problems[:20]:
            typer.echo(f"  {p}")
        bad_total += len(problems)
    raise typer.Exit(1 if bad_total else 0)


def _sources(sources: list[str], repos: str | None, per_source: int | None = None) -> list:
    """The tasks of every source (`load_source`), at most `per_source` of each, of the given
    repositories only (comma-separated; None = all)."""
    wanted = set(repos.split(",")) if repos else None
    return [t for src in sources for t in load_source(src)[:per_source] if wanted is None or t.repo in wanted]


@tasks_app.command("filter")
def tasks_filter(sources: list[str] = typer.Argument(..., help="bundled[:train|:test] or task files"),
                 out: Path = typer.Option(..., help="the selected tasks (.jsonl)"),
                 repos: str | None = typer.Option(None, help="only these repositories, comma-separated"),
                 single_hunk: bool = typer.Option(False, help="only gold patches of one hunk in one file"),
                 limit: int | None = typer.Option(None, help="at most this many tasks in all")):
    """Write a task file of the rows that pass the filters, e.g. the out-of-distribution tasks of
    stage 05 (`docs/RESULTS.md`): single-hunk real bugs of the repositories the swebench-local
    runner grades."""
    tasks = _sources(sources, repos)
    if single_hunk:
        tasks = [t for t in tasks if len(d := file_diffs(t.patch)) == 1 and len(d[0].hunks) == 1
                 and d[0].old_path == d[0].new_path]
    tasks = tasks[:limit]
    save_tasks(tasks, out)
    typer.echo(f"{len(tasks)} tasks -> {out}")


@tasks_app.command("check-edits")
def tasks_check_edits(sources: list[str] = typer.Argument(..., help="bundled[:train|:test] or task files"),
                      out: Path = typer.Option(Path("check_edits.csv"), help="one row per task, appended; "
                                               "a rerun resumes"),
                      mirror_template: str | None = typer.Option(None, help="where real repositories are "
                                                                 "cloned from (see `grade --help`)"),
                      repos: str | None = typer.Option(None, help="only these repositories, comma-separated"),
                      limit: int | None = typer.Option(None, help="at most this many tasks per source"),
                      workers: int = 2):
    """Replay the reference expert's (ORACLE) exact-edit calls through the agent's editor in a fresh
    checkout of each task and compare the files with the gold patch applied by git; print a table
    per repository and every task that does not replay exactly, with its reason. Exits 1 if any."""
    tasks = _sources(sources, repos, limit)
    rows = check_edits(tasks, out, _env_config("local", mirror_template, None), workers=workers)
    typer.echo(summary_table(rows).to_string(index=False))
    bad = [r for r in rows if str(r["exact"]).lower() != "true"]
    typer.echo(f"\n{len(rows) - len(bad)}/{len(rows)} tasks replay exactly; rows in {out}")
    for r in bad:
        typer.echo(f"NOT EXACT {r['instance_id']} ({r['shape']}): {r['reason']}")
    raise typer.Exit(1 if bad else 0)


@tasks_app.command("check-descriptions")
def tasks_check_descriptions(sources: list[str] = typer.Argument(..., help="bundled[:train|:test] or task files"),
                             out: Path | None = typer.Option(None, help="write one row per hunk (CSV)")):
    """For every single-line hunk of the gold patches: does the reference expert's (ORACLE)
    description let a rule-based reader rebuild the fixed line from the wrong one? Prints the share
    per source and per way of saying the fix."""
    import pandas as pd

    frames = [pd.DataFrame(check_descriptions(load_source(src))).assign(source=src) for src in sources]
    df = pd.concat(frames, ignore_index=True)
    if out:
        df.to_csv(out, index=False)
    typer.echo(df.groupby(["source", "kind"]).agg(hunks=("rebuilt", "size"), rebuilt=("rebuilt", "sum"))
               .reset_index().to_string(index=False))
    for src, part in df.groupby("source"):
        typer.echo(f"{src}: {part.rebuilt.sum()}/{len(part)} single-line hunks rebuilt "
                   f"({100 * part.rebuilt.mean():.1f}%)")


@tasks_app.command("validate-local")
def tasks_validate_local(sources: list[str] = typer.Argument(..., help="SWE-bench task files (.parquet / .jsonl)"),
                         out: Path = typer.Option(Path("validate_local.csv"), help="one row per grading, "
                                                  "appended; a rerun resumes"),
                         mirror_template: str | None = typer.Option(None, help="where repositories are cloned "
                                                                    "from (see `grade --help`)"),
                         repos: str | None = typer.Option(None, help="only these repositories, comma-separated"),
                         per_version: int = typer.Option(1, help="instances per (repo, version)"),
                         all_of: str = typer.Option("pytest-dev/pytest,pallets/flask,marshmallow-code/marshmallow",
                                                    help="repositories graded in full, comma-separated"),
                         limit: int | None = typer.Option(None, help="at most this many instances in all"),
                         python_fallback: bool = typer.Option(False, help="where a recipe's Python is not "
                                                              "installed, use the nearest newer one (reported)"),
                         log_dir: Path | None = typer.Option(None, help="test logs (default: beside OUT)"),
                         markdown: Path | None = typer.Option(None, help="also write the table, totals and "
                                                              "disagreements as markdown"),
                         workers: int = 2):
    """Grade the gold and the empty patch of a sample of real instances with the swebench-local
    runner (venvs built once per (repo, version) from swebench's specs, then copied); print a
    table per (repo, version) and every grading that disagrees with SWE-bench (gold not resolved,
    empty resolved, errors), with its reason. Refused repositories are listed, not graded.
    Exits 1 if any grading disagrees."""
    tasks = _sources(sources, repos)
    refused = sorted({t.repo for t in tasks if t.repo in REFUSED})
    tasks = swebench_validate.sample([t for t in tasks if t.repo not in REFUSED], per_version,
                                     set(all_of.split(",")) if all_of else set())[:limit]
    rows = swebench_validate.validate_local(tasks, out, _env_config("local", mirror_template, None), workers,
                                            log_dir or out.with_suffix("").parent / (out.stem + "_logs"),
                                            python_fallback)
    typer.echo(swebench_validate.summary_table(rows).to_string(index=False))
    if markdown:
        markdown.write_text(swebench_validate.markdown_report(rows) + "\n")
    for repo in refused:
        typer.echo(f"REFUSED {repo}: {REFUSED[repo]}")
    bad = swebench_validate.problems(rows)
    typer.echo(f"\n{len(rows) - len(bad)}/{len(rows)} gradings agree with SWE-bench; rows in {out}")
    for line in bad:
        typer.echo(f"DISAGREES {line}")
    raise typer.Exit(1 if bad else 0)


RUNNERS = swebench_local.RUNNERS


@app.command("grade")
def grade_cmd(predictions: Path = typer.Argument(..., help="SWE-bench predictions .jsonl/.json"),
              instances: str = typer.Option("bundled", help="task file, or bundled[:train|:test]"),
              out: Path = typer.Option(Path("grade_report.json"), help="report file"),
              log_dir: Path | None = typer.Option(None, help="test logs (default: beside the report)"),
              backend: str = "local",
              mirror_template: str | None = typer.Option(
                  None, help="where each instance's repository is cloned from, instead of "
                  "https://github.com/{repo}.git: a local path or URL with the placeholders {repo} "
                  "(owner/name), {owner} and {name}, e.g. /srv/mirrors/{owner}__{name}; bare or "
                  "non-bare clones both work. Without it, real instances are cloned from GitHub "
                  "(bundled instances need neither)."),
              workspace_root: str | None = None, workers: int = 1,
              runner: str = typer.Option("sandbox", help="sandbox (bundled / prepared repos) or "
                                         "swebench-local (real pure-Python instances: venv + pinned install)")):
    """Grade predictions against instances with swebench's parsers; write a report.
    The report keeps one entry per (model_name_or_path, instance, patch): grading gold, empty
    or one prediction at a time into one --out adds entries and replaces none; its `instances`
    and summary describe the predictions file just graded. The report is rewritten after every
    instance; an entry is reused for the same model's same patch unless it errored. Exits 1
    when any instance errored."""

    if runner not in RUNNERS:
        raise typer.BadParameter(f"unknown runner {runner!r}; use one of: {', '.join(RUNNERS)}", param_hint="--runner")
    preds = reports.load_predictions(predictions)
    by_id = {t.instance_id: t for t in _load(instances)}
    entries = reports.read_report(out)
    log_dir = log_dir or out.with_suffix("").parent / (out.stem + "_logs")
    env_config = _env_config(backend, mirror_template, workspace_root)

    def one(task, patch: str, model_name: str) -> dict:
        return swebench_local.grade_entry(task, patch, env_config, runner, log_dir, model_name)

    def save(view: dict) -> None:
        reports.write_report(out, entries, view, str(predictions))

    report = reports.grade_predictions(preds, by_id, entries, one, save, workers=workers, progress=True)
    save(report)
    counts = reports.summary(report)
    typer.echo(f"resolved {counts['resolved']}/{counts['total']}; errors {counts['errors']}; "
               f"test infrastructure reverted in {counts['reverted_test_infra']}; report {out}")
    for iid, rep in report.items():
        if rep.get("status") == "ERROR":
            typer.echo(f"  ERROR {iid}: {str(rep.get('error'))[:300]}")
    raise typer.Exit(1 if counts["errors"] else 0)


@app.command("view")
def view_cmd(run_dir: Path = typer.Argument(..., help="a folder of trajectories: a collection, an RL run, an "
                                            "evaluation (all conditions), or a whole runs/<run-id>"),
             out: Path | None = typer.Option(None, help="the HTML file (default RUN_DIR/report.html); "
                                                "episodes go to <stem>_files/ beside it"),
             serve: bool = typer.Option(False, help="also serve the report on 127.0.0.1 (Ctrl-C stops)"),
             port: int = typer.Option(8000, help="port for --serve")):
    """Write a self-contained HTML report of a run's episodes (opens from disk, no server needed)."""

    if not run_dir.is_dir():
        raise typer.BadParameter(f"{run_dir} is not a folder")
    path = viewer.write_report(run_dir, out)
    typer.echo(f"report: {path} ({path.resolve().as_uri()})")
    if serve:
        viewer.serve(path, port)


@app.command("harness")
def harness_cmd(predictions: Path = typer.Argument(..., help="SWE-bench predictions .jsonl/.json"),
                instances: str = typer.Option(..., help="task file with swebench 5.x fields (image, eval_script...)"),
                workdir: Path = typer.Option(Path("harness_runs"), help="where dataset, logs and reports go"),
                run_id: str = "protege", max_workers: int = 4, timeout_s: int = 1800,
                namespace: str | None = typer.Option(None, help="registry namespace for the images"),
                dry_run: bool = typer.Option(False, help="write and check the inputs, do not run")):
    """Full scale: grade predictions with the official swebench harness in Docker."""

    run = harness.evaluate(_load(instances), reports.load_predictions(predictions), workdir, run_id, max_workers=max_workers,
                   timeout_s=timeout_s, namespace=namespace, dry_run=dry_run)
    for problem in run.problems:
        typer.echo(f"problem: {problem}")
    typer.echo(f"{len(run.images)} images; harness arguments in {workdir}" + (" (dry run)" if dry_run else ""))


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
