"""Notebook parameters of the pipeline: `key=value` assignments, sweep grids and their point ids,
what a notebook's parameters cell declares, and which notebook a parameter goes to."""

from __future__ import annotations

import ast
import copy
import itertools
import json
import re
from pathlib import Path
from typing import Any

from protege.core.config import parse_assignments as parse
from protege.core.config import parse_value

PRESETS = ("smoke", "small", "full")


AUTO_PARAMETERS = ("preset", "run_dir", "run_id", "sweep_dir")  # set by the pipeline, never by -p


class PipelineError(RuntimeError):
    """A notebook failed, or the pipeline was asked for something inconsistent."""


def parse_assignments(items: list[str] | None) -> dict[str, Any]:
    """``key=value`` strings (values through `parse_value`).

    >>> parse_assignments(["lambda_loop=0.2", "04:overrides.beta=0.05", "model=smollm2-135m"])
    {'lambda_loop': 0.2, '04:overrides.beta': 0.05, 'model': 'smollm2-135m'}
    """

    try:
        return parse(items, flag="--param")
    except ValueError as exc:
        raise PipelineError(str(exc)) from None


def parse_grid(items: list[str] | None) -> dict[str, list[Any]]:
    """``key=v1,v2,...`` strings into a grid (scalar values; comma-separated).

    >>> parse_grid(["lambda_loop=0,0.2", "lambda_collab=0.05"])
    {'lambda_loop': [0, 0.2], 'lambda_collab': [0.05]}
    """
    grid: dict[str, list[Any]] = {}
    for item in items or []:
        key, sep, values = item.partition("=")
        if not sep or not values.strip():
            raise PipelineError(f"expected key=v1,v2,..., got {item!r}")
        grid[key.strip()] = [parse_value(v.strip()) for v in values.split(",")]
    return grid


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, the last key varying fastest.

    >>> grid_points({"a": [0, 1], "b": ["x", "y"]})
    [{'a': 0, 'b': 'x'}, {'a': 0, 'b': 'y'}, {'a': 1, 'b': 'x'}, {'a': 1, 'b': 'y'}]
    """
    if not grid or any(not isinstance(v, (list, tuple)) or not v for v in grid.values()):
        raise PipelineError(f"a sweep grid needs at least one parameter, each with a non-empty list: {grid}")
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:g}"
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def point_id(params: dict[str, Any]) -> str:
    """Folder name of a sweep point: ``key=value`` joined by commas, other characters as ``_``.

    >>> point_id({"lambda_loop": 0.2, "lambda_collab": 0.0})
    'lambda_loop=0.2,lambda_collab=0'
    >>> point_id({"04:overrides.beta": 0.05, "model": "a/b c"})
    '04_overrides.beta=0.05,model=a_b_c'
    """
    text = ",".join(f"{k}={_fmt(v)}" for k, v in params.items())
    return re.sub(r"[^A-Za-z0-9_.+=,-]", "_", text)


def declared_parameters(notebook: str | Path) -> dict[str, Any]:
    """Names assigned in the notebook's `parameters` cell, with their defaults (None when a
    default is not a literal); {} without such a cell."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    cell = next((c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])), None)
    if cell is None:
        return {}
    try:
        tree = ast.parse(cell.source)
    except SyntaxError:  # IPython syntax in the cell: fall back on papermill's own reading
        import papermill as pm

        return dict.fromkeys(pm.inspect_notebook(str(notebook)))
    out: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            names, value = [t.id for t in node.targets if isinstance(t, ast.Name)], node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            names, value = [node.target.id], node.value
        else:
            continue
        try:
            default = ast.literal_eval(value)
        except (ValueError, SyntaxError, TypeError):
            default = None
        out.update(dict.fromkeys(names, default))
    return out


def _targets(key: str, notebook: str) -> str | None:
    """The parameter path a key sets in this notebook (stem such as "04_rl"), or None."""
    target, sep, name = key.partition(":")
    if not sep:
        return key
    if notebook == target or notebook.split("_", 1)[0] == target:
        return name
    return None


def route_parameters(declared: dict[str, Any], notebook: str, params: dict[str, Any]) -> tuple[dict[str, Any], list]:
    """The parameters one notebook gets from `params`, and the keys it used.

    >>> declared = {"preset": "smoke", "overrides": {"epochs": 1}, "lr": 1e-4}
    >>> route_parameters(declared, "03_sft", {"lr": 0.1, "overrides.seed": 2, "04:overrides.beta": 0.1, "x": 1})
    ({'lr': 0.1, 'overrides': {'epochs': 1, 'seed': 2}}, ['lr', 'overrides.seed'])
    >>> route_parameters(declared, "04_rl", {"04:overrides.beta": 0.1})
    ({'overrides': {'epochs': 1, 'beta': 0.1}}, ['04:overrides.beta'])
    """
    out: dict[str, Any] = {}
    used = []
    # whole values first, then dotted entries into them
    for key in sorted(params, key=lambda k: "." in (_targets(k, notebook) or "")):
        path = _targets(key, notebook)
        if path is None:
            continue
        base, _, rest = path.partition(".")
        if base not in declared:
            continue
        if rest:
            current = copy.deepcopy(out.get(base, declared[base]))
            if not isinstance(current, dict):
                raise PipelineError(f"{notebook}: {key} sets an entry of {base}, whose default is not a dict")
            node = current
            *parents, leaf = rest.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = params[key]
            out[base] = current
        else:
            out[base] = params[key]
        used.append(key)
    return out, sorted(used)
