"""`protege agent run`: run the agent over a task file into a resumable run folder.

    protege agent run TASKS RUN_DIR --preset small --policy scripted --expert reference

Re-running the same command resumes: finished instances are kept, unfinished ones restart.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import typer

from protege.agent.config import AgentConfig
from protege.agent.invocation import parse_invocation
from protege.agent.loop import run_episodes
from protege.core.config import parse_assignments
from protege.core.trajectory import TrajectoryWriter, atomic_write
from protege.env.base import EnvConfig, RepoSource
from protege.env.factory import make_environment
from protege.env.reports import summary
from protege.models import factory
from protege.stages.evaluate import grade_run
from protege.tasks.bundled import load_source
from protege.tasks.schema import select

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.callback()
def main() -> None:
    """Run the SWE agent loop (protégé + optional expert) over tasks."""


def make_policy(spec: str, tasks: list, base_url: str, **gen):
    """protege.models.factory.make_policy, its refusal shown as a CLI usage error."""

    try:
        return factory.make_policy(spec, tasks, base_url=base_url, **gen)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def make_expert(spec: str, base_url: str):
    """protege.models.factory.make_expert (none | reference[:LEVEL] | noisy:P[:INNER] | openai:MODEL |
    policy:MODEL), its refusal shown as a CLI usage error."""

    try:
        return factory.make_expert(spec, base_url=base_url)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def load(tasks: str) -> list:
    return load_source(tasks)


@app.command()
def run(
    tasks: str = typer.Argument(..., help="Task file (.json / .jsonl / .parquet) or bundled[:train|:test]."),
    run_dir: Path = typer.Argument(..., help="Run folder: trajectories/, trajectories.jsonl, preds.jsonl."),
    preset: str = typer.Option("smoke", help="AgentConfig preset: smoke | small | full."),
    policy: str = typer.Option("scripted", help="scripted | transformers:DIR | openai:MODEL | replay:RUN_DIR "
                                                "(a recorded run played back)."),
    expert: str = typer.Option("reference", help="none | reference[:LEVEL] | noisy:P[:INNER] | openai:MODEL | "
                                                 "policy:MODEL."),
    policy_base_url: str = typer.Option("https://api.openai.com/v1", envvar="OPENAI_BASE_URL",
                                        help="OpenAI-compatible endpoint of an openai: policy (e.g. vLLM)."),
    expert_base_url: str = typer.Option("https://api.openai.com/v1", envvar="OPENAI_BASE_URL",
                                        help="OpenAI-compatible endpoint of an openai: expert."),
    invocation: str = typer.Option("learned", help="learned | never | every:N | random:P | on_loop."),
    block_policy_asks: bool = typer.Option(False, help="With a baseline: ignore the policy's own asks."),
    instance_ids: list[str] | None = typer.Option(None, "--instance-id", help="Run only these (repeatable)."),
    limit: int | None = typer.Option(None, help="Run only the first N tasks."),
    step_limit: int | None = typer.Option(None, help="Override the preset's step limit."),
    max_parallel: int | None = typer.Option(None, help="Override the preset's batch size."),
    overrides: list[str] | None = typer.Option(None, "--set", metavar="KEY=VALUE",
                                               help="Any AgentConfig field, e.g. --set max_context_tokens=2048 "
                                                    "(repeatable)."),
    backend: str = typer.Option("local", help="Environment backend: local | docker."),
    mirror: str | None = typer.Option(None, help="Local repository mirror template, e.g. /srv/{owner}__{name}."),
    workspace_root: str | None = typer.Option(None, help="Parent folder of task workspaces (default: system temp)."),
    seed: int = typer.Option(0, help="Seed of the random invocation baseline and of sampling."),
    temperature: float = typer.Option(0.0, help="Sampling temperature of local models (0 = greedy)."),
    max_new_tokens: int = typer.Option(256, help="Tokens generated per step by local models."),
    grade: bool = typer.Option(True, help="Grade preds.jsonl at the end (report.json in RUN_DIR)."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Run episodes; finished instances in RUN_DIR are kept (resume)."""
    from tqdm import tqdm


    explicit = {k: v for k, v in dict(step_limit=step_limit, max_parallel=max_parallel).items() if v is not None}
    # a replay (it needs no tasks to be built) runs under the recorded loop settings, on the recorded instances
    replay = make_policy(policy, [], policy_base_url) if policy.startswith("replay:") else None
    if replay:
        instance_ids = instance_ids or replay.instance_ids
    task_list = select(load(tasks), instance_ids, limit)
    if replay:  # records that share an issue text are claimed in record order (ReplayPolicy)
        order = {iid: k for k, iid in enumerate(replay.instance_ids)}
        task_list.sort(key=lambda t: order.get(t.instance_id, len(order)))
    try:
        config = (AgentConfig.from_dict({**replay.agent_config, **parse_assignments(overrides), **explicit}) if replay
                  else AgentConfig.preset(preset, **{**parse_assignments(overrides), **explicit}))
    except (ValueError, TypeError) as exc:
        raise typer.BadParameter(str(exc)) from None
    env_config = EnvConfig(backend=backend, repos=RepoSource(mirror_template=mirror) if mirror else RepoSource(),
                           workspace_root=workspace_root)
    gen = dict(temperature=temperature, max_new_tokens=max_new_tokens, seed=seed,
               batch_size=config.max_parallel) if policy.startswith("transformers:") else {}
    the_policy, the_expert = replay or make_policy(policy, task_list, policy_base_url, **gen), make_expert(expert, expert_base_url)
    writer = TrajectoryWriter(run_dir)
    atomic_write(run_dir / "config.json", json.dumps({
        "tasks": tasks, "preset": preset, "policy": policy, "expert": expert, "invocation": invocation,
        "block_policy_asks": block_policy_asks, "backend": backend, "seed": seed, "generation": gen,
        "agent": config.to_dict()}, indent=2))
    with tqdm(total=len(task_list), disable=not progress, desc="episodes") as bar:
        trajs = run_episodes(task_list, the_policy, the_expert, partial(make_environment, config=env_config), config,
                             parse_invocation(invocation, seed, block_policy_asks), writer,
                             on_finish=lambda t: bar.update(1))
        bar.update(len(trajs) - bar.n)
    counts: dict[str, int] = {}
    for t in trajs:
        counts[t.exit_status] = counts.get(t.exit_status, 0) + 1
    typer.echo(f"{len(trajs)} episodes in {run_dir}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if grade:
        _grade_run(run_dir, task_list, env_config)


def _grade_run(run_dir: Path, task_list: list, env_config) -> None:
    """Grade every prediction of the run (resumable) and print the resolve rate."""

    counts = summary(grade_run(run_dir, task_list, env_config))
    typer.echo(f"resolved {counts['resolved']}/{counts['total']} "
               f"({100 * counts['resolved'] / max(1, counts['total']):.1f}%); errors {counts['errors']}; "
               f"{run_dir / 'report.json'}")
    if counts["errors"]:
        raise typer.Exit(1)

