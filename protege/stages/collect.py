"""Collect demonstration trajectories with an ORACLE demonstrator and keep the resolved ones.

`ReferenceDemonstrator` is an ORACLE policy: it reads the task's gold patch (like
`protege.models.scripted.ScriptedPolicy`), so its trajectories say nothing about a model's skill. They
are training data, and every row `collect` keeps is labelled ``"oracle_demonstrator": true``.
Unlike the scripted policy it varies with a seed: which exploration commands it runs, which
failing test it reproduces, whether it first makes a plausible wrong edit (and reverts it after
the test still fails), how much context its edits carry and how it checks the fix. It always
asks the expert once, when stalled, with a question naming the failing test and what it tried.

`collect` runs the demonstrator with the (oracle) `ReferenceExpert` in local sandboxes, grades
every patch with `protege.env.grading.grade` and keeps only resolved trajectories (rejection
sampling). Run folder::

    run_dir/kept.jsonl      one finished, resolved trajectory dict per line
    run_dir/dropped.jsonl   {"instance_id", "reason", ...} per rejected episode
    run_dir/grade_logs/     grader logs

Both .jsonl files are appended as each episode finishes; a later call skips instance ids
already in either file, so an interrupted collection resumes without duplicates.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from protege.agent.config import AgentConfig
from protege.agent.loop import run_episodes
from protege.core.actions import Action
from protege.core.config import resolve
from protege.core.protocols import Expert, Policy
from protege.core.trajectory import atomic_write, read_jsonl
from protege.env.base import EnvConfig
from protege.env.factory import make_environment
from protege.env.grading import grade
from protege.models.demonstrator import ReferenceDemonstrator
from protege.models.factory import make_expert, make_policy, require_explicit_oracle
from protege.models.plans import task_package
from protege.models.reference_expert import ReferenceExpert
from protege.tasks.bundled import load_source
from protege.tasks.schema import Task


def _append(path: Path, row: dict[str, Any], lock: threading.Lock) -> None:
    with lock, path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def drop_reason(traj: Any, task: Task, env_config: EnvConfig, log_dir: Path, model_name: str) -> tuple[str | None, Any]:
    """Why a demonstration is not kept (None: it is), with its grade report when it was graded:
    only a submitted, non-empty patch that resolves the task is training data."""
    if traj.exit_status != "submitted":
        return f"exit:{traj.exit_status}", None
    if not traj.patch.strip():
        return "empty_patch", None
    report = grade(task, traj.patch, env_config, log_dir=log_dir, model_name=model_name)
    if report.error and not report.resolved:
        return "grade_error", report
    return (None if report.resolved else "unresolved"), report


def run_and_grade(tasks: list[Task], policy: Policy, expert: Expert, env_config: EnvConfig, config: AgentConfig,
                  judge: Callable[[Any], tuple], record: Callable[..., None]) -> None:
    """Episodes of `tasks`, each finished one judged (graded) on a worker thread and recorded."""
    # Grading (the repository's tests) is most of a scripted collection's time: grade finished
    # episodes on every core while the next ones run, but record them in the order they finished
    # (deterministic), so kept.jsonl, and the SFT data after it, is the same from run to run.
    pending: deque = deque()

    def drain(block: bool) -> None:
        while pending and (block or pending[0][1].done()):
            traj, fut = pending.popleft()
            record(traj, *fut.result())

    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as graders:
        def on_finish(traj) -> None:
            pending.append((traj, graders.submit(judge, traj)))
            drain(block=False)

        try:
            run_episodes(tasks, policy, expert, partial(make_environment, config=env_config), config,
                         on_finish=on_finish)
        finally:  # graded episodes are kept even when a later one fails
            drain(block=True)


def collect(tasks: list[Task], run_dir: str | Path, seed: int = 0, config: AgentConfig | None = None,
            expert: Expert | None = None, env_config: EnvConfig | None = None,
            allow_test_split: bool = False, ask_expert: bool = True, policy: Policy | None = None,
            progress: bool = False) -> dict[str, Any]:
    """Run a demonstrator on `tasks`, grade each patch, keep only resolved trajectories in
    run_dir/kept.jsonl and record the rest in run_dir/dropped.jsonl.

    policy: the demonstrator; default the ORACLE `ReferenceDemonstrator` (full scale: any `Policy`
    with an expert that sees the gold patch, `OpenAIExpert(show_gold_patch=True)`, METHOD.md Phase I).
    ask_expert: False collects expert-only trajectories, the input of stage 02's post-hoc insertion.
    Returns {"kept": n kept by this call, "dropped": {reason: n}, "skipped": n already done}.
    Refuses bundled test-split tasks (held out from training data) unless allow_test_split."""
    held_out = [t.instance_id for t in tasks if t.extra.get("split") == "test"]
    if held_out and not allow_test_split:
        raise ValueError(f"collect: {len(held_out)} test-split tasks given (e.g. {held_out[0]!r}): "
                         "they are held out from training data")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    kept_path, dropped_path = run_dir / "kept.jsonl", run_dir / "dropped.jsonl"
    done = {r.get("instance_id") for r in read_jsonl(kept_path) + read_jsonl(dropped_path)}
    first: dict[str, Task] = {}  # each task once, in the given order
    for t in tasks:
        if t.instance_id not in done:
            first.setdefault(t.instance_id, t)
    todo = list(first.values())
    counts: dict[str, Any] = {"kept": 0, "dropped": Counter(), "skipped": len(tasks) - len(todo)}
    if not todo:
        counts["dropped"] = {}
        return counts
    config = replace(config or AgentConfig.preset("small", max_parallel=4), enable_ask_expert=ask_expert)
    expert = expert if expert is not None else ReferenceExpert(seed=seed)
    env_config = env_config or EnvConfig()
    policy = policy if policy is not None else ReferenceDemonstrator(todo, seed=seed)
    oracle = bool(getattr(policy, "oracle", False))
    bar = tqdm(total=len(todo), desc=f"collect ({'live' if ask_expert else 'expert-only'})", disable=not progress)
    by_id = {t.instance_id: t for t in todo}
    lock = threading.Lock()

    def judge(traj) -> tuple[str | None, Any]:
        return drop_reason(traj, by_id[traj.instance_id], env_config, run_dir / "grade_logs", policy.name)

    def record(traj, reason: str | None, report: Any) -> None:
        row = {"oracle_demonstrator": oracle, "demonstrator_seed": seed}
        if reason is None:
            task = by_id[traj.instance_id]
            _append(kept_path, {**traj.to_dict(), **row, "package": task_package(task),
                                "split": task.extra.get("split", ""), "ask_expert": ask_expert,
                                "grade_status": report.status if report else None}, lock)
            counts["kept"] += 1
        else:
            _append(dropped_path, {"instance_id": traj.instance_id, "reason": reason, "exit_status": traj.exit_status,
                                   **row, "grade": report.to_dict() if report else None}, lock)
            counts["dropped"][reason] += 1
        bar.update(1)

    run_and_grade(todo, policy, expert, env_config, config, judge, record)
    bar.close()
    counts["dropped"] = dict(counts["dropped"])
    return counts


@dataclass
class CollectConfig:
    """Stage 01: which tasks, which demonstrator and expert, which seeds."""

    preset_name: str = "smoke"  # the preset these values started from
    tasks: str = "bundled:train"  # task file or bundled:train (never the test split)
    limit: int = -1  # tasks at most; -1 = all
    live_seed: int = 0  # demonstrator seed of the live-collaboration collection
    expert_only_seed: int = 1  # seed of the expert-only collection (stage 02's input); -1 = skip it
    demonstrator: str = "reference"  # reference (ORACLE, reads the gold patch) | openai:MODEL | transformers:MODEL
    allow_oracle: bool = False  # `full` refuses the ORACLE reference demonstrator/expert unless this is set
    # a transformers:MODEL demonstrator generates in-process ("off") or behind a server launched for the
    # collection (protege.models.serving): "vllm" | "transformers"; launch line and log in <collection>/server/
    serve: str = "off"
    expert: str = "reference"  # reference[:LEVEL[+LEVEL]] (ORACLE) | openai:MODEL (shown the gold patch: Phase I)
    policy_base_url: str = "https://api.openai.com/v1"  # endpoint of an openai: demonstrator (as in stage 05)
    expert_base_url: str = "https://api.openai.com/v1"  # endpoint of an openai: expert (as in stages 04-05)
    p_wrong: float = 0.5  # reference demonstrator: probability of a wrong first edit
    plan: str = "full"  # reference demonstrator: full (explores, tests) | compact (collect.compact_plan)
    agent_preset: str = "small"  # AgentConfig preset of the collection episodes
    interface: str = "tool"  # how the protégé asks: tool (ask_expert) | token (<<collaborate>>); AgentConfig.interface
    max_parallel: int = 4  # episodes stepped together

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> CollectConfig:
        """A scale preset (smoke | small | full) with field overrides.

        >>> CollectConfig.preset("smoke").limit, CollectConfig.preset("small").limit
        (6, -1)
        """

        return resolve(cls, COLLECT_PRESETS, name, overrides)


COLLECT_PRESETS: dict[str, dict[str, Any]] = {
    "smoke": {"limit": 6, "agent_preset": "smoke"},
    # Compact demonstrations, and an expert whose hint level is drawn per task, so the protégé learns to
    # follow both kinds of advice: description two times in three (the harder one to follow: with one in
    # two, 32.7% Pass@1 at the description level, with two in three 42.3%; exact edits 80.8% both times;
    # docs/LOG.md session 10).
    "small": {"limit": -1, "agent_preset": "small", "plan": "compact",
              "expert": "reference:description+description+exact_edit"},
    # Full scale: an OpenAI-compatible demonstrator on SWE-Gym / SWE-smith style training tasks.
    "full": {"tasks": "swe-gym-train.jsonl", "demonstrator": "openai:gpt-4.1", "expert": "openai:gpt-4.1",
                 "agent_preset": "full", "max_parallel": 16},
}


def _make_demonstrator(config: CollectConfig, tasks: list[Task], seed: int, servers: ExitStack,
                       log_dir: Path) -> Policy:

    try:
        return make_policy(config.demonstrator, tasks, base_url=config.policy_base_url, temperature=0.7,
                           max_new_tokens=1024, seed=seed, batch_size=config.max_parallel, serve=config.serve,
                           servers=servers, log_dir=log_dir, plan=config.plan, p_wrong=config.p_wrong)
    except ValueError as exc:
        raise ValueError(f"collect config: field 'demonstrator' = {config.demonstrator!r}: {exc}") from None


def _make_expert(config: CollectConfig, seed: int) -> Expert:
    try:  # an openai: expert also sees the gold patch and is told not to reveal it verbatim (Phase I)
        expert = make_expert(config.expert, seed, config.expert_base_url, show_gold_patch=True)
    except ValueError as exc:
        raise ValueError(f"collect config: field 'expert' = {config.expert!r}: {exc}") from None
    if expert is None:
        raise ValueError("collect config: field 'expert' = 'none': live collection needs an expert")
    return expert


def load_train_tasks(config: CollectConfig) -> list[Task]:
    tasks = load_source(config.tasks)
    return tasks[: config.limit] if config.limit >= 0 else tasks


def run_collection(config: CollectConfig, out_dir: str | Path, progress: bool = True) -> list[dict[str, Any]]:
    """Stage 01: live collection into out_dir/live and expert-only collection into
    out_dir/expert_only (both resumable); writes out_dir/config.json. Returns one summary
    row per collection: kept, dropped (by reason), expert calls per kept trajectory."""
    for spec in (dict(policy=config.demonstrator), dict(expert=config.expert)):
        require_explicit_oracle("01 collect", config.preset_name, config.allow_oracle, **spec)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(out_dir / "config.json", json.dumps({"collect": asdict(config)}, indent=2) + "\n")
    tasks = load_train_tasks(config)
    agent_config = AgentConfig.preset(config.agent_preset, max_parallel=config.max_parallel, interface=config.interface)
    runs = [("live", config.live_seed, True)]
    if config.expert_only_seed >= 0:
        runs.append(("expert_only", config.expert_only_seed, False))
    summary = []
    for name, seed, ask in runs:
        sub = out_dir / name
        with ExitStack() as servers:  # a served demonstrator's server stops after its collection
            collect(tasks, sub, seed=seed, config=agent_config, expert=_make_expert(config, seed),
                    ask_expert=ask, policy=_make_demonstrator(config, tasks, seed, servers, sub / "server"),
                    progress=progress)
        kept, dropped = read_jsonl(sub / "kept.jsonl"), read_jsonl(sub / "dropped.jsonl")
        calls = [len(r.get("expert_calls", [])) for r in kept]
        summary.append({"collection": name, "seed": seed, "tasks": len(tasks), "kept": len(kept),
                        "dropped": len(dropped), **{f"dropped:{k}": v for k, v in
                                                    Counter(r["reason"] for r in dropped).items()},
                        "expert_calls_per_kept": round(sum(calls) / len(calls), 2) if calls else 0.0,
                        "oracle_demonstrator": any(r.get("oracle_demonstrator") for r in kept)})
    return summary


def steps_table(kept_path: str | Path, index: int = 0, width: int = 100):
    """The steps of one kept trajectory as a table (tool, action, first line of the result)."""
    import pandas as pd


    rows = read_jsonl(Path(kept_path))
    if not rows:
        return pd.DataFrame()
    traj = rows[index]
    return pd.DataFrame([{"step": s["index"], "tool": (s.get("action") or {}).get("name"),
                          "action": Action(s["action"]["name"], s["action"]["arguments"]).summary()[:width]
                          if s.get("action") else "", "result": (s.get("observation") or "").strip()
                          .split("\n", 1)[0][:width]} for s in traj["steps"]]).set_index("step")
