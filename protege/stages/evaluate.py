"""Stage 05: evaluate protégé variants on held-out tasks (Pass@1 with intervals, expert use,
loops, cost) and export SWE-bench predictions.

A **condition** is one way of running the agent: a policy (the protégé, or the expert acting
as agent), an expert the policy may consult, and who decides when to ask (`invocation`: the
policy itself = "learned", or a baseline from `protege.agent.invocation`). Every condition is run once
per seed on the same tasks, each patch is graded in a fresh environment, and the results are
written as two tables that the figure code reads.

The default conditions (`default_conditions`; `EvalConfig` names the model folders):

* main: ``base`` (the protégé alone: no ask_expert tool), ``base+expert``, ``sft+expert``,
  ``sft+rl+expert`` and ``expert-as-agent`` (at smoke/small scale the scripted ORACLE policy,
  which reads the gold patch: an upper reference, not a model).
* invocation ablation on the best trained model (RL if trained, else SFT): ``ablate-never``,
  ``ablate-every5``, ``ablate-random0.2`` (the baseline decides alone: the policy's own asks are
  blocked) and ``ablate-learned`` (the policy decides; the same run as the best main condition,
  so it is not run twice).
* data ablation: ``sft-inserted+expert`` (SFT on post-hoc inserted calls) beside ``sft+expert``
  (SFT on live-collaboration data).
* expert quality: ``noisy-expert`` (the best model with an expert that misleads with p = 0.3).

A condition whose model folder does not exist (e.g. RL not run yet) is skipped and recorded with
the reason. ORACLE components (the scripted policy, the reference expert built from the gold
patch) mark every row of their condition ``oracle = 1``.

Output folder (``out_dir``)::

    config.json                    the resolved EvalConfig, conditions (with skip reasons), agent config
    per_instance.csv               one row per condition x seed x instance (PER_INSTANCE_COLUMNS)
    metrics.csv                    one row per condition (METRICS_COLUMNS)
    <condition>/seed<k>/           a resumable agent run folder:
        config.json                what this folder was run with (a re-run with other settings refuses)
        trajectories/ trajectories.jsonl preds.jsonl   (protege.core.trajectory; preds = SWE-bench predictions)
        report.json                local grading, one GradeReport per instance (resumable)
        grading_logs/
        harness/ harness.json      full scale: swebench's harness inputs / run (`harness` != "off")

Metrics (`summarize`): Pass@1 is the mean over instances of each instance's resolve rate across
seeds (with every seed run on every instance this equals the mean over seeds of per-seed
Pass@1). Its 95% interval is a percentile bootstrap over instances (`pass1_interval`): the
instances are resampled with replacement 2000 times, each carrying its mean over seeds, so the
interval reflects the finite task sample (which dominates at 16 to 500 tasks) and seed noise
through the instance means. Expert token share is token-weighted over all trajectories (sum of
expert tokens / sum of all tokens, as in the paper's Fig. 3); loop rate is the share of
trajectories with a run of more than 10 identical base commands (`protege.core.loop_detection.has_long_run`,
Fig. 6); format-error rate is malformed actions per step.

Decoding: temperature 0.7 at every scale, so seeds give different samples (the paper does not
say how its Pass@1 was sampled); set ``temperature=0`` for greedy decoding (seeds then only
change the random invocation baseline and the noisy expert).

CLI: ``protege evaluate --preset smoke --run-dir DIR --out DIR [--set key=value ...]``.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

from protege.agent.config import AgentConfig
from protege.agent.invocation import parse_invocation
from protege.agent.loop import run_episodes
from protege.core.config import parse_assignments
from protege.core.loop_detection import has_long_run, repeats_in_window
from protege.core.metrics import LOOP_THRESHOLD, summarize
from protege.core.progress import Progress
from protege.core.trajectory import TrajectoryWriter, atomic_write, completed_ids, load_trajectory
from protege.env import harness
from protege.env.base import EnvConfig, RepoSource
from protege.env.factory import make_environment
from protege.env.reports import grade_predictions, load_predictions, read_report, write_report
from protege.env.swebench_local import RUNNERS, grade_entry
from protege.models.engine import dtype_policy
from protege.models.factory import is_oracle, make_expert
from protege.models.factory import make_policy as build
from protege.models.policies import TransformersPolicy
from protege.stages.compare import PAIRED_COLUMNS, paired_comparisons
from protege.stages.evaluate_config import Condition, EvalConfig, resolve_conditions, unfill
from protege.tasks.bundled import load_source

PER_INSTANCE_COLUMNS = (
    "condition", "seed", "instance_id", "resolved", "exit_status", "steps", "expert_calls", "format_errors",
    "protege_prompt_tokens", "protege_completion_tokens", "expert_input_tokens", "expert_output_tokens",
    "expert_token_share", "cost_usd", "loop", "repeats", "oracle", "tier", "mutation",
)
# metrics_by_tier.csv / metrics_by_mutation.csv: one row per condition x tier (x mutation kind)
GROUP_COLUMNS = ("condition", "group", "n_tasks", "pass1_mean", "pass1_lo", "pass1_hi", "expert_calls_per_task",
                 "expert_token_share", "loop_rate", "repeats_per_task", "steps_per_task", "oracle")
METRICS_COLUMNS = (
    "condition", "policy", "expert", "invocation", "n_tasks", "n_seeds", "pass1_mean", "pass1_lo", "pass1_hi",
    "expert_calls_per_task", "expert_token_share", "loop_rate", "repeat_rate", "repeats_per_task", "steps_per_task",
    "cost_per_task", "format_error_rate", "step_limit_rate", "format_exit_rate", "oracle", "skipped",
)
# Settings that define what a seed folder holds: a re-run under other values refuses to mix them in.
IDENTITY_KEYS = ("policy", "expert", "invocation", "block_policy_asks", "seed", "tasks", "agent_preset",
                 "step_limit", "max_new_tokens", "temperature", "interface", "repeat_limit")


# ---------------------------------------------------------------------------------- configuration


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``key=value`` strings (protege.core.config.parse_assignments).

    >>> parse_overrides(["limit=3", "grade=False"])
    {'limit': 3, 'grade': False}
    """

    return parse_assignments(items)


# ---------------------------------------------------------------------------------- metrics


def instance_row(condition: str, seed: int, traj: Any, resolved: bool | None, oracle: bool) -> dict[str, Any]:
    """One per_instance.csv row from a finished `protege.core.trajectory.Trajectory`."""

    t = traj.tokens
    return {"condition": condition, "seed": seed, "instance_id": traj.instance_id,
            "resolved": None if resolved is None else int(bool(resolved)), "exit_status": traj.exit_status,
            "steps": traj.counts.steps, "expert_calls": traj.counts.expert_calls,
            "format_errors": traj.counts.format_errors, "protege_prompt_tokens": t.protege_prompt,
            "protege_completion_tokens": t.protege_completion, "expert_input_tokens": t.expert_input,
            "expert_output_tokens": t.expert_output, "expert_token_share": t.expert_share,
            "cost_usd": traj.cost_usd, "loop": int(has_long_run(traj.actions, LOOP_THRESHOLD)),
            "repeats": repeats_in_window(traj.action_keys), "oracle": int(oracle)}


# ---------------------------------------------------------------------------------- running


def make_policy(spec: str, tasks: list, config: EvalConfig, seed: int, cache: dict[str, Any],
                servers: ExitStack | None = None, log_dir: Path | None = None):
    """protege.models.factory.make_policy with this evaluation's generation settings: `cache` keeps
    the last loaded local model, so seeds and conditions of one model share its weights."""

    return build(spec, tasks, base_url=config.policy_base_url, temperature=config.temperature,
                 max_new_tokens=config.max_new_tokens, seed=seed, device=config.device,
                 batch_size=config.max_parallel, serve=config.serve, servers=servers, log_dir=log_dir,
                 cache=cache, name=spec)


def load_eval_tasks(config: EvalConfig) -> list:
    tasks = load_source(config.tasks)
    return tasks[: config.limit] if config.limit >= 0 else tasks


def _agent_config(config: EvalConfig):
    overrides: dict[str, Any] = {"max_parallel": config.max_parallel, "interface": config.interface,
                                 "repeat_limit": config.repeat_limit}
    if config.step_limit >= 0:
        overrides["step_limit"] = config.step_limit
    return AgentConfig.preset(config.agent_preset, **overrides)


def _check_identity(run: Path, identity: dict[str, Any]) -> None:
    path = run / "config.json"
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8")).get("identity", {})
        if diff := [f"{k}: {old.get(k)!r} -> {identity.get(k)!r}" for k in IDENTITY_KEYS
                    if old.get(k) != identity.get(k)]:
            raise ValueError(f"{run} was run with other settings ({'; '.join(diff)}); use another out folder")


def _engine_record() -> dict[str, Any]:
    """How local policies generate on this machine (recorded with the results)."""
    import dataclasses

    import torch


    local = {f.name: f.default for f in dataclasses.fields(TransformersPolicy)}
    return {"dtype_policy": dtype_policy("cuda" if torch.cuda.is_available() else "cpu"),
            "turn_kv_cache": local["cache_turns"], "cache_implementation": local["cache_implementation"],
            "regroup_at": local["regroup_at"], "share_prefixes": local["share_prefixes"],
            "native_gqa_attention_on_cpu": local["native_gqa"],
            "torch_threads": torch.get_num_threads()}


def grade_run(run: Path, tasks: list, env_config: Any, model_name: str = "model",
              runner: str = "sandbox") -> dict[str, dict]:
    """Grade every prediction of a run folder into its report.json (resumable: see
    protege.env.reports.grade_predictions). Returns {instance_id: GradeReport dict}."""

    path = run / "report.json"
    entries = read_report(path)
    by_id = {t.instance_id: t for t in tasks}
    preds = load_predictions(run / "preds.jsonl") if (run / "preds.jsonl").exists() else []
    return grade_predictions(
        [p for p in preds if p["instance_id"] in by_id], by_id, entries,
        lambda task, patch, _name: grade_entry(task, patch, env_config, runner, run / "grading_logs", model_name),
        save=lambda view: write_report(path, entries, view, str(run / "preds.jsonl")),
        workers=max(1, os.cpu_count() or 1))


def harness_run(run: Path, tasks: list, run_id: str, config: EvalConfig) -> dict[str, bool]:
    """swebench's harness on a run folder's predictions (dry_run: inputs written and validated
    only). Writes harness.json; with a real run returns {instance_id: resolved} from its logs
    (also saved as harness_report.json), else {}."""

    preds = [{**p, "model_name_or_path": run_id} for p in load_predictions(run / "preds.jsonl")]
    done = harness.evaluate(tasks, preds, run / "harness", run_id, max_workers=config.harness_workers,
                            namespace=config.harness_namespace or None, dry_run=config.harness == "dry_run")
    atomic_write(run / "harness.json", json.dumps({"kwargs": done.kwargs, "images": done.images,
                                                   "problems": done.problems, "dry_run": config.harness == "dry_run"},
                                                  indent=1, default=str))
    if config.harness == "dry_run":
        return {}
    reports = harness.grade_saved_logs(tasks, done.log_dir, preds).get(run_id, {})
    resolved = {iid: bool(r.get("resolved")) for iid, r in reports.items()}
    atomic_write(run / "harness_report.json", json.dumps(reports, indent=1, default=str))
    return resolved


def run_condition(cond: Condition, seed: int, tasks: list, config: EvalConfig, run: Path, env_config: Any,
                  cache: dict[str, Any], progress: bool = True, agent: Any = None) -> tuple[list, dict[str, bool | None]]:
    """Run (or resume) one condition x seed into `run`, grade it; returns its trajectories in
    task order and {instance_id: resolved or None}. `agent`: an AgentConfig in place of the one
    the config's agent preset gives (RL's before/after check passes its own)."""
    from tqdm.auto import tqdm


    agent = agent or _agent_config(config)
    identity = {"policy": cond.policy, "expert": cond.expert, "invocation": cond.invocation,
                "block_policy_asks": cond.block_policy_asks, "seed": seed, "tasks": config.tasks,
                "agent_preset": config.agent_preset, "step_limit": agent.step_limit,
                "max_new_tokens": config.max_new_tokens, "temperature": config.temperature,
                # None for the tool interface, so that folders written before the field existed still resume
                "interface": None if agent.interface == "tool" else agent.interface,
                "repeat_limit": None if agent.repeat_limit < 0 else agent.repeat_limit}
    _check_identity(run, identity)
    atomic_write(run / "config.json", json.dumps({"identity": identity, "condition": asdict(cond),
                                                  "agent": agent.to_dict()}, indent=2, default=str))
    writer = TrajectoryWriter(run)
    done = completed_ids(run)
    if all(t.instance_id in done for t in tasks):  # nothing to run: no model to load
        trajs = [load_trajectory(writer.path(t.instance_id)) for t in tasks]
    else:
        with ExitStack() as servers:  # a served protégé's server stops when its episodes are done
            policy = make_policy(cond.policy, tasks, config, seed, cache, servers, run)
            expert = make_expert(cond.expert, seed, config.expert_base_url)
            invocation = parse_invocation(cond.invocation, seed, cond.block_policy_asks)
            todo = sum(t.instance_id not in done for t in tasks)
            with tqdm(total=todo, desc=f"{cond.name} seed{seed}", leave=False, disable=not progress) as bar:
                trajs = run_episodes(tasks, policy, expert, partial(make_environment, config=env_config), agent,
                                     invocation, writer, on_finish=lambda t: bar.update(1))
    resolved: dict[str, bool | None] = {t.instance_id: None for t in tasks}
    if config.grade:
        report = grade_run(run, tasks, env_config, model_name=cond.name, runner=config.runner)
        resolved.update({iid: bool(r["resolved"]) for iid, r in report.items() if iid in resolved})
    if config.harness != "off":
        resolved.update(harness_run(run, tasks, f"{cond.name}-seed{seed}", config))
    return trajs, resolved


@dataclass
class EvalResult:
    out_dir: Path
    conditions: list[Condition]
    per_instance: list[dict[str, Any]]
    metrics: list[dict[str, Any]]


def run_evaluation(config: EvalConfig, run_dir: str | Path, out_dir: str | Path, progress: bool = True) -> EvalResult:
    """Stage 05: every condition x seed on the held-out tasks into ``out_dir/<condition>/seed<k>/``
    (resumable), graded; writes config.json, per_instance.csv and metrics.csv in `out_dir`."""
    from tqdm.auto import tqdm

    if config.runner not in RUNNERS:
        raise ValueError(f"eval field 'runner': {config.runner!r} is not one of {', '.join(RUNNERS)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    conds = resolve_conditions(config, run_dir)
    tasks = load_eval_tasks(config)
    agent = _agent_config(config)
    atomic_write(out_dir / "config.json", json.dumps({
        "eval": config.to_dict(), "run_dir": str(run_dir), "n_tasks": len(tasks),
        "instance_ids": [t.instance_id for t in tasks], "conditions": [asdict(c) for c in conds],
        "agent": agent.to_dict(),
        "interval": f"95% percentile bootstrap over instances ({config.n_boot} resamples, instance = mean over seeds)",
        "loop": f"a run of more than {LOOP_THRESHOLD} identical base commands (protege.core.loop_detection.has_long_run)",
        "engine": _engine_record(),
    }, indent=2, default=str) + "\n")
    env_config = EnvConfig(backend=config.backend, repos=RepoSource(mirror_template=config.mirror_template or None))
    runnable = [c for c in conds if not c.skipped and not c.run_as]
    # Conditions of one model run one after another, so its weights are loaded once.
    first = {}
    for c in runnable:
        first.setdefault(c.policy, len(first))
    order = sorted(runnable, key=lambda c: first[c.policy])
    results: dict[str, list[dict[str, Any]]] = {}
    cache: dict[str, Any] = {}
    console = Progress("evaluate", len(order) * len(config.seeds), every_s=0)
    with tqdm(total=len(order) * len(config.seeds), desc="conditions x seeds", disable=not progress) as bar:
        for cond in order:
            rows = results.setdefault(cond.name, [])
            for seed in config.seeds:
                trajs, resolved = run_condition(cond, seed, tasks, config, out_dir / cond.name / f"seed{seed}",
                                                env_config, cache, progress)
                oracle = is_oracle(cond.policy, cond.expert)
                rows += [instance_row(cond.name, seed, t, resolved.get(t.instance_id), oracle) for t in trajs]
                bar.update(1)
                console.update(bar.n, f"{cond.name} seed {seed}: resolved "
                               f"{sum(bool(resolved.get(t.instance_id)) for t in trajs)}/{len(trajs)}")
    cache.clear()
    per_instance, metrics = _tables(conds, results, tasks, config, run_dir)
    write_csv(out_dir / "per_instance.csv", per_instance, PER_INSTANCE_COLUMNS)
    write_csv(out_dir / "metrics.csv", metrics, METRICS_COLUMNS)
    for key in ("tier", "mutation"):
        write_csv(out_dir / f"metrics_by_{key}.csv", group_metrics(per_instance, key, config.n_boot), GROUP_COLUMNS)
    write_csv(out_dir / "paired.csv", paired_comparisons(out_dir, n_boot=config.n_boot), PAIRED_COLUMNS)
    return EvalResult(out_dir, conds, per_instance, metrics)


def _tables(conds: list[Condition], results: dict[str, list[dict[str, Any]]], tasks: list, config: EvalConfig,
            run_dir: str | Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """per_instance rows (with each task's tier and mutation kind) and one metrics row per condition."""
    per_instance, metrics = [], []
    for c in conds:
        rows = [] if c.skipped else [{**r, "condition": c.name} for r in results[c.run_as or c.name]]
        per_instance += rows
        summary = summarize(rows, config.n_boot) if rows else {k: math.nan for k in METRICS_COLUMNS}
        # `{run_dir}` back in the specs: two runs of one preset under different run ids give the
        # same bytes (config.json keeps the resolved paths).
        metrics.append({**summary, "condition": c.name, "policy": unfill(c.policy, run_dir),
                        "expert": unfill(c.expert, run_dir), "invocation": c.invocation,
                        "oracle": int(is_oracle(c.policy, c.expert)), "skipped": unfill(c.skipped, run_dir),
                        **({"n_tasks": 0, "n_seeds": 0} if c.skipped else {})})
    by_id = {t.instance_id: t for t in tasks}
    for r in per_instance:
        task = by_id.get(r["instance_id"])
        r["tier"] = (task.difficulty or "-") if task else "-"
        r["mutation"] = str(((task.extra.get("mutation") or {}).get("kind")) or "-") if task else "-"
    return per_instance, metrics


def group_metrics(per_instance: Sequence[dict[str, Any]], key: str, n_boot: int = 2000) -> list[dict[str, Any]]:
    """`summarize` per condition and value of `key` (tier, mutation kind): where each condition
    succeeds, and where it asks (selectivity: calls per task by tier).

    >>> rows = [dict(condition="c", seed=0, instance_id=i, resolved=int(i == "a"), steps=4, expert_calls=int(i != "a"),
    ...              format_errors=0, protege_prompt_tokens=90, protege_completion_tokens=0, expert_input_tokens=0,
    ...              expert_output_tokens=0, cost_usd=0, loop=0, oracle=0, tier="easy" if i == "a" else "hard")
    ...         for i in "abc"]
    >>> [(m["group"], m["n_tasks"], m["pass1_mean"], m["expert_calls_per_task"]) for m in group_metrics(rows, "tier")]
    [('easy', 1, 1.0, 0.0), ('hard', 2, 0.0, 1.0)]
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in per_instance:
        groups.setdefault((r["condition"], str(r.get(key, "-"))), []).append(r)
    out = []
    for (cond, value), rows in groups.items():
        m = summarize(rows, n_boot)
        out.append({"condition": cond, "group": value, "oracle": rows[0].get("oracle", 0),
                    **{k: m[k] for k in GROUP_COLUMNS if k in m}})
    return out


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return round(value, 6)
    return value


def write_csv(path: Path, rows: list[dict[str, Any]], columns: Sequence[str]) -> Path:
    """Rows as CSV with exactly `columns` (missing values and NaN as empty cells), atomically."""
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k)) for k in columns})
    atomic_write(path, buf.getvalue())
    return path


# ---------------------------------------------------------------------------------- reading results


