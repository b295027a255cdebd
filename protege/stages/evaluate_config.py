"""Stage 05's settings: the evaluation conditions (protégé x expert x ask policy), their resolution
against a run folder, and the smoke / small / full presets."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from protege.core.config import resolve
from protege.models.factory import ORACLE_POLICIES

_NAME_RE = re.compile(r"^[A-Za-z0-9_.+-]+$")  # condition names are folder names


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
    interface: str = "tool"  # how the protégé asks: tool (ask_expert) | token (<<collaborate>>); AgentConfig.interface
    step_limit: int = 10  # actions per episode; -1 = the agent preset's
    # The same step this many times in a row ends an episode ("repeat_limit"); -1 = never (AgentConfig).
    # At `small`, 11: an episode is a loop by the paper's metric (a run of more than 10 identical base
    # commands) by then, and in 11 recorded evaluations at 20 steps none of the 77 episodes that got
    # there resolved (docs/LOG.md 2026-12-07, session 26); the steps after it were a fifth of all steps.
    repeat_limit: int = -1
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
    # Real repositories (task files of SWE-bench rows, e.g. an out-of-distribution evaluation) are
    # cloned from here: a path or URL with {repo}, {owner}, {name} ("" = GitHub; bundled tasks need none)
    mirror_template: str = ""
    runner: str = "sandbox"  # how patches are graded: sandbox (bundled) | swebench-local (real pure-Python rows)
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
    "small": {"limit": -1, "seeds": [0], "agent_preset": "small", "step_limit": 20, "repeat_limit": 11, "max_parallel": 52,
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


def unfill(spec: str, run_dir: str | Path) -> str:
    """The inverse of `_fill`.

    >>> unfill("transformers:runs/a/03_sft/merged", "runs/a/")
    'transformers:{run_dir}/03_sft/merged'
    """
    return spec.replace(str(run_dir).rstrip("/"), "{run_dir}") if spec else spec


def conditions_table(conditions: Sequence[Condition]):
    """Conditions (e.g. from `resolve_conditions`: what runs, what is skipped and why) as a DataFrame."""
    import pandas as pd

    return pd.DataFrame([asdict(c) for c in conditions]).set_index("name")
