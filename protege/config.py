"""The one config mechanism: presets, `key=value` overrides, the presets table.

`resolve(cls, presets, name, overrides)` is how every stage's config class builds itself from a
preset (`AgentConfig.preset`, `SFTRunConfig.preset`, `RLRunConfig.from_preset`, ...): the preset's
values, then the overrides, each converted to the field's declared type, a dotted key setting one
entry of a dict field, an unknown key refused by name. A command-line value is JSON when it parses
as JSON, else a Python literal, else the text itself, so ``grade=False``, ``grade=false``,
``seeds=[0,1]``, ``lambda_loop=0.2`` and ``model=runs/x/merged`` all mean what they say
(``--set grade=False`` once arrived as the truthy string 'False')."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import types
import typing
from collections.abc import Mapping, Sequence
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


def _convert(cls_name: str, key: str, kind: Any, value: Any) -> Any:
    """`value` as the declared type `kind` of field `key` (from a string, JSON or a literal)."""
    if isinstance(value, str) and kind is not str and kind is not Any:
        value = parse_value(value)
    origin = typing.get_origin(kind)
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    if value is None or kind is Any:
        return value
    if origin in (typing.Union, types.UnionType) and len(args) == 1:  # X | None
        return _convert(cls_name, key, args[0], value)
    if kind is bool and not isinstance(value, bool):
        words = {"1": True, "0": False, "true": True, "false": False, "yes": True, "no": False}
        if str(value).lower() not in words:
            raise ValueError(f"{cls_name}: field {key!r} is true or false, not {value!r}")
        return words[str(value).lower()]
    if kind in (int, float, str):
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if kind is str:
            if number:
                return str(value)  # e.g. model=135 stays a name
            fits = isinstance(value, str)
        else:
            fits = number and (kind is float or isinstance(value, int))
        if not fits:
            raise ValueError(f"{cls_name}: field {key!r} is {kind.__name__}, not {value!r}")
        return float(value) if kind is float else value
    if (origin or kind) in (tuple, list) and isinstance(value, list | tuple):
        return (origin or kind)(value)
    if (origin or kind) is dict and not isinstance(value, Mapping):
        raise ValueError(f"{cls_name}: field {key!r} is a dict, not {value!r}")
    return value


def apply(config: Any, overrides: Mapping[str, Any] | Sequence[str] | None = None) -> Any:
    """A copy of the dataclass `config` with overrides: a dict, or ``key=value`` strings. A value is
    converted to the field's type; ``field.key`` sets one entry of a dict field; an unknown key
    raises ValueError naming the class, the key and the known fields.

    >>> from protege.sft import SFTRunConfig
    >>> c = apply(SFTRunConfig.preset("smoke"), ["max_steps=3", "bf16=False", "learning_rate=1e-4"])
    >>> c.max_steps, c.bf16, c.learning_rate
    (3, False, 0.0001)
    >>> apply(c, {"max_stepz": 3})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: SFTRunConfig: unknown field 'max_stepz' (fields: preset_name, dataset, model, ...)
    """
    cls = type(config)
    items = parse_assignments(overrides) if overrides is not None and not isinstance(overrides, Mapping) else dict(overrides or {})
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    values: dict[str, Any] = {}
    for key, value in items.items():
        head, dot, entry = key.partition(".")
        if head not in names:
            raise ValueError(f"{cls.__name__}: unknown field {head!r} (fields: {', '.join(names)})")
        if dot:
            if typing.get_origin(hints[head]) is not dict and hints[head] is not dict:
                raise ValueError(f"{cls.__name__}: {key!r}: field {head!r} is not a dict")
            merged = dict(values.get(head, getattr(config, head)) or {})
            merged[entry] = parse_value(value) if isinstance(value, str) else value
            values[head] = merged
        else:
            values[head] = _convert(cls.__name__, head, hints[head], value)
    return dataclasses.replace(config, **values)


def resolve(cls: type, presets: Mapping[str, Mapping[str, Any]], name: str,
            overrides: Mapping[str, Any] | Sequence[str] | None = None, **fixed: Any) -> Any:
    """`cls` at preset `name` (its `presets[name]` values over the class defaults, plus `fixed`,
    e.g. the preset's own name), then `overrides` through `apply`.

    >>> from protege.agent import PRESETS, AgentConfig
    >>> resolve(AgentConfig, PRESETS, "small", {"step_limit": "5"}).step_limit
    5
    >>> resolve(AgentConfig, PRESETS, "medium")
    Traceback (most recent call last):
    ...
    ValueError: AgentConfig: unknown preset 'medium' (use smoke, small, full)
    """
    if name not in presets:
        raise ValueError(f"{cls.__name__}: unknown preset {name!r} (use {', '.join(presets)})")
    base = cls(**{**dict(presets[name]), **fixed})
    return apply(base, overrides)


def config_hash(config: Any) -> str:
    """8 hex digits of the config's canonical JSON: the same settings, the same hash.

    >>> from protege.agent import AgentConfig
    >>> config_hash(AgentConfig.preset("small")) == config_hash(AgentConfig.preset("small")), len(config_hash(AgentConfig()))
    (True, 8)
    """
    data = dataclasses.asdict(config)
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:8]


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
              "temperature", "max_new_tokens", "step_limit", "scale_rewards", "lambda_collab", "use_vllm"),
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
