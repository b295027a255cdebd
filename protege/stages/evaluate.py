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
import re
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from protege.agent.invocation import parse_invocation
from protege.agent.loop import AgentConfig, run_episodes
from protege.core.config import parse_assignments, resolve
from protege.core.loop_detection import has_long_run, repeats_in_window
from protege.core.metrics import LOOP_THRESHOLD, paired_difference, summarize
from protege.core.progress import Progress
from protege.core.trajectory import TrajectoryWriter, atomic_write, completed_ids, load_trajectory
from protege.env import harness
from protege.env.base import EnvConfig
from protege.env.factory import make_environment
from protege.env.grading import grade, grade_predictions, load_predictions, read_report, write_report
from protege.models.engine import dtype_policy
from protege.models.factory import ORACLE_POLICIES, is_oracle, make_expert
from protege.models.factory import make_policy as build
from protege.models.policies import TransformersPolicy
from protege.tasks.bundled import PINPOINTED, TIERS, load_source

PER_INSTANCE_COLUMNS = (
    "condition", "seed", "instance_id", "resolved", "exit_status", "steps", "expert_calls", "format_errors",
    "protege_prompt_tokens", "protege_completion_tokens", "expert_input_tokens", "expert_output_tokens",
    "expert_token_share", "cost_usd", "loop", "repeats", "oracle", "tier", "mutation",
)
# paired.csv: one row per question of KEY_PAIRS and metric (metrics.paired_difference)
PAIRED_COLUMNS = ("question", "a_condition", "b_condition", "metric", "n", "a", "b", "diff", "lo", "hi", "b_better",
                  "a_better", "p_sign")
# metrics_by_tier.csv / metrics_by_mutation.csv: one row per condition x tier (x mutation kind)
GROUP_COLUMNS = ("condition", "group", "n_tasks", "pass1_mean", "pass1_lo", "pass1_hi", "expert_calls_per_task",
                 "expert_token_share", "loop_rate", "repeats_per_task", "steps_per_task", "oracle")
METRICS_COLUMNS = (
    "condition", "policy", "expert", "invocation", "n_tasks", "n_seeds", "pass1_mean", "pass1_lo", "pass1_hi",
    "expert_calls_per_task", "expert_token_share", "loop_rate", "repeat_rate", "repeats_per_task", "steps_per_task",
    "cost_per_task", "format_error_rate", "step_limit_rate", "format_exit_rate", "oracle", "skipped",
)
_NAME_RE = re.compile(r"^[A-Za-z0-9_.+-]+$")  # condition names are folder names
# Settings that define what a seed folder holds: a re-run under other values refuses to mix them in.
IDENTITY_KEYS = ("policy", "expert", "invocation", "block_policy_asks", "seed", "tasks", "agent_preset",
                 "step_limit", "max_new_tokens", "temperature")


# ---------------------------------------------------------------------------------- configuration


@dataclass
class Condition:
    """One way of running the agent. Specs may use ``{run_dir}`` (the pipeline run folder) and
    ``{best}`` (the best trained model's policy spec, resolved at run time)."""

    name: str  # folder name and table key: letters, digits, _ . + -
    policy: str  # scripted (ORACLE) | transformers:tiny|smollm2-135m|DIR|HUB_ID | openai:MODEL | {best}
    expert: str = "reference"  # none | reference (ORACLE) | noisy:P[:INNER] | openai:MODEL
    invocation: str = "learned"  # learned | never | every:N | random:P | on_loop (protege.agent.invocation)
    block_policy_asks: bool = False  # with a baseline: the policy's own asks are refused
    notes: str = ""  # what the condition is; ORACLE components are named here
    group: str = "main"  # main | invocation | data | expert (figures group rows by it)
    skipped: str = ""  # set at resolution: why the condition was not run ("" = it runs)
    run_as: str = ""  # set at resolution: an earlier condition with identical settings whose runs are reused

    def key(self) -> tuple:
        """What makes two conditions the same run."""
        return (self.policy, self.expert, self.invocation, self.block_policy_asks and self.invocation != "learned")


@dataclass
class EvalConfig:
    """Stage 05 settings. Presets (`preset`) differ only in scale, never in logic."""

    preset_name: str = "smoke"  # the preset these values started from (informational)
    tasks: str = "bundled:test"  # held-out tasks: bundled:test | task file | hub dataset name
    limit: int = 2  # first N tasks; -1 = all
    seeds: list[int] = field(default_factory=lambda: [0])  # one run per seed and condition
    agent_preset: str = "smoke"  # protege.agent.loop.AgentConfig preset (budgets, context, batch size)
    step_limit: int = 10  # actions per episode; -1 = the agent preset's
    max_parallel: int = 4  # episodes stepped together = generation batch size
    max_new_tokens: int = 64  # tokens generated per step
    temperature: float = 0.7  # sampling temperature (> 0 so that seeds differ; 0 = greedy)
    device: str = "cpu"  # transformers policies: cpu | cuda
    # transformers:MODEL policies generate in-process ("off") or behind a server launched for the
    # condition (protege.models.serving): "vllm" (prefix caching, continuous batching, max_parallel requests
    # in flight) or "transformers" (transformers serve, the CPU stand-in). Launch line and log are
    # kept in the condition's seed folder.
    serve: str = "off"
    base_policy: str = "transformers:tiny"  # the protégé before training
    sft_policy: str = "transformers:{run_dir}/03_sft/merged"  # SFT on live-collaboration data
    sft_inserted_policy: str = "transformers:{run_dir}/03_sft_inserted/merged"  # SFT on inserted calls
    rl_policy: str = "transformers:{run_dir}/04_rl/final"  # SFT + RL
    expert_agent_policy: str = "scripted"  # the expert acting alone; scripted = ORACLE stand-in
    expert: str = "reference"  # the expert of the "+expert" conditions; reference = ORACLE
    invocation_ablations: list[str] = field(default_factory=lambda: ["never", "every:5", "random:0.2", "learned"])
    expert_levels: list[str] = field(default_factory=list)  # reference-expert hint levels of the SFT protégé's
    # expert-strength curve: a condition sft+expert-<level> each (sft+expert itself uses `expert`)
    noisy_p: float = 0.3  # noisy-expert condition: probability that a reply misleads; -1 = no such condition
    conditions: list[Any] = field(default_factory=list)  # [] = default_conditions; names of defaults and/or Condition dicts
    policy_base_url: str = "http://127.0.0.1:8000/v1"  # endpoint of openai: policies (e.g. vLLM)
    expert_base_url: str = "https://api.openai.com/v1"  # endpoint of openai: experts
    backend: str = "local"  # environment of episodes and grading: local | docker
    grade: bool = True  # grade every patch with protege.env.grading (fresh environment)
    harness: str = "off"  # swebench Docker harness per condition/seed: off | dry_run | run (its verdict wins)
    harness_namespace: str = ""  # image namespace of a registry mirror ("" = swebench's)
    harness_workers: int = 4  # parallel harness containers
    n_boot: int = 2000  # bootstrap resamples of the Pass@1 interval

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> EvalConfig:
        """A scale preset with field overrides; an override of None or [] keeps the preset's value.

        >>> c = EvalConfig.preset("small", seeds=[], limit=4)
        >>> c.seeds, c.limit, c.base_policy, EvalConfig.preset("full").seeds
        ([0], 4, 'transformers:smollm2-135m', [0, 1, 2])
        """

        return resolve(cls, PRESETS, name, overrides, preset_name=name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PRESETS: dict[str, dict[str, Any]] = {
    # tests / CI: a tiny random model, 2 tasks, 1 seed, minutes on a laptop CPU
    "smoke": {"limit": 2, "seeds": [0], "agent_preset": "smoke", "step_limit": 10, "max_parallel": 4,
              "max_new_tokens": 64, "base_policy": "transformers:tiny"},
    # laptop CPU: SmolLM2-135M-Instruct on all 52 held-out bundled tasks (2 held-out packages), one
    # greedy seed, the compact agent interface (episodes of ~1k tokens), all 52 episodes stepped as one
    # batch in bf16 with a static KV cache (a condition takes 3-6 min here, docs/LOG.md 2026-12-02).
    # The base model, the SFT protégé alone, with the expert at each hint level (location,
    # description = "sft+expert", exact edit: the expert-strength curve), after RL. Compact episodes
    # take 2-4 steps when they go well; 20 steps leave room to flail, so that repeating a refused call
    # (a loop: a run of more than 10 identical base commands, paper Fig. 6) is measured rather than cut
    # off (with 6 it could not happen, docs/LOG.md 2026-12-07). base+expert, expert-as-agent (the scripted ORACLE
    # reference, ~3 min) and the ablations are `make ablations`, to keep `make small` within an hour.
    "small": {"limit": -1, "seeds": [0], "agent_preset": "small", "step_limit": 20, "max_parallel": 52,
              "max_new_tokens": 128, "temperature": 0.0, "base_policy": "transformers:smollm2-135m",
              "expert_levels": ["location", "exact_edit"],
              "conditions": ["base", "sft", "sft+expert", "sft+expert-location", "sft+expert-exact_edit",
                             "sft+rl+expert"]},
    # GPU box: Qwen2.5-Coder-7B-Instruct on all of SWE-bench Verified, an API expert, swebench's harness.
    # The paper's budget: 75 steps, $2 per task (agent preset "full").
    "full": {"tasks": "princeton-nlp/SWE-bench_Verified", "limit": -1, "seeds": [0, 1, 2], "agent_preset": "full",
             "step_limit": 75, "max_parallel": 32, "max_new_tokens": 1024, "device": "cuda", "serve": "vllm",
             "base_policy": "transformers:Qwen/Qwen2.5-Coder-7B-Instruct", "expert_agent_policy": "openai:gpt-4.1",
             "expert": "openai:gpt-4.1", "expert_base_url": "https://api.openai.com/v1", "backend": "docker",
             "grade": False, "harness": "run"},
}


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``key=value`` strings (protege.core.config.parse_assignments).

    >>> parse_overrides(["limit=3", "grade=False"])
    {'limit': 3, 'grade': False}
    """

    return parse_assignments(items)


def ablation_name(invocation: str) -> str:
    """Folder-safe condition name of an invocation ablation.

    >>> ablation_name("every:5"), ablation_name("random:0.2"), ablation_name("never")
    ('ablate-every5', 'ablate-random0.2', 'ablate-never')
    """
    return "ablate-" + invocation.replace(":", "")


def default_conditions(config: EvalConfig) -> list[Condition]:
    """The preset's condition list (see the module docstring), before resolution.

    >>> [c.name for c in default_conditions(EvalConfig.preset("small"))]  # doctest: +NORMALIZE_WHITESPACE
    ['base', 'base+expert', 'sft', 'sft+expert', 'sft+rl+expert', 'sft+rl', 'expert-as-agent', 'ablate-never', 'ablate-every5',
     'ablate-random0.2', 'ablate-learned', 'sft+expert-location', 'sft+expert-exact_edit', 'sft-inserted+expert',
     'self-expert', 'noisy-expert']
    """
    ex = config.expert
    agent_note = ("ORACLE: the scripted policy reads the gold patch (an upper reference, not a model)"
                  if config.expert_agent_policy in ORACLE_POLICIES else "the expert model acting alone")
    conds = [
        Condition("base", config.base_policy, "none", notes="the protégé before training, alone (no ask_expert)"),
        Condition("base+expert", config.base_policy, ex, notes="the untrained protégé with the expert"),
        Condition("sft", config.sft_policy, "none", notes="the SFT protégé alone (no ask_expert)"),
        Condition("sft+expert", config.sft_policy, ex, notes="after SFT on live-collaboration data"),
        Condition("sft+rl+expert", config.rl_policy, ex, notes="after SFT and RL"),
        Condition("sft+rl", config.rl_policy, "none", notes="after SFT and RL, alone (no ask_expert)"),
        Condition("expert-as-agent", config.expert_agent_policy, "none", notes=agent_note),
    ]
    for inv in config.invocation_ablations:
        block = inv != "learned"
        who = "the policy decides (same run as the best main condition)" if not block else \
            f"baseline {inv} decides alone (the policy's own asks are refused)"
        conds.append(Condition(ablation_name(inv), "{best}", ex, inv, block, f"best trained model; {who}",
                               "invocation"))
    for level in config.expert_levels:
        conds.append(Condition(f"sft+expert-{level}", config.sft_policy, f"reference:{level}",
                               notes=f"after SFT; ORACLE reference expert at hint level {level}", group="strength"))
    conds.append(Condition("sft-inserted+expert", config.sft_inserted_policy, ex,
                           notes="after SFT on post-hoc inserted expert calls (compare sft+expert)", group="data"))
    conds.append(Condition("self-expert", "{best}", "policy:" + config.sft_policy.partition(":")[2],
                           notes="best trained model; the SFT protégé itself answers as the expert (not an oracle)",
                           group="expert"))
    if config.noisy_p >= 0:
        conds.append(Condition("noisy-expert", "{best}", f"noisy:{config.noisy_p}",
                               notes=f"best trained model; the expert misleads with p = {config.noisy_p}",
                               group="expert"))
    return conds


def model_missing(policy: str) -> str:
    """Why a policy's local model folder cannot be loaded ("" when it can, or the spec names no
    folder: tiny, smollm2-135m, a hub id, scripted, openai:).

    >>> model_missing("transformers:/nonexistent/03_sft/merged")
    'model folder /nonexistent/03_sft/merged does not exist'
    >>> model_missing("transformers:tiny"), model_missing("transformers:Qwen/Qwen2.5-Coder-7B-Instruct")
    ('', '')
    """
    kind, _, arg = policy.partition(":")
    if kind != "transformers" or arg in ("tiny", "smollm2-135m"):
        return ""
    path = Path(arg).expanduser()
    looks_local = path.is_absolute() or arg.startswith((".", "~")) or arg.count("/") != 1
    if not looks_local and not path.exists():
        return ""  # owner/name: a hub id, fetched where a hub is reachable
    if not path.is_dir():
        return f"model folder {arg} does not exist"
    if not (path / "config.json").exists():
        return f"model folder {arg} has no config.json (training not finished?)"
    return ""


def resolve_conditions(config: EvalConfig, run_dir: str | Path) -> list[Condition]:
    """Concrete conditions: defaults or the configured ones, ``{run_dir}`` / ``{best}`` filled
    in, ``noisy:P`` given the configured expert inside, missing models marked `skipped`, and
    repeats of an earlier condition's exact settings marked `run_as` (run once)."""
    defaults = {c.name: c for c in default_conditions(config)}
    chosen: list[Condition] = []
    for item in config.conditions or list(defaults):
        if isinstance(item, Condition):
            chosen.append(Condition(**asdict(item)))
        elif isinstance(item, dict):
            chosen.append(Condition(**item))
        elif item in defaults:
            chosen.append(defaults[item])
        else:
            raise ValueError(f"eval config: condition {item!r} is neither a default ({', '.join(defaults)}) "
                             "nor a Condition dict")
    names = [c.name for c in chosen]
    if bad := [n for n in names if not _NAME_RE.match(n)] or sorted({n for n in names if names.count(n) > 1}):
        raise ValueError(f"eval config: condition names must be unique and folder-safe: {bad}")
    fill = partial(_fill, run_dir=str(run_dir))
    best, best_reason = "", ""
    for spec in (config.rl_policy, config.sft_policy):
        if not model_missing(fill(spec)):
            best = fill(spec)
            break
    else:
        best_reason = (f"no trained model yet ({fill(config.rl_policy).partition(':')[2]} and "
                       f"{fill(config.sft_policy).partition(':')[2]} missing)")
    seen: dict[tuple, str] = {}
    for c in chosen:
        c.policy = (best or c.policy) if c.policy == "{best}" else fill(c.policy)
        c.expert = fill(c.expert)
        if c.expert.startswith("noisy:") and c.expert.count(":") == 1:
            c.expert = f"{c.expert}:{config.expert}"
        c.skipped = c.skipped or (best_reason if c.policy == "{best}" else model_missing(c.policy))
        if c.expert.startswith("policy:"):  # a local model as the expert: its folder must exist too
            c.skipped = c.skipped or model_missing("transformers:" + c.expert.partition(":")[2])
        if not c.skipped:
            if c.key() in seen:
                c.run_as = seen[c.key()]
            else:
                seen[c.key()] = c.name
    return chosen


def _fill(spec: str, run_dir: str) -> str:
    return spec.replace("{run_dir}", run_dir.rstrip("/"))


def _unfill(spec: str, run_dir: str | Path) -> str:
    """The inverse of `_fill`.

    >>> _unfill("transformers:runs/a/03_sft/merged", "runs/a/")
    'transformers:{run_dir}/03_sft/merged'
    """
    return spec.replace(str(run_dir).rstrip("/"), "{run_dir}") if spec else spec


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
    overrides: dict[str, Any] = {"max_parallel": config.max_parallel}
    if config.step_limit >= 0:
        overrides["step_limit"] = config.step_limit
    return AgentConfig.preset(config.agent_preset, **overrides)


def _check_identity(run: Path, identity: dict[str, Any]) -> None:
    path = run / "config.json"
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8")).get("identity", {})
        if diff := [f"{k}: {old.get(k)!r} -> {identity[k]!r}" for k in IDENTITY_KEYS if old.get(k) != identity[k]]:
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


def grade_run(run: Path, tasks: list, env_config: Any, model_name: str = "model") -> dict[str, dict]:
    """Grade every prediction of a run folder into its report.json (resumable: see
    grading.grade_predictions). Returns {instance_id: GradeReport dict}."""

    path = run / "report.json"
    entries = read_report(path)
    by_id = {t.instance_id: t for t in tasks}
    preds = load_predictions(run / "preds.jsonl") if (run / "preds.jsonl").exists() else []
    return grade_predictions(
        [p for p in preds if p["instance_id"] in by_id], by_id, entries,
        lambda task, patch, _name: grade(task, patch, env_config, log_dir=run / "grading_logs",
                                         model_name=model_name).to_dict(),
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
                "max_new_tokens": config.max_new_tokens, "temperature": config.temperature}
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
        report = grade_run(run, tasks, env_config, model_name=cond.name)
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
    env_config = EnvConfig(backend=config.backend)
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
    per_instance, metrics = [], []
    for c in conds:
        rows = [] if c.skipped else [{**r, "condition": c.name} for r in results[c.run_as or c.name]]
        per_instance += rows
        summary = summarize(rows, config.n_boot) if rows else {k: math.nan for k in METRICS_COLUMNS}
        # `{run_dir}` back in the specs: two runs of one preset under different run ids give the
        # same bytes (config.json keeps the resolved paths).
        metrics.append({**summary, "condition": c.name, "policy": _unfill(c.policy, run_dir),
                        "expert": _unfill(c.expert, run_dir), "invocation": c.invocation,
                        "oracle": int(is_oracle(c.policy, c.expert)), "skipped": _unfill(c.skipped, run_dir),
                        **({"n_tasks": 0, "n_seeds": 0} if c.skipped else {})})
    by_id = {t.instance_id: t for t in tasks}
    for r in per_instance:
        task = by_id.get(r["instance_id"])
        r["tier"] = (task.difficulty or "-") if task else "-"
        r["mutation"] = str(((task.extra.get("mutation") or {}).get("kind")) or "-") if task else "-"
    write_csv(out_dir / "per_instance.csv", per_instance, PER_INSTANCE_COLUMNS)
    write_csv(out_dir / "metrics.csv", metrics, METRICS_COLUMNS)
    for key in ("tier", "mutation"):
        write_csv(out_dir / f"metrics_by_{key}.csv", group_metrics(per_instance, key, config.n_boot), GROUP_COLUMNS)
    write_csv(out_dir / "paired.csv", paired_comparisons(out_dir, n_boot=config.n_boot), PAIRED_COLUMNS)
    return EvalResult(out_dir, conds, per_instance, metrics)


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


def load_metrics(out_dir: str | Path):
    """metrics.csv as a DataFrame indexed by condition."""
    import pandas as pd

    return pd.read_csv(Path(out_dir) / "metrics.csv", keep_default_na=False, na_values=[""]).set_index("condition")


def resolved_pivot(out_dir: str | Path):
    """Instances x conditions: the resolve rate over seeds (per_instance.csv)."""
    import pandas as pd

    rows = pd.read_csv(Path(out_dir) / "per_instance.csv")
    order = list(dict.fromkeys(rows["condition"]))
    return rows.pivot_table(index="instance_id", columns="condition", values="resolved", aggfunc="mean")[order]


def _read_per_instance(source: str | Path) -> tuple[Path, list[dict[str, str]]]:
    """The rows of a per_instance.csv (or of the one in an evaluation folder), and its path."""
    path = Path(source)
    path = path / "per_instance.csv" if path.is_dir() else path
    if not path.exists():
        raise FileNotFoundError(f"{path}: no per_instance.csv (an evaluation's output, e.g. runs/<run>/05_eval)")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [k for k in ("condition", "instance_id", "resolved", "expert_calls") if k not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing field(s) {', '.join(missing)} (not an evaluation's per_instance.csv?)")
        return path, list(reader)


def _select(path: Path, rows: list[dict[str, str]], condition: str | None) -> tuple[str, list[dict[str, str]]]:
    """One condition's rows (the only one when `condition` is None), or an error naming the file."""
    names = list(dict.fromkeys(r["condition"] for r in rows))
    if condition is None and len(names) == 1:
        condition = names[0]
    if condition not in names:
        raise ValueError(f"{path}: field 'condition' " + (f"has no {condition!r}" if condition else "is ambiguous")
                         + f"; conditions there: {', '.join(names) or 'none'}")
    return condition, [r for r in rows if r["condition"] == condition]


def compare(a: str | Path, b: str | Path, a_condition: str | None = None, b_condition: str | None = None,
            by: str | None = "tier", n_boot: int = 2000) -> list[dict[str, Any]]:
    """Condition B against condition A on the tasks both ran (two per_instance.csv or evaluation
    folders, e.g. two sweep points; a file with one condition needs no name): Pass@1 and expert
    calls per task, B - A with a paired bootstrap interval (metrics.paired_difference), over all
    tasks and per value of `by` (tier, mutation). Separate intervals of two conditions on the same
    tasks overlap even when one wins task after task; the paired interval is much narrower."""
    a_path, a_rows = _read_per_instance(a)
    b_path, b_rows = (a_path, a_rows) if Path(b) in (Path(a), a_path) else _read_per_instance(b)
    return _compare_rows(_select(a_path, a_rows, a_condition), _select(b_path, b_rows, b_condition), by, n_boot)


def _compare_rows(a: tuple[str, list[dict[str, str]]], b: tuple[str, list[dict[str, str]]], by: str | None,
                  n_boot: int) -> list[dict[str, Any]]:

    (a_name, a_rows), (b_name, b_rows) = a, b

    def values(rows, column):
        out: dict[str, list[float]] = {}
        for r in rows:
            if r.get(column, "") != "":
                out.setdefault(r["instance_id"], []).append(float(r[column]))
        return out

    order = (PINPOINTED, *TIERS)  # the difficulty order, then any other value by name
    found = {r.get(by, "-") for r in a_rows + b_rows} if by else set()
    groups = ["all"] + sorted(found, key=lambda g: (order.index(g) if g in order else len(order), g))
    table = []
    for group in groups:
        a_in, b_in = ([r for r in rows if group == "all" or r.get(by, "-") == group] for rows in (a_rows, b_rows))
        for metric, column in (("pass1", "resolved"), ("expert_calls", "expert_calls")):
            d = paired_difference(values(a_in, column), values(b_in, column), n_boot=n_boot)
            table.append({"a_condition": a_name, "b_condition": b_name, "group": group, "metric": metric, **d})
    return table


# (A, B, what B - A measures): the study's questions, each a pair of conditions on the same tasks.
KEY_PAIRS = (
    ("base", "sft", "what SFT buys alone"),
    ("sft", "sft+expert", "what asking the expert adds"),
    ("sft+expert-location", "sft+expert", "descriptions vs locations from the expert"),
    ("sft+expert", "sft+expert-exact_edit", "exact edits vs descriptions from the expert"),
    ("sft+expert", "sft+rl+expert", "what RL changes"),
    ("ablate-random0.2", "ablate-learned", "learned vs random asking"),
    ("ablate-every5", "ablate-learned", "learned vs fixed-interval asking"),
    ("self-expert", "ablate-learned", "a real expert vs the protégé as its own"),
    ("noisy-expert", "ablate-learned", "a reliable vs a misleading expert"),
    ("sft-inserted+expert", "ablate-learned", "live vs post-hoc inserted training data"),
)


def paired_comparisons(out_dir: str | Path, pairs: Sequence[tuple[str, str, str]] = KEY_PAIRS,
                       n_boot: int = 2000) -> list[dict[str, Any]]:
    """One row per metric and pair of `pairs` whose two conditions both ran in out_dir (an
    evaluation folder): B - A in Pass@1 and in expert calls per task over all tasks, paired (`compare`)."""
    path, rows = _read_per_instance(out_dir)
    present = {r["condition"] for r in rows}
    return [{"question": question, **r} for a, b, question in pairs if a in present and b in present
            for r in _compare_rows(_select(path, rows, a), _select(path, rows, b), None, n_boot)]


def comparison_markdown(table: Sequence[dict[str, Any]]) -> str:
    """`compare`'s rows as a markdown table (percent for Pass@1, calls per task otherwise; p to 2 digits)."""
    def fmt(metric: str, x: float) -> str:
        if isinstance(x, float) and math.isnan(x):
            return "-"
        return {"pass1": f"{100 * x:.1f}%", "p": f"{x:.2g}"}.get(metric, f"{x:.2f}")

    head = table[0] if table else {"a_condition": "A", "b_condition": "B"}
    lines = [f"A = {head['a_condition']}, B = {head['b_condition']}; paired 95% bootstrap intervals over tasks,"
             " exact sign test (McNemar for Pass@1) on the tasks where they differ", "",
             "| group | metric | tasks | A | B | B - A [95% CI] | B higher | A higher | sign test p |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in table:
        m = r["metric"]
        lines.append(f"| {r['group']} | {m} | {r['n']} | {fmt(m, r['a'])} | {fmt(m, r['b'])} | "
                     f"{fmt(m, r['diff'])} [{fmt(m, r['lo'])}, {fmt(m, r['hi'])}] | {r['b_better']} | {r['a_better']} | "
                     f"{fmt('p', r['p_sign'])} |")
    return "\n".join(lines)


def conditions_table(conditions: Sequence[Condition]):
    """Conditions (e.g. from `resolve_conditions`: what runs, what is skipped and why) as a DataFrame."""
    import pandas as pd

    return pd.DataFrame([asdict(c) for c in conditions]).set_index("name")
