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
