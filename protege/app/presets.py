"""Every stage's scale knobs on one screen: the table `protege presets` prints and the README
shows. It reads the stage config classes themselves, so it can never disagree with a run."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from protege.agent.config import AgentConfig
from protege.stages.collect import CollectConfig
from protege.stages.evaluate_config import EvalConfig
from protege.stages.insert_datasets import DataConfig
from protege.stages.rl_config import RLRunConfig
from protege.stages.sft_config import SFTRunConfig

# The scale knobs of every stage, one row each: what `smoke` / `small` / `full` change (the presets
# differ only in these sizes, never in logic). Each stage keeps its own PRESETS dict beside its
# config class; this table reads them through the classes, so it can never disagree with a run.
SCALE_KNOBS: dict[str, tuple[str, ...]] = {
    "agent": ("step_limit", "max_context_tokens", "max_parallel", "cost_budget_usd"),
    "01 collect": ("tasks", "limit", "demonstrator", "plan", "expert"),
    "02 insert": ("tokenizer", "max_length", "strategies"),
    "03 sft": ("model", "mode", "epochs", "max_steps", "max_length", "per_device_batch", "grad_accum",
               "learning_rate"),
    "04 rl": ("model", "tasks", "expert", "backend", "task_sample", "tasks_per_step", "num_generations", "max_steps", "learning_rate", "use_lora",
              "temperature", "max_new_tokens", "step_limit", "agent_overrides", "scale_rewards", "use_vllm"),
    "05 evaluate": ("tasks", "limit", "seeds", "step_limit", "repeat_limit", "max_parallel", "max_new_tokens", "expert", "serve"),
}


# stage -> its config class (each built by `Cls.preset(name)`)
STAGE_CONFIGS: dict[str, type] = {
    "agent": AgentConfig, "01 collect": CollectConfig, "02 insert": DataConfig, "03 sft": SFTRunConfig,
    "04 rl": RLRunConfig, "05 evaluate": EvalConfig,
}


def stage_config(stage: str, preset: str) -> Any:
    """The resolved config of one stage of SCALE_KNOBS at a preset."""
    if stage not in STAGE_CONFIGS:
        raise ValueError(f"unknown stage {stage!r} (use {', '.join(STAGE_CONFIGS)})")
    return STAGE_CONFIGS[stage].preset(preset)


def presets_table(presets: Sequence[str] = ("smoke", "small", "full")) -> list[dict[str, Any]]:
    """Rows {stage, knob, <preset>: value} of every stage's scale knobs: the presets on one screen
    (`protege presets`, the README's table).

    >>> rows = presets_table()
    >>> next(r for r in rows if (r["stage"], r["knob"]) == ("03 sft", "mode"))
    {'stage': '03 sft', 'knob': 'mode', 'smoke': 'lora', 'small': 'full', 'full': 'full'}
    """
    rows = []
    for stage, knobs in SCALE_KNOBS.items():
        configs = {p: stage_config(stage, p) for p in presets}
        for knob in knobs:
            values = {p: getattr(configs[p], knob) for p in presets}
            rows.append({"stage": stage, "knob": knob,
                         **{p: list(v) if isinstance(v, tuple) else v for p, v in values.items()}})
    return rows


def presets_markdown(presets: Sequence[str] = ("smoke", "small", "full")) -> str:
    """presets_table as a markdown table."""
    def cell(value: Any) -> str:
        text = json.dumps(value) if isinstance(value, list | dict) else str(value)
        return text.replace("|", "\\|")

    lines = ["| stage | knob | " + " | ".join(presets) + " |", "|---|---|" + "---|" * len(presets)]
    lines += [f"| {r['stage']} | {r['knob']} | " + " | ".join(cell(r[p]) for p in presets) + " |"
              for r in presets_table(presets)]
    return "\n".join(lines)
