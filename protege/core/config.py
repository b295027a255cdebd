"""The one config mechanism: presets, `key=value` overrides, the presets table.

`resolve(cls, presets, name, overrides)` is how every stage's config class builds itself from a
preset (`AgentConfig.preset`, `SFTRunConfig.preset`, `RLRunConfig.preset`, ...): the preset's
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

    >>> from protege.stages.sft import SFTRunConfig
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
    e.g. the preset's own name), then `overrides` through `apply`. The one empty-value rule of
    every stage: an override of None or [] keeps the preset's value (a notebook parameter left
    at its default, `seeds=[]`); to clear a list, pass the value that means "none" for it.

    >>> from protege.agent.config import PRESETS, AgentConfig
    >>> resolve(AgentConfig, PRESETS, "small", {"step_limit": "5"}).step_limit
    5
    >>> resolve(AgentConfig, PRESETS, "medium")
    Traceback (most recent call last):
    ...
    ValueError: AgentConfig: unknown preset 'medium' (use smoke, small, full)
    """
    if name not in presets:
        raise ValueError(f"{cls.__name__}: unknown preset {name!r} (use {', '.join(presets)})")
    if "preset_name" in {f.name for f in dataclasses.fields(cls)}:
        fixed.setdefault("preset_name", name)  # every resolved config records its preset
    base = cls(**{**dict(presets[name]), **fixed})
    if isinstance(overrides, Mapping):
        overrides = {k: v for k, v in overrides.items() if v is not None and not (isinstance(v, list) and not v)}
    return apply(base, overrides)


def notebook_config(cls: type, preset: str, overrides: Mapping[str, Any] | None = None, **params: Any) -> Any:
    """The config a notebook's parameters cell asks for, the same way for every stage:
    ``cls.preset(preset)`` with the notebook's named parameters (None or [] = the preset's) and
    `overrides` (any other field, dotted keys too). A field set both ways must agree.

    >>> from protege.agent.config import AgentConfig
    >>> notebook_config(AgentConfig, "small", {"max_parallel": 4}, step_limit=None).max_parallel
    4
    >>> notebook_config(AgentConfig, "small", {"step_limit": 4}, step_limit=5)
    Traceback (most recent call last):
    ...
    ValueError: AgentConfig: 'step_limit' is set both as a notebook parameter (5) and in `overrides` (4)
    """
    overrides = dict(overrides or {})
    for key, value in params.items():
        if value is None or (isinstance(value, list) and not value):
            continue
        if key in overrides and overrides[key] != value:
            raise ValueError(f"{cls.__name__}: {key!r} is set both as a notebook parameter ({value!r}) "
                             f"and in `overrides` ({overrides[key]!r})")
        overrides[key] = value
    return cls.preset(preset, **overrides)


def config_hash(config: Any) -> str:
    """8 hex digits of a config's canonical JSON (a config dataclass, a dict, or a config.json
    path): the same settings, the same hash. The one stamp of runs, checkpoints and figures.

    >>> from protege.agent.config import AgentConfig
    >>> config_hash(AgentConfig.preset("small")) == config_hash(AgentConfig.preset("small")), len(config_hash(AgentConfig()))
    (True, 8)
    >>> config_hash({"b": 1, "a": [1, 2]}) == config_hash({"a": [1, 2], "b": 1})
    True
    """
    from pathlib import Path

    if isinstance(config, str | Path):
        config = json.loads(Path(config).read_text(encoding="utf-8"))
    data = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:8]
