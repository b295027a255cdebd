"""Figures, one function per figure. Each reads only recorded results (CSV / JSON written by
the stages), never runs a model, and stamps the figure with the run id and the hash of the
config the results came from, so a figure in `figures/` names its source."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

from protege.core.config import config_hash

ROLE_COLORS = {"system": "#bbbbbb", "task": "#8da0cb", "protege": "#66c2a5", "observation": "#fc8d62",
               "guidance": "#e78ac3"}


def _setup():
    import matplotlib

    matplotlib.use("Agg")  # files only; works without a display
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    return plt, sns


def _save(fig, out: str | Path, run_id: str, chash: str) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Below the figure's edge (the tight bounding box takes it in), so it never covers tick labels.
    fig.text(0.99, -0.005, f"run {run_id} · config {chash}", ha="right", va="top", fontsize=7, color="#666666")
    # Fixed metadata so the same records give byte-identical files.
    fig.savefig(out, dpi=120, bbox_inches="tight", metadata={"Software": None})
    import matplotlib.pyplot as plt

    plt.close(fig)
    return out


def _read_stats(stats: Any):
    import pandas as pd

    return stats if isinstance(stats, pd.DataFrame) else pd.read_csv(stats)


def dataset_expert_calls(stats: Any, out: str | Path, run_id: str, chash: str) -> Path:
    """Expert calls per trajectory, one bar group per dataset (live vs inserted)."""
    plt, sns = _setup()
    df = _read_stats(stats)
    counts = df.groupby(["dataset", "n_expert_calls"]).size().rename("trajectories").reset_index()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    sns.barplot(counts, x="n_expert_calls", y="trajectories", hue="dataset", ax=ax)
    ax.set(xlabel="expert calls in the trajectory", ylabel="trajectories", title="Expert calls per trajectory")
    return _save(fig, out, run_id, chash)


def dataset_tokens_by_role(stats: Any, out: str | Path, run_id: str, chash: str) -> Path:
    """Mean tokens per trajectory by role (stacked), per dataset."""
    plt, _ = _setup()
    df = _read_stats(stats)
    roles = [r for r in ROLE_COLORS if f"tokens_{r}" in df]
    means = df.groupby("dataset")[[f"tokens_{r}" for r in roles]].mean()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    left = None
    for r in roles:
        vals = means[f"tokens_{r}"]
        ax.barh(means.index, vals, left=left, color=ROLE_COLORS[r], label=r)
        left = vals if left is None else left + vals
    ax.set(xlabel="mean tokens per trajectory", title="Tokens by role")
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, out, run_id, chash)


def dataset_lengths(stats: Any, out: str | Path, run_id: str, chash: str, max_length: int = -1) -> Path:
    """Rendered conversation length against the SFT max_length."""
    plt, sns = _setup()
    df = _read_stats(stats)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    sns.histplot(df, x="length", hue="dataset", element="step", bins=30, ax=ax)
    if max_length > 0:
        over = float((df["length"] > max_length).mean())
        ax.axvline(max_length, color="black", ls="--")
        ax.text(max_length, ax.get_ylim()[1] * 0.95, f" max_length={max_length}\n {over:.0%} longer (split into windows by SFT)",
                va="top", fontsize=8)
    ax.set(xlabel="tokens (chat template rendering)", title="Conversation length")
    return _save(fig, out, run_id, chash)


# ------------------------------------------------------------------------- stage 03-05 figures
# Inputs (written by the stages, copied by `protege.app.pipeline` into papermill_runs/<run>/results/):
#   03_sft/train_log.csv     trainer log history (step, loss, eval_loss, ...)
#   04_rl/steps.csv          one row per RL step: reward_* terms, rates, TRL stats
#   05_eval/metrics.csv      one row per condition (protege.stages.evaluate.METRICS_COLUMNS)
#   05_eval/per_instance.csv one row per condition x seed x instance (PER_INSTANCE_COLUMNS)

ORACLE_COLOR = "#d62728"
TOKEN_ROLES = (("protege_prompt_tokens", "protégé prompt", "#66c2a5"),
               ("protege_completion_tokens", "protégé completion", "#1b9e77"),
               ("expert_input_tokens", "expert in", "#e78ac3"),
               ("expert_output_tokens", "expert out", "#c51b7d"))
# Conditions of protege.stages.evaluate.default_conditions, in training order, for the before/after figure.
BEFORE_AFTER = ("base", "base+expert", "sft+expert", "sft-inserted+expert", "sft+rl+expert")
# What a sweep point is scored by, first present and run wins (protege.stages.evaluate condition names).
SWEEP_CONDITIONS = ("sft+rl+expert", "ablate-learned", "sft+expert")
RL_RATES = ("resolve_rate", "loop_rate", "c_loop", "expert_calls", "steps", "format_errors", "trl/loss", "trl/kl")


def _read(data: Any):
    """A DataFrame as is, or a CSV path read into one."""
    import pandas as pd

    return data if isinstance(data, pd.DataFrame) else pd.read_csv(data)


def ran(metrics: Any):
    """Rows of metrics.csv whose condition was run (`skipped` empty).

    >>> import pandas as pd
    >>> ran(pd.DataFrame({"condition": ["a", "b"], "skipped": [None, "no model"]}))["condition"].tolist()
    ['a']
    """
    df = _read(metrics)
    if "skipped" not in df:
        return df
    return df[df["skipped"].isna() | (df["skipped"].astype(str).str.strip() == "")]


def _label(condition: str, oracle: Any) -> str:
    return f"{condition}  ORACLE" if _is_oracle(oracle) else str(condition)


def _is_oracle(value: Any) -> bool:
    try:
        return bool(int(float(value)))
    except (TypeError, ValueError):
        return False


def _mark_oracle_ticks(ax, labels: list[str]) -> None:
    for tick, label in zip(ax.get_yticklabels(), labels):
        if label.endswith("ORACLE"):
            tick.set_color(ORACLE_COLOR)


def _order(df, column: str = "condition") -> list[str]:
    """Values of a column in first-appearance order (the order the stage wrote them)."""
    return list(dict.fromkeys(df[column].astype(str)))


def pass1_table(metrics: Any, out: str | Path, run_id: str, chash: str) -> Path:
    """Pass@1 per condition with its interval (error bar); ORACLE conditions (a component reads
    the gold patch) are labelled and hatched. Conditions not run are listed under the plot."""
    import numpy as np

    plt, _ = _setup()
    df = _read(metrics)
    rows = ran(df).reset_index(drop=True)
    labels = [_label(c, o) for c, o in zip(rows["condition"], rows.get("oracle", [0] * len(rows)))]
    mean = rows["pass1_mean"].astype(float).to_numpy()
    lo = rows.get("pass1_lo", rows["pass1_mean"]).astype(float).to_numpy()
    hi = rows.get("pass1_hi", rows["pass1_mean"]).astype(float).to_numpy()
    lo, hi = np.where(np.isnan(lo), mean, lo), np.where(np.isnan(hi), mean, hi)  # NaN: no interval
    err = np.clip(np.vstack([mean - lo, hi - mean]), 0, None)
    fig, ax = plt.subplots(figsize=(7.5, 0.42 * len(rows) + 1.6))
    y = np.arange(len(rows))
    oracle = [lab.endswith("ORACLE") for lab in labels]
    bars = ax.barh(y, mean, xerr=err, capsize=3, color=[ORACLE_COLOR if o else "#4c72b0" for o in oracle],
                   alpha=0.85, error_kw={"elinewidth": 1})
    for bar, o in zip(bars, oracle):
        if o:
            bar.set_hatch("//")
    for i in range(len(rows)):
        ax.text(min(mean[i] + err[1][i], 1.0) + 0.01, i, f"{mean[i]:.1%}  [{mean[i] - err[0][i]:.0%}, "
                f"{mean[i] + err[1][i]:.0%}]", va="center", fontsize=8)
    ax.set_yticks(y, labels)
    _mark_oracle_ticks(ax, labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.3)
    ax.set_xticks(np.linspace(0, 1, 6))
    ax.xaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0))
    ax.set(xlabel="Pass@1 (95% bootstrap interval over instances)", title="Pass@1 per condition")
    skipped = df[~df.index.isin(ran(df).index)]
    if len(skipped):
        note = "not run: " + "; ".join(f"{c} ({str(r)[:90]})" for c, r in zip(skipped["condition"], skipped["skipped"]))
        fig.text(0.01, -0.05, note, fontsize=7, color="#666666", va="top", wrap=True)
    return _save(fig, out, run_id, chash)


def tokens_by_role(per_instance: Any, out: str | Path, run_id: str, chash: str) -> Path:
    """Mean tokens per task by role (protégé prompt / completion, expert in / out), stacked, per
    condition; the expert's share of all tokens (token-weighted, as the paper's Fig. 3) annotated."""
    import numpy as np

    plt, _ = _setup()
    df = _read(per_instance)
    order = _order(df)
    means = df.groupby("condition")[[c for c, _, _ in TOKEN_ROLES]].mean().reindex(order)
    oracle = df.groupby("condition")["oracle"].max().reindex(order) if "oracle" in df else [0] * len(order)
    labels = [_label(c, o) for c, o in zip(order, oracle)]
    fig, ax = plt.subplots(figsize=(7.5, 0.42 * len(order) + 1.6))
    y = np.arange(len(order))
    left = np.zeros(len(order))
    for column, name, color in TOKEN_ROLES:
        vals = means[column].fillna(0).to_numpy()
        ax.barh(y, vals, left=left, color=color, label=name)
        left += vals
    sums = df.groupby("condition")[[c for c, _, _ in TOKEN_ROLES]].sum().reindex(order)
    expert = sums["expert_input_tokens"] + sums["expert_output_tokens"]
    share = (expert / sums.sum(axis=1).replace(0, np.nan)).fillna(0).to_numpy()
    for i in range(len(order)):
        ax.text(left[i] * 1.01 + 1, i, f"expert {share[i]:.0%}", va="center", fontsize=8)
    ax.set_yticks(y, labels)
    _mark_oracle_ticks(ax, labels)
    ax.invert_yaxis()
    ax.set_xlim(0, max(left.max(), 1) * 1.25)
    ax.set(xlabel="mean tokens per task", title="Tokens per task by role")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    return _save(fig, out, run_id, chash)


def cost_per_task(per_instance: Any, out: str | Path, run_id: str, chash: str) -> Path:
    """Median cost per task (USD) per condition, with the interquartile range; compare the
    protégé + expert with the expert acting alone (the paper's Fig. 4)."""
    import numpy as np

    plt, _ = _setup()
    df = _read(per_instance)
    order = _order(df)
    q = df.groupby("condition")["cost_usd"].quantile([0.25, 0.5, 0.75]).unstack().reindex(order).fillna(0)
    oracle = df.groupby("condition")["oracle"].max().reindex(order) if "oracle" in df else [0] * len(order)
    labels = [_label(c, o) for c, o in zip(order, oracle)]
    fig, ax = plt.subplots(figsize=(7.5, 0.42 * len(order) + 1.6))
    y = np.arange(len(order))
    med = q[0.5].to_numpy()
    err = np.clip(np.vstack([med - q[0.25].to_numpy(), q[0.75].to_numpy() - med]), 0, None)
    ax.barh(y, med, xerr=err, capsize=3, color="#dd8452")
    top = max(float((med + err[1]).max()), 1e-9)
    for i in range(len(order)):
        ax.text(med[i] + err[1][i] + top * 0.02, i, f"${med[i]:.4f}", va="center", fontsize=8)
    ax.set_yticks(y, labels)
    _mark_oracle_ticks(ax, labels)
    ax.invert_yaxis()
    ax.set_xlim(0, top * 1.3)
    ax.set(xlabel="median cost per task, USD (bar: interquartile range)", title="Cost per task")
    if top <= 1e-9:
        ax.text(0.5, 0.5, "every cost is 0 (local models, reference expert)", transform=ax.transAxes,
                ha="center", fontsize=9, color="#666666")
    return _save(fig, out, run_id, chash)


def before_after_rows(metrics: Any):
    """The conditions of the before/after comparison (BEFORE_AFTER, those run), in training
    order; every run condition that is not an ablation when none of them is present.

    >>> import pandas as pd
    >>> m = pd.DataFrame({"condition": ["sft+rl+expert", "ablate-never", "base"], "skipped": ["", "", ""]})
    >>> before_after_rows(m)["condition"].tolist()
    ['base', 'sft+rl+expert']
    """
    rows = ran(metrics)
    known = rows[rows["condition"].isin(BEFORE_AFTER)]
    if len(known):
        return known.set_index("condition").loc[[c for c in BEFORE_AFTER if c in set(known["condition"])]].reset_index()
    return rows[~rows["condition"].astype(str).str.startswith("ablate-")]


def loop_rate_before_after(metrics: Any, out: str | Path, run_id: str, chash: str) -> Path:
    """Share of trajectories with a run of more than 10 identical base commands, before training,
    after SFT and after SFT + RL (the paper's Fig. 6: 31.0% after SFT, 0.8% after RL)."""
    plt, _ = _setup()
    rows = before_after_rows(metrics).reset_index(drop=True)
    labels = [_label(c, o) for c, o in zip(rows["condition"], rows.get("oracle", [0] * len(rows)))]
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    colors = ["#55a868" if "rl" in c else "#8172b3" if "sft" in c else "#937860" for c in rows["condition"]]
    rates = rows["loop_rate"].astype(float).fillna(0)
    ax.bar(range(len(rows)), rates, color=colors)
    for i, r in enumerate(rates):
        ax.text(i, r + 0.01, f"{r:.1%}", ha="center", fontsize=9)
    ax.set_xticks(range(len(rows)), [lab.replace("  ORACLE", "\nORACLE") for lab in labels], fontsize=9)
    for tick, label in zip(ax.get_xticklabels(), labels):
        if label.endswith("ORACLE"):
            tick.set_color(ORACLE_COLOR)
    ax.set_ylim(0, max(float(rates.max()) * 1.25, 0.1))
    ax.yaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0, decimals=0))
    ax.set(ylabel="trajectories with a loop (run > 10)", title="Looping before and after training")
    return _save(fig, out, run_id, chash)


def ablation_rows(metrics: Any):
    """Invocation-ablation conditions (names ``ablate-*``) that were run.

    >>> import pandas as pd
    >>> ablation_rows(pd.DataFrame({"condition": ["base", "ablate-never"], "skipped": ["", ""]}))["condition"].tolist()
    ['ablate-never']
    """
    rows = ran(metrics)
    return rows[rows["condition"].astype(str).str.startswith("ablate-")]


def invocation_ablation(metrics: Any, out: str | Path, run_id: str, chash: str) -> Path:
    """Who decides when to ask (never / every N / random / learned): Pass@1 with its interval
    against expert calls per task (the paper's Fig. 7)."""
    plt, sns = _setup()
    rows = ablation_rows(metrics).reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    palette = sns.color_palette("deep", len(rows))
    for i, row in rows.iterrows():
        m = float(row["pass1_mean"])
        lo, hi = float(row.get("pass1_lo", m)), float(row.get("pass1_hi", m))
        lo, hi = (m if math.isnan(lo) else lo), (m if math.isnan(hi) else hi)  # NaN: no interval
        ax.errorbar(float(row["expert_calls_per_task"]), m, yerr=[[max(m - lo, 0)], [max(hi - m, 0)]], fmt="o",
                    capsize=4, color=palette[i], markersize=8)
        label = _label(row["invocation"] if "invocation" in row else row["condition"], row.get("oracle", 0))
        ax.annotate(label, (float(row["expert_calls_per_task"]), m), textcoords="offset points", xytext=(6, 6),
                    fontsize=8, color=ORACLE_COLOR if label.endswith("ORACLE") else "black")
    calls = rows["expert_calls_per_task"].astype(float)
    ax.set_xlim(min(float(calls.min()), 0) - 0.3, float(calls.max()) * 1.25 + 0.5)
    ax.set_ylim(-0.02, 1.05)
    ax.yaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0))
    ax.set(xlabel="expert calls per task", ylabel="Pass@1", title="Invocation ablation: who decides when to ask")
    return _save(fig, out, run_id, chash)


def rl_curves(steps: Any, out: str | Path, run_id: str, chash: str) -> Path:
    """RL training curves: every reward term on one panel, then one panel per other numeric
    column of steps.csv (resolve rate, loop rate, expert calls, steps per episode, loss ...)."""
    plt, _ = _setup()
    df = _read(steps)
    numeric = [c for c in df.columns if c not in ("step", "stage") and df[c].dtype.kind in "fi" and df[c].notna().any()]
    rewards = [c for c in numeric if c.startswith("reward")]
    others = [c for c in RL_RATES if c in numeric] + [c for c in numeric if c not in RL_RATES and c not in rewards]
    panels = ([("reward terms", rewards)] if rewards else []) + [(c, [c]) for c in others][: 11 if rewards else 12]
    ncols = min(3, max(len(panels), 1))
    nrows = max(1, -(-len(panels) // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 2.8 * nrows), squeeze=False)
    for ax, (title, columns) in zip(axes.ravel(), panels):
        for column in columns:
            ax.plot(df["step"], df[column], marker="o", markersize=3, label=column)
        if len(columns) > 1:
            ax.legend(fontsize=7)
        ax.set(title=title, xlabel="RL step")
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    fig.suptitle("RL training curves (one row of 04_rl/steps.csv per step)")
    fig.tight_layout()
    return _save(fig, out, run_id, chash)


def steps_and_calls(per_instance: Any, out: str | Path, run_id: str, chash: str) -> Path:
    """Distribution of agent steps and of expert calls per task, per condition (boxes: quartiles,
    triangle: mean); the paper reports ~60 -> ~20 steps after RL with ~4 calls."""
    plt, sns = _setup()
    df = _read(per_instance).copy()
    order = _order(df)
    oracle = df.groupby("condition")["oracle"].max() if "oracle" in df else {}
    df["label"] = [_label(c, oracle.get(c, 0) if len(oracle) else 0) for c in df["condition"].astype(str)]
    labels = [_label(c, oracle.get(c, 0) if len(oracle) else 0) for c in order]
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.42 * len(order) + 1.8), sharey=True)
    for ax, column, xlabel in ((axes[0], "steps", "agent steps per task"),
                               (axes[1], "expert_calls", "expert calls per task")):
        with warnings.catch_warnings():  # seaborn 0.13 passes matplotlib's deprecated `vert` itself
            warnings.simplefilter("ignore", DeprecationWarning)
            sns.boxplot(df, x=column, y="label", order=labels, ax=ax, showmeans=True, color="#8da0cb", fliersize=3,
                        meanprops={"markerfacecolor": "black", "markeredgecolor": "black", "markersize": 5})
        ax.set(xlabel=xlabel, ylabel="")
    _mark_oracle_ticks(axes[0], labels)
    fig.suptitle("Steps and expert calls per task")
    fig.tight_layout()
    return _save(fig, out, run_id, chash)


def sft_loss(train_log: Any, out: str | Path, run_id: str, chash: str) -> Path:
    """SFT training loss and validation loss against the optimizer step."""
    plt, _ = _setup()
    df = _read(train_log)
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for column, name, style in (("loss", "train", "-"), ("eval_loss", "validation", "--")):
        if column in df and df[column].notna().any():
            part = df[df[column].notna()]
            ax.plot(part["step"], part[column], style, marker="o", markersize=3, label=name)
    ax.set(xlabel="optimizer step", ylabel="loss (protégé turns only)", title="SFT loss")
    ax.legend()
    return _save(fig, out, run_id, chash)


# ------------------------------------------------------------------------------------- sweeps


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
    plt, sns = _setup()
    df = _read(table).copy()
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
    return _save(fig, out, run_id, chash)


def _oracle_note(df) -> str:
    """A title suffix when the scored condition reads the gold patch (e.g. the reference expert)."""
    return "\nORACLE: expert reads the gold patch" if "oracle" in df and any(map(_is_oracle, df["oracle"])) else ""


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
    plt, _ = _setup()
    df = _read(table).reset_index(drop=True)
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
    return _save(fig, out, run_id, chash)


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
    plt, sns = _setup()
    frames = {label: _read(df) for label, df in steps.items()}
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
    return _save(fig, out, run_id, chash)


# ---------------------------------------------------------------------------- all of a run


def _stage_hash(stage_dir: Path) -> str:
    path = stage_dir / "config.json"
    return config_hash(path) if path.exists() else "no-config"


HINT_LEVELS = ("location", "description", "exact_edit")  # protege.models.experts.ReferenceExpert.LEVELS


def strength_rows(metrics: Any):
    """The expert-strength curve's points: the SFT protégé alone, then with the reference expert at
    each hint level (sft+expert is the default "description" level); [] without two points.

    >>> import pandas as pd
    >>> m = pd.DataFrame({"condition": ["sft", "sft+expert", "sft+expert-exact_edit"], "pass1_mean": [.1, .4, .9],
    ...                   "expert": ["none", "reference", "reference:exact_edit"], "skipped": [None] * 3})
    >>> strength_rows(m)["level"].tolist()
    ['alone', 'description', 'exact_edit']
    """
    import pandas as pd

    df = ran(metrics)
    picked = []
    for _, r in df.iterrows():
        cond, expert = str(r["condition"]), str(r.get("expert", ""))
        if cond == "sft":
            level = "alone"
        elif cond == "sft+expert" or cond.startswith("sft+expert-"):
            kind, _, lv = expert.partition(":")
            if kind != "reference":
                continue
            level = lv or "description"
        else:
            continue
        picked.append({**r.to_dict(), "level": level})
    order = ["alone", *HINT_LEVELS]
    rows = sorted(picked, key=lambda r: order.index(r["level"]) if r["level"] in order else 99)
    return pd.DataFrame(rows) if len(rows) >= 2 else pd.DataFrame()


def expert_strength(metrics: Any, out: str | Path, run_id: str, chash: str) -> Path:
    """Pass@1 of the SFT protégé alone and with the ORACLE reference expert at each hint level
    (location < description < exact edit), with 95% intervals."""
    import numpy as np

    plt, _ = _setup()
    rows = strength_rows(metrics)
    x = np.arange(len(rows))
    mean = rows["pass1_mean"].astype(float).to_numpy()
    lo = rows["pass1_lo"].astype(float).fillna(rows["pass1_mean"]).to_numpy()
    hi = rows["pass1_hi"].astype(float).fillna(rows["pass1_mean"]).to_numpy()
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    ax.errorbar(x, mean, yerr=np.clip(np.vstack([mean - lo, hi - mean]), 0, None), marker="o", capsize=4,
                color=ORACLE_COLOR)
    for i, m in enumerate(mean):
        ax.annotate(f"{m:.0%}", (x[i], m), textcoords="offset points", xytext=(8, -4), fontsize=9)
    ax.set_xticks(x, [lv if lv == "alone" else f"{lv}\nORACLE" for lv in rows["level"]])
    ax.set_ylim(0, 1.05)
    ax.yaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0))
    ax.set(xlabel="the SFT protégé alone, then with the reference expert's hint level",
           ylabel="Pass@1 (95% interval)", title="Expert strength: what the protégé makes of each kind of advice")
    return _save(fig, out, run_id, chash)


def selectivity_by_tier(by_tier: Any, out: str | Path, run_id: str, chash: str) -> Path:
    """Per tier and model condition with the expert: Pass@1 and expert calls per task. A selective
    protégé asks where the issue leaves the bug unknown and not where it pinpoints it."""
    import numpy as np

    plt, sns = _setup()
    df = _read(by_tier)
    df = df[df["condition"].astype(str).str.contains(r"\+expert|^sft$|^base$", regex=True)
            & ~df["condition"].astype(str).str.startswith(("expert-as-agent", "ablate-"))]
    tiers = [t for t in ("pinpointed", "easy", "medium", "hard") if t in set(df["group"])] or sorted(set(df["group"]))
    conds = _order(df)
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.35 * len(conds) + 2.4), sharey=True)
    width = 0.8 / max(1, len(tiers))
    y = np.arange(len(conds))
    palette = sns.color_palette("crest", len(tiers))
    for k, tier in enumerate(tiers):
        sub = df[df["group"] == tier].set_index("condition")
        for ax, col in zip(axes, ("pass1_mean", "expert_calls_per_task")):
            vals = [float(sub[col].get(c, np.nan)) if c in sub.index else np.nan for c in conds]
            ax.barh(y + k * width - 0.4 + width / 2, vals, height=width, color=palette[k],
                    label=f"{tier} (n={int(sub['n_tasks'].max()) if len(sub) else 0})")
    labels = [_label(c, df[df["condition"] == c]["oracle"].max()) for c in conds]
    axes[0].set_yticks(y, labels)
    _mark_oracle_ticks(axes[0], labels)
    axes[0].invert_yaxis()
    axes[0].xaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0))
    axes[0].set(xlabel="Pass@1", title="Pass@1 by tier")
    axes[1].set(xlabel="expert calls per task", title="Selectivity: expert calls by tier")
    axes[1].legend(title="tier", fontsize=8, loc="lower right")
    return _save(fig, out, run_id, chash)


def figures_for_run(results_dir: str | Path, figures_dir: str | Path, run_id: str) -> list[Path]:
    """Every figure of one run whose input exists under results_dir (a run folder, or its copy
    papermill_runs/<run>/results), written as <figures_dir>/<run_id>_<figure>.png; others skipped."""
    import pandas as pd

    res, fdir = Path(results_dir), Path(figures_dir)
    made: list[Path] = []

    def out(name: str) -> Path:
        return fdir / f"{run_id}_{name}.png"

    insert = res / "02_insert"
    if (insert / "stats.csv").exists():
        chash = _stage_hash(insert)
        stats = pd.read_csv(insert / "stats.csv")
        stats = stats[stats["dataset"] != "mixed"]  # the union of the others (as insert_calls.dataset_figures)
        cfg = json.loads((insert / "config.json").read_text()) if (insert / "config.json").exists() else {}
        max_length = int(cfg.get("data", {}).get("max_length", -1))
        if len(stats):
            made += [dataset_expert_calls(stats, out("02_expert_calls"), run_id, chash),
                     dataset_tokens_by_role(stats, out("02_tokens_by_role"), run_id, chash),
                     dataset_lengths(stats, out("02_lengths"), run_id, chash, max_length)]
    sft = res / "03_sft"
    if (sft / "train_log.csv").exists():
        log = pd.read_csv(sft / "train_log.csv")
        if {"step", "loss"} <= set(log.columns) and log["loss"].notna().any():
            made.append(sft_loss(log, out("03_sft_loss"), run_id, _stage_hash(sft)))
    rl = res / "04_rl"
    if (rl / "steps.csv").exists():
        steps = pd.read_csv(rl / "steps.csv")
        if "step" in steps and len(steps):
            made.append(rl_curves(steps, out("04_rl_curves"), run_id, _stage_hash(rl)))
    ev = res / "05_eval"
    chash = _stage_hash(ev)
    if (ev / "metrics.csv").exists():
        metrics = pd.read_csv(ev / "metrics.csv")
        if len(ran(metrics)):
            made.append(pass1_table(metrics, out("05_pass1"), run_id, chash))
        if len(before_after_rows(metrics)):
            made.append(loop_rate_before_after(metrics, out("05_loop_rate"), run_id, chash))
        if len(ablation_rows(metrics)):
            made.append(invocation_ablation(metrics, out("05_invocation_ablation"), run_id, chash))
        if len(strength_rows(metrics)):
            made.append(expert_strength(metrics, out("05_expert_strength"), run_id, chash))
    abl = res / "05_ablations"  # `make ablations`: invocation, expert choice, noisy expert, inserted data
    if (abl / "metrics.csv").exists():
        ablations = pd.read_csv(abl / "metrics.csv")
        if len(ran(ablations)):
            made.append(pass1_table(ablations, out("05_ablations_pass1"), run_id, _stage_hash(abl)))
        if len(ablation_rows(ablations)):
            made.append(invocation_ablation(ablations, out("05_ablations_invocation"), run_id, _stage_hash(abl)))
    if (ev / "metrics_by_tier.csv").exists():
        by_tier = pd.read_csv(ev / "metrics_by_tier.csv")
        if len(by_tier):
            made.append(selectivity_by_tier(by_tier, out("05_selectivity_by_tier"), run_id, chash))
    if (ev / "per_instance.csv").exists():
        per = pd.read_csv(ev / "per_instance.csv")
        if len(per):
            made += [tokens_by_role(per, out("05_tokens_by_role"), run_id, chash),
                     cost_per_task(per, out("05_cost_per_task"), run_id, chash),
                     steps_and_calls(per, out("05_steps_and_calls"), run_id, chash)]
    return made


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


def images(paths: list[Path]) -> list:
    """IPython images of figure files, for ``display(*images(paths))`` in a notebook."""
    from IPython.display import Image

    return [Image(filename=str(p)) for p in paths]
