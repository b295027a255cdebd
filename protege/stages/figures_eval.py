"""Stage 05's figures, from recorded evaluation tables only: Pass@1 with intervals, tokens by role,
cost, loops before and after RL, the invocation ablation, the expert-strength curve, selectivity."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

from protege.stages.plots import (
    ORACLE_COLOR,
    condition_label,
    condition_order,
    mark_oracle_ticks,
    ran,
    read_table,
    save_figure,
    setup_plots,
)

TOKEN_ROLES = (("protege_prompt_tokens", "protégé prompt", "#66c2a5"),
               ("protege_completion_tokens", "protégé completion", "#1b9e77"),
               ("expert_input_tokens", "expert in", "#e78ac3"),
               ("expert_output_tokens", "expert out", "#c51b7d"))


# Conditions of protege.stages.evaluate_config.default_conditions, in training order, for the before/after figure.
BEFORE_AFTER = ("base", "base+expert", "sft+expert", "sft-inserted+expert", "sft+rl+expert")


def pass1_table(metrics: Any, out: str | Path, run_id: str, chash: str) -> Path:
    """Pass@1 per condition with its interval (error bar); ORACLE conditions (a component reads
    the gold patch) are labelled and hatched. Conditions not run are listed under the plot."""
    import numpy as np

    plt, _ = setup_plots()
    df = read_table(metrics)
    rows = ran(df).reset_index(drop=True)
    labels = [condition_label(c, o) for c, o in zip(rows["condition"], rows.get("oracle", [0] * len(rows)))]
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
    mark_oracle_ticks(ax, labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.3)
    ax.set_xticks(np.linspace(0, 1, 6))
    ax.xaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0))
    ax.set(xlabel="Pass@1 (95% bootstrap interval over instances)", title="Pass@1 per condition")
    skipped = df[~df.index.isin(ran(df).index)]
    if len(skipped):
        note = "not run: " + "; ".join(f"{c} ({str(r)[:90]})" for c, r in zip(skipped["condition"], skipped["skipped"]))
        fig.text(0.01, -0.05, note, fontsize=7, color="#666666", va="top", wrap=True)
    return save_figure(fig, out, run_id, chash)


def tokens_by_role(per_instance: Any, out: str | Path, run_id: str, chash: str) -> Path:
    """Mean tokens per task by role (protégé prompt / completion, expert in / out), stacked, per
    condition; the expert's share of all tokens (token-weighted, as the paper's Fig. 3) annotated."""
    import numpy as np

    plt, _ = setup_plots()
    df = read_table(per_instance)
    order = condition_order(df)
    means = df.groupby("condition")[[c for c, _, _ in TOKEN_ROLES]].mean().reindex(order)
    oracle = df.groupby("condition")["oracle"].max().reindex(order) if "oracle" in df else [0] * len(order)
    labels = [condition_label(c, o) for c, o in zip(order, oracle)]
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
    mark_oracle_ticks(ax, labels)
    ax.invert_yaxis()
    ax.set_xlim(0, max(left.max(), 1) * 1.25)
    ax.set(xlabel="mean tokens per task", title="Tokens per task by role")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    return save_figure(fig, out, run_id, chash)


def cost_per_task(per_instance: Any, out: str | Path, run_id: str, chash: str) -> Path:
    """Median cost per task (USD) per condition, with the interquartile range; compare the
    protégé + expert with the expert acting alone (the paper's Fig. 4)."""
    import numpy as np

    plt, _ = setup_plots()
    df = read_table(per_instance)
    order = condition_order(df)
    q = df.groupby("condition")["cost_usd"].quantile([0.25, 0.5, 0.75]).unstack().reindex(order).fillna(0)
    oracle = df.groupby("condition")["oracle"].max().reindex(order) if "oracle" in df else [0] * len(order)
    labels = [condition_label(c, o) for c, o in zip(order, oracle)]
    fig, ax = plt.subplots(figsize=(7.5, 0.42 * len(order) + 1.6))
    y = np.arange(len(order))
    med = q[0.5].to_numpy()
    err = np.clip(np.vstack([med - q[0.25].to_numpy(), q[0.75].to_numpy() - med]), 0, None)
    ax.barh(y, med, xerr=err, capsize=3, color="#dd8452")
    top = max(float((med + err[1]).max()), 1e-9)
    for i in range(len(order)):
        ax.text(med[i] + err[1][i] + top * 0.02, i, f"${med[i]:.4f}", va="center", fontsize=8)
    ax.set_yticks(y, labels)
    mark_oracle_ticks(ax, labels)
    ax.invert_yaxis()
    ax.set_xlim(0, top * 1.3)
    ax.set(xlabel="median cost per task, USD (bar: interquartile range)", title="Cost per task")
    if top <= 1e-9:
        ax.text(0.5, 0.5, "every cost is 0 (local models, reference expert)", transform=ax.transAxes,
                ha="center", fontsize=9, color="#666666")
    return save_figure(fig, out, run_id, chash)


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
    plt, _ = setup_plots()
    rows = before_after_rows(metrics).reset_index(drop=True)
    labels = [condition_label(c, o) for c, o in zip(rows["condition"], rows.get("oracle", [0] * len(rows)))]
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
    return save_figure(fig, out, run_id, chash)


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
    plt, sns = setup_plots()
    rows = ablation_rows(metrics).reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    palette = sns.color_palette("deep", len(rows))
    for i, row in rows.iterrows():
        m = float(row["pass1_mean"])
        lo, hi = float(row.get("pass1_lo", m)), float(row.get("pass1_hi", m))
        lo, hi = (m if math.isnan(lo) else lo), (m if math.isnan(hi) else hi)  # NaN: no interval
        ax.errorbar(float(row["expert_calls_per_task"]), m, yerr=[[max(m - lo, 0)], [max(hi - m, 0)]], fmt="o",
                    capsize=4, color=palette[i], markersize=8)
        label = condition_label(row["invocation"] if "invocation" in row else row["condition"], row.get("oracle", 0))
        ax.annotate(label, (float(row["expert_calls_per_task"]), m), textcoords="offset points", xytext=(6, 6),
                    fontsize=8, color=ORACLE_COLOR if label.endswith("ORACLE") else "black")
    calls = rows["expert_calls_per_task"].astype(float)
    ax.set_xlim(min(float(calls.min()), 0) - 0.3, float(calls.max()) * 1.25 + 0.5)
    ax.set_ylim(-0.02, 1.05)
    ax.yaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0))
    ax.set(xlabel="expert calls per task", ylabel="Pass@1", title="Invocation ablation: who decides when to ask")
    return save_figure(fig, out, run_id, chash)


def steps_and_calls(per_instance: Any, out: str | Path, run_id: str, chash: str) -> Path:
    """Distribution of agent steps and of expert calls per task, per condition (boxes: quartiles,
    triangle: mean); the paper reports ~60 -> ~20 steps after RL with ~4 calls."""
    plt, sns = setup_plots()
    df = read_table(per_instance).copy()
    order = condition_order(df)
    oracle = df.groupby("condition")["oracle"].max() if "oracle" in df else {}
    df["label"] = [condition_label(c, oracle.get(c, 0) if len(oracle) else 0) for c in df["condition"].astype(str)]
    labels = [condition_label(c, oracle.get(c, 0) if len(oracle) else 0) for c in order]
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.42 * len(order) + 1.8), sharey=True)
    for ax, column, xlabel in ((axes[0], "steps", "agent steps per task"),
                               (axes[1], "expert_calls", "expert calls per task")):
        with warnings.catch_warnings():  # seaborn 0.13 passes matplotlib's deprecated `vert` itself
            warnings.simplefilter("ignore", DeprecationWarning)
            sns.boxplot(df, x=column, y="label", order=labels, ax=ax, showmeans=True, color="#8da0cb", fliersize=3,
                        meanprops={"markerfacecolor": "black", "markeredgecolor": "black", "markersize": 5})
        ax.set(xlabel=xlabel, ylabel="")
    mark_oracle_ticks(axes[0], labels)
    fig.suptitle("Steps and expert calls per task")
    fig.tight_layout()
    return save_figure(fig, out, run_id, chash)


HINT_LEVELS = ("location", "description", "exact_edit")  # protege.models.reference_expert.ReferenceExpert.LEVELS


def strength_rows(metrics: Any, min_rows: int = 2):
    """The expert-strength curve's points: the SFT protégé alone, then with the reference expert at
    each hint level (sft+expert is the default "description" level); [] with fewer than `min_rows`.

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
    return pd.DataFrame(rows) if len(rows) >= min_rows else pd.DataFrame()


def expert_strength(metrics: Any, out: str | Path, run_id: str, chash: str) -> Path:
    """Pass@1 of the SFT protégé alone and with the ORACLE reference expert at each hint level
    (location < description < exact edit), with 95% intervals."""
    import numpy as np

    plt, _ = setup_plots()
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
    return save_figure(fig, out, run_id, chash)


def selectivity_by_tier(by_tier: Any, out: str | Path, run_id: str, chash: str) -> Path:
    """Per tier and model condition with the expert: Pass@1 and expert calls per task. A selective
    protégé asks where the issue leaves the bug unknown and not where it pinpoints it."""
    import numpy as np

    plt, sns = setup_plots()
    df = read_table(by_tier)
    df = df[df["condition"].astype(str).str.contains(r"\+expert|^(?:sft|base)(?:$| \[)", regex=True)
            & ~df["condition"].astype(str).str.startswith(("expert-as-agent", "ablate-"))]
    tiers = [t for t in ("pinpointed", "easy", "medium", "hard") if t in set(df["group"])] or sorted(set(df["group"]))
    conds = condition_order(df)
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
    labels = [condition_label(c, df[df["condition"] == c]["oracle"].max()) for c in conds]
    axes[0].set_yticks(y, labels)
    mark_oracle_ticks(axes[0], labels)
    axes[0].invert_yaxis()
    axes[0].xaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0))
    axes[0].set(xlabel="Pass@1", title="Pass@1 by tier")
    axes[1].set(xlabel="expert calls per task", title="Selectivity: expert calls by tier")
    axes[1].legend(title="tier", fontsize=8, loc="lower right")
    return save_figure(fig, out, run_id, chash)


# How an episode ended, in the order the stacked bars show it (episode_endings).
ENDINGS = (("resolved", "#55a868"), ("submitted, unresolved", "#ccb974"), ("step / repeat limit", "#c44e52"),
           ("format errors", "#8172b3"), ("other", "#999999"))


def ending(resolved: Any, exit_status: str) -> str:
    """The ENDINGS category of one episode (per_instance.csv's resolved and exit_status).

    >>> ending(1, "submitted"), ending(0, "submitted"), ending(0, "repeat_limit"), ending(0, "format_errors")
    ('resolved', 'submitted, unresolved', 'step / repeat limit', 'format errors')
    """
    if str(resolved) in ("1", "1.0", "True"):
        return "resolved"
    return {"submitted": "submitted, unresolved", "step_limit": "step / repeat limit",
            "repeat_limit": "step / repeat limit", "format_errors": "format errors"}.get(exit_status, "other")


def endings_table(runs: dict[str, Any]):
    """Share of each ENDINGS category and the loop rate per model: `runs` maps a label to that
    model's per_instance rows (a DataFrame; several seeds are pooled)."""
    import pandas as pd

    rows = []
    for label, df in runs.items():
        kinds = [ending(r, e) for r, e in zip(df["resolved"], df["exit_status"].astype(str))]
        row = {"model": label, "episodes": len(kinds), "loop_rate": float(pd.to_numeric(df["loop"]).mean())}
        row.update({name: kinds.count(name) / max(len(kinds), 1) for name, _ in ENDINGS})
        rows.append(row)
    return pd.DataFrame(rows)


def episode_endings(runs: dict[str, Any], out: str | Path, run_id: str, chash: str, title: str = "") -> Path:
    """Stacked bars: how each model's episodes ended, with its loop rate: what a penalty removed and
    what took its place (a loop penalty can turn loops into early format-error exits)."""
    plt, _ = setup_plots()
    table = endings_table(runs)
    fig, ax = plt.subplots(figsize=(7.5, 0.6 * len(table) + 1.8))
    left = [0.0] * len(table)
    for name, color in ENDINGS:
        shares = table[name].tolist()
        ax.barh(range(len(table)), shares, left=left, color=color, label=name)
        left = [a + b for a, b in zip(left, shares)]
    for i, (loops, n) in enumerate(zip(table["loop_rate"], table["episodes"])):
        ax.text(1.01, i, f"loops {loops:.0%} (n={n})", va="center", fontsize=9)
    ax.set_yticks(range(len(table)), table["model"].tolist(), fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0, decimals=0))
    ax.set(xlabel="share of episodes", title=title or "How the episodes ended")
    ax.legend(ncol=3, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.25), frameon=False)
    return save_figure(fig, out, run_id, chash)


def in_vs_out_of_distribution(metrics: dict[str, Any], out: str | Path, run_id: str, chash: str) -> Path:
    """Pass@1 per hint level with 95% intervals, one series per task set (e.g. the held-out
    bundled mutations and real out-of-distribution bugs), same protégé and ORACLE expert: how much
    of a level's in-distribution score transfers."""
    import numpy as np

    plt, _ = setup_plots()
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    levels = ["alone", *HINT_LEVELS]
    series = {name: strength_rows(m, min_rows=1) for name, m in metrics.items()}
    shown = [lv for lv in levels if any(lv in set(rows.get("level", [])) for rows in series.values())]
    width = 0.8 / max(1, len(series))
    for k, (name, rows) in enumerate(series.items()):
        rows = rows.set_index("level").reindex(shown)
        x = np.arange(len(shown)) + (k - (len(series) - 1) / 2) * width
        mean = rows["pass1_mean"].astype(float).to_numpy()
        lo = rows["pass1_lo"].astype(float).fillna(rows["pass1_mean"]).to_numpy()
        hi = rows["pass1_hi"].astype(float).fillna(rows["pass1_mean"]).to_numpy()
        n = int(rows["n_tasks"].dropna().iloc[0]) if rows["n_tasks"].notna().any() else 0
        ax.bar(x, mean, width, label=f"{name} (n={n})", yerr=np.clip(np.vstack([mean - lo, hi - mean]), 0, None),
               capsize=3)
        for xi, m in zip(x, mean):
            if not math.isnan(m):
                ax.annotate(f"{m:.0%}", (xi, m), textcoords="offset points", xytext=(0, 3), ha="center", fontsize=8)
    ax.set_xticks(np.arange(len(shown)), [lv if lv == "alone" else f"{lv}\nORACLE" for lv in shown])
    ax.set_ylim(0, 1.05)
    ax.yaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0))
    ax.set(ylabel="Pass@1 (95% interval)", title="In and out of distribution, per hint level")
    ax.legend(fontsize=8, frameon=False)
    return save_figure(fig, out, run_id, chash)
