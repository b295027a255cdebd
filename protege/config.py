"""`key=value` overrides as every command line of the package reads them: one parser.

A value is JSON when it parses as JSON, else a Python literal, else the text itself, so
``grade=False``, ``grade=false``, ``seeds=[0,1]``, ``lambda_loop=0.2`` and
``model=runs/x/merged`` all mean what they say (``--set grade=False`` once arrived as the
truthy string 'False')."""

from __future__ import annotations

import ast
import json
from collections.abc import Sequence
from typing import Any


def parse_value(text: str) -> Any:
    """A command-line value: JSON or a Python literal when it parses as one, else the string.

    >>> parse_value("0.2"), parse_value("3"), parse_value("true"), parse_value("False"), parse_value("small")
    (0.2, 3, True, False, 'small')
    >>> parse_value('{"epochs": 2}'), parse_value("[1, 2]"), parse_value("None")
    ({'epochs': 2}, [1, 2], None)
    """
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def parse_assignments(items: Sequence[str] | None, flag: str = "--set") -> dict[str, Any]:
    """``key=value`` strings, values through `parse_value`.

    >>> parse_assignments(["limit=3", "seeds=[0,1]", "base_policy=transformers:tiny", "grade=False"])
    {'limit': 3, 'seeds': [0, 1], 'base_policy': 'transformers:tiny', 'grade': False}
    """
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{flag} {item!r}: expected key=value")
        out[key.strip()] = parse_value(raw.strip())
    return out


# The scale knobs of every stage, one row each: what `smoke` / `small` / `full` change (the presets
# differ only in these sizes, never in logic). Each stage keeps its own PRESETS dict beside its
# config class; this table reads them through the classes, so it can never disagree with a run.
SCALE_KNOBS: dict[str, tuple[str, ...]] = {
    "agent": ("step_limit", "max_context_tokens", "max_parallel", "cost_budget_usd"),
    "01 collect": ("tasks", "limit", "demonstrator", "plan", "expert"),
    "02 insert": ("tokenizer", "max_length", "strategies"),
    "03 sft": ("model", "mode", "epochs", "max_steps", "max_length", "per_device_batch", "grad_accum",
               "learning_rate"),
    "04 rl": ("model", "task_limit", "tasks_per_step", "num_generations", "max_steps", "learning_rate", "use_lora",
              "max_new_tokens", "step_limit", "scale_rewards", "lambda_collab", "use_vllm"),
    "05 evaluate": ("tasks", "limit", "seeds", "step_limit", "max_parallel", "max_new_tokens", "expert", "serve"),
}


# stage -> (module, config class, its preset constructor)
STAGE_CONFIGS: dict[str, tuple[str, str, str]] = {
    "agent": ("protege.agent", "AgentConfig", "preset"),
    "01 collect": ("protege.collect", "CollectConfig", "preset"),
    "02 insert": ("protege.insert_calls", "DataConfig", "preset"),
    "03 sft": ("protege.sft", "SFTRunConfig", "preset"),
    "04 rl": ("protege.rl", "RLRunConfig", "from_preset"),
    "05 evaluate": ("protege.evaluate", "EvalConfig", "preset"),
}


def stage_config(stage: str, preset: str) -> Any:
    """The resolved config of one stage of SCALE_KNOBS at a preset (its class's own preset rules;
    imported here, so that importing protege.config loads no stage)."""
    import importlib

    if stage not in STAGE_CONFIGS:
        raise ValueError(f"unknown stage {stage!r} (use {', '.join(STAGE_CONFIGS)})")
    module, cls, constructor = STAGE_CONFIGS[stage]
    return getattr(getattr(importlib.import_module(module), cls), constructor)(preset)


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
