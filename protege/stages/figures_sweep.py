"""The figures of a sweep over reward weights, from its recorded points only: the heatmap, the
Pareto front of Pass@1 against expert token share, and the RL curves per point."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from protege.core.config import config_hash
from protege.stages.plots import (
    ORACLE_COLOR,
    is_oracle_value,
    ran,
    read_table,
    save_figure,
    setup_plots,
)

# What a sweep point is scored by, first present and run wins (protege.stages.evaluate condition names).
SWEEP_CONDITIONS = ("sft+rl+expert", "ablate-learned", "sft+expert")


def sweep_condition(metrics: Any, condition: str | None = None) -> str | None:
    """The condition a sweep point is scored by: `condition` if given, else the first of
    SWEEP_CONDITIONS that was run, else the first run condition (None when none ran).

    >>> import pandas as pd
    >>> m = pd.DataFrame({"condition": ["base", "sft+rl+expert"], "skipped": ["", ""]})
    >>> sweep_condition(m), sweep_condition(m, "base")
    ('sft+rl+expert', 'base')
    """
    rows = ran(metrics)
    if condition is not None:
        return condition
    names = rows["condition"].astype(str).tolist()
    return next((c for c in SWEEP_CONDITIONS if c in names), names[0] if names else None)


def finished_points(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """The points of <sweep_dir>/sweep.json recorded done, in its order. A pending point's folder
    may still hold a committed record from another machine (a user's sweep replaces it point by
    point), so only the record's status says whose results a folder holds."""
    record = json.loads((Path(sweep_dir) / "sweep.json").read_text(encoding="utf-8"))
    return [p for p in record["points"] if p.get("status", "done") == "done"]


def sweep_table(sweep_dir: str | Path, condition: str | None = None):
    """One row per finished sweep point (`finished_points`): its swept parameters, the scored condition
    and that condition's metrics, from <sweep_dir>/sweep.json and <point>/results/05_eval/metrics.csv."""
    import pandas as pd

    sweep_dir = Path(sweep_dir)
    rows = []
    for point in finished_points(sweep_dir):
        path = sweep_dir / point["id"] / "results" / "05_eval" / "metrics.csv"
        if not path.exists():
            continue
        metrics = pd.read_csv(path)
        name = sweep_condition(metrics, condition)
        hit = ran(metrics)[ran(metrics)["condition"].astype(str) == str(name)]
        if hit.empty:
            continue
        row = hit.iloc[0].to_dict()
        rows.append({"point": point["id"], **point["params"], **row})
    return pd.DataFrame(rows)


def sweep_hash(sweep_dir: str | Path) -> str:
    """Config hash of a sweep: what defines it (preset, grid, base parameters, reused run)."""
    record = json.loads((Path(sweep_dir) / "sweep.json").read_text(encoding="utf-8"))
    return config_hash({k: record.get(k) for k in ("preset", "grid", "base_params", "reuse_from")})


def sweep_heatmap(table: Any, out: str | Path, run_id: str, chash: str, x: str, y: str | None = None,
                  value: str = "pass1_mean") -> Path:
    """Resolve rate (Pass@1 of the scored condition) over two swept parameters (x: columns,
    y: rows); points that differ in other swept parameters are averaged."""
    plt, sns = setup_plots()
    df = read_table(table).copy()
    if y is None:
        df[" "], y = "", " "
    grid = df.pivot_table(index=y, columns=x, values=value, aggfunc="mean").sort_index().sort_index(axis=1)
    fig, ax = plt.subplots(figsize=(1.3 * grid.shape[1] + 2.5, 0.9 * grid.shape[0] + 1.6))
    sns.heatmap(grid, annot=True, fmt=".1%", cmap="viridis", vmin=0, vmax=1, ax=ax,
                cbar_kws={"label": value})
    ax.invert_yaxis()
    cond = ", ".join(sorted(set(df["condition"].astype(str)))) if "condition" in df else ""
    note = _oracle_note(df)
    ax.set_title(f"Resolve rate over the sweep ({cond}){note}", fontsize=10, color=ORACLE_COLOR if note else "black")
    return save_figure(fig, out, run_id, chash)


def _oracle_note(df) -> str:
    """A title suffix when the scored condition reads the gold patch (e.g. the reference expert)."""
    return "\nORACLE: expert reads the gold patch" if "oracle" in df and any(map(is_oracle_value, df["oracle"])) else ""


def pareto_front(cost: list[float], gain: list[float]) -> list[bool]:
    """Which points are Pareto-optimal when `cost` is minimised and `gain` maximised (no other
    point is at least as good on both and better on one).

    >>> pareto_front([0.1, 0.2, 0.3, 0.2], [0.5, 0.4, 0.9, 0.6])
    [True, False, True, True]
    """
    out = []
    for i, (c, g) in enumerate(zip(cost, gain)):
        dominated = any(c2 <= c and g2 >= g and (c2 < c or g2 > g) for j, (c2, g2) in enumerate(zip(cost, gain))
                        if j != i)
        out.append(not dominated)
    return out


def pareto_labels(points: list[dict], keys: list[str], x: str, y: str, digits: int = 4) -> list[tuple]:
    r"""One label per distinct (x, y), listing the swept values of every point there, one line
    each: sweep points often coincide, and their full ids printed on top of each other are unreadable.

    >>> pts = [{"a": 0, "b": 0.1, "x": 0.5, "y": 0.4}, {"a": 0.3, "b": 0.0, "x": 0.5, "y": 0.4},
    ...        {"a": 0, "b": 0.3, "x": 0.2, "y": 0.6}]
    >>> pareto_labels(pts, ["a", "b"], "x", "y")
    [(0.2, 0.6, '(0, 0.3)'), (0.5, 0.4, '(0, 0.1)\n(0.3, 0)')]
    """
    groups: dict[tuple, list[str]] = {}
    for p in points:
        at = (round(float(p[x]), digits), round(float(p[y]), digits))
        groups.setdefault(at, []).append("(" + ", ".join(f"{p[k]:g}" if isinstance(p[k], (int, float)) else str(p[k])
                                                     for k in keys) + ")")
    return sorted((px, py, "\n".join(names)) for (px, py), names in groups.items())


def sweep_pareto(table: Any, out: str | Path, run_id: str, chash: str, keys: list[str],
                 x: str = "expert_token_share", y: str = "pass1_mean") -> Path:
    """Resolve rate against the expert's share of tokens, one point per sweep point (labelled by
    its values of the swept `keys`); the Pareto front (most resolved for the least expert) is
    joined and ringed."""
    plt, _ = setup_plots()
    df = read_table(table).reset_index(drop=True)
    front = pareto_front(df[x].astype(float).tolist(), df[y].astype(float).tolist())
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.scatter(df[x], df[y], s=45, color="#4c72b0", zorder=3, label="sweep point")
    best = df[front].sort_values(x)
    ax.step(best[x], best[y], where="post", color=ORACLE_COLOR, lw=1.2, zorder=2)
    ax.scatter(best[x], best[y], s=140, facecolors="none", edgecolors=ORACLE_COLOR, lw=1.5, zorder=4,
               label="Pareto front")
    # Neighbours along x alternate above and below their point, so close labels do not overlap.
    for i, (px, py, text) in enumerate(pareto_labels(df.to_dict("records"), keys, x, y)):
        above = i % 2 == 0
        ax.annotate(text, (px, py), textcoords="offset points", xytext=(5, 5 if above else -5), fontsize=7,
                    va="bottom" if above else "top")
    # One decimal: sweep points often differ by tenths of a percent, and whole percents repeat tick labels.
    ax.xaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0, decimals=1))
    ax.yaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0, decimals=1))
    ax.margins(x=0.25, y=0.2)
    note = _oracle_note(df)
    ax.set(xlabel="expert share of all tokens", ylabel="resolve rate (Pass@1)")
    ax.set_title(f"Resolve rate vs expert cost across the sweep{note}", color=ORACLE_COLOR if note else "black")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title=f"labels: ({', '.join(keys)})",
              title_fontsize=7)
    return save_figure(fig, out, run_id, chash)


RL_SWEEP_COLUMNS = ("reward_total", "resolve_rate", "expert_calls", "loop_rate", "groups_with_spread")


def sweep_steps(sweep_dir: str | Path, prefix: str = "") -> dict[str, Any]:
    """Each finished sweep point's RL training log (<point>/results/04_rl/steps.csv), keyed by
    `prefix` + point id, in the order of sweep.json; points without one are left out."""
    import pandas as pd

    sweep_dir = Path(sweep_dir)
    out = {}
    for point in finished_points(sweep_dir):
        path = sweep_dir / point["id"] / "results" / "04_rl" / "steps.csv"
        if path.exists():
            steps = pd.read_csv(path)
            if "step" in steps and len(steps):
                out[prefix + point["id"]] = steps
    return out


def sweep_rl_curves(steps: dict[str, Any], out: str | Path, run_id: str, chash: str,
                    columns: tuple[str, ...] = RL_SWEEP_COLUMNS) -> Path:
    """RL training step by step, one line per sweep point and one panel per quantity (reward,
    training resolve rate, expert calls and loop rate per rollout, share of task groups with a
    reward spread): whether the penalties moved what they target while training, before the
    held-out evaluation says whether it carried over."""
    plt, sns = setup_plots()
    frames = {label: read_table(df) for label, df in steps.items()}
    columns = tuple(c for c in columns if any(c in df for df in frames.values()))
    fig, axes = plt.subplots(1, len(columns), figsize=(3.6 * len(columns), 3.2), squeeze=False)
    palette = sns.color_palette("tab10", max(len(frames), 1))
    for ax, column in zip(axes[0], columns):
        for color, (label, df) in zip(palette, frames.items()):
            if column in df:
                ax.plot(df["step"], df[column], marker="o", markersize=3, color=color, label=label)
        ax.set(title=column, xlabel="RL step")
        ax.xaxis.set_major_locator(plt.matplotlib.ticker.MaxNLocator(integer=True))
    # Points whose rollouts did not diverge draw one line: the legend still names them all.
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.suptitle("RL training per sweep point (04_rl/steps.csv; training rollouts, not held-out tasks)")
    fig.tight_layout()
    return save_figure(fig, out, run_id, chash)


def figures_for_sweep(sweep_dir: str | Path, figures_dir: str | Path, sweep_id: str,
                      condition: str | None = None) -> list[Path]:
    """The sweep heatmap (first two swept parameters), Pareto plot and, where points trained
    with RL, their training curves, from <sweep_dir>/sweep.json and each point's results;
    [] when no point has evaluation metrics."""
    sweep_dir, fdir = Path(sweep_dir), Path(figures_dir)
    if not (sweep_dir / "sweep.json").exists():
        return []
    table = sweep_table(sweep_dir, condition)
    if table.empty:
        return []
    grid = json.loads((sweep_dir / "sweep.json").read_text(encoding="utf-8"))["grid"]
    swept = [k for k in grid if k in table]
    chash = sweep_hash(sweep_dir)
    made = [sweep_heatmap(table, fdir / f"{sweep_id}_sweep_heatmap.png", sweep_id, chash, swept[0],
                          swept[1] if len(swept) > 1 else None)] if swept else []
    if "expert_token_share" in table:
        made.append(sweep_pareto(table, fdir / f"{sweep_id}_sweep_pareto.png", sweep_id, chash, swept or ["point"]))
    steps = sweep_steps(sweep_dir)
    if steps:
        made.append(sweep_rl_curves(steps, fdir / f"{sweep_id}_sweep_rl_curves.png", sweep_id, chash))
    return made
