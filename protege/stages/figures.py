"""Figures, one function per figure. Each reads only recorded results (CSV / JSON written by
the stages), never runs a model, and stamps the figure with the run id and the hash of the
config the results came from, so a figure in `figures/` names its source."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from protege.core.config import config_hash
from protege.stages.figures_eval import (
    ablation_rows,
    before_after_rows,
    cost_per_task,
    expert_strength,
    invocation_ablation,
    loop_rate_before_after,
    pass1_table,
    selectivity_by_tier,
    steps_and_calls,
    strength_rows,
    tokens_by_role,
)
from protege.stages.plots import (
    ROLE_COLORS,
    ran,
    read_table,
    save_figure,
    setup_plots,
)


def _read_stats(stats: Any):
    import pandas as pd

    return stats if isinstance(stats, pd.DataFrame) else pd.read_csv(stats)


def dataset_expert_calls(stats: Any, out: str | Path, run_id: str, chash: str) -> Path:
    """Expert calls per trajectory, one bar group per dataset (live vs inserted)."""
    plt, sns = setup_plots()
    df = _read_stats(stats)
    counts = df.groupby(["dataset", "n_expert_calls"]).size().rename("trajectories").reset_index()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    sns.barplot(counts, x="n_expert_calls", y="trajectories", hue="dataset", ax=ax)
    ax.set(xlabel="expert calls in the trajectory", ylabel="trajectories", title="Expert calls per trajectory")
    return save_figure(fig, out, run_id, chash)


def dataset_tokens_by_role(stats: Any, out: str | Path, run_id: str, chash: str) -> Path:
    """Mean tokens per trajectory by role (stacked), per dataset."""
    plt, _ = setup_plots()
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
    return save_figure(fig, out, run_id, chash)


def dataset_lengths(stats: Any, out: str | Path, run_id: str, chash: str, max_length: int = -1) -> Path:
    """Rendered conversation length against the SFT max_length."""
    plt, sns = setup_plots()
    df = _read_stats(stats)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    sns.histplot(df, x="length", hue="dataset", element="step", bins=30, ax=ax)
    if max_length > 0:
        over = float((df["length"] > max_length).mean())
        ax.axvline(max_length, color="black", ls="--")
        ax.text(max_length, ax.get_ylim()[1] * 0.95, f" max_length={max_length}\n {over:.0%} longer (split into windows by SFT)",
                va="top", fontsize=8)
    ax.set(xlabel="tokens (chat template rendering)", title="Conversation length")
    return save_figure(fig, out, run_id, chash)


# ------------------------------------------------------------------------- stage 03-05 figures
# Inputs (written by the stages, copied by `protege.app.pipeline` into papermill_runs/<run>/results/):
#   03_sft/train_log.csv     trainer log history (step, loss, eval_loss, ...)
#   04_rl/steps.csv          one row per RL step: reward_* terms, rates, TRL stats
#   05_eval/metrics.csv      one row per condition (protege.stages.evaluate.METRICS_COLUMNS)
#   05_eval/per_instance.csv one row per condition x seed x instance (PER_INSTANCE_COLUMNS)

RL_RATES = ("resolve_rate", "loop_rate", "c_loop", "expert_calls", "steps", "format_errors", "trl/loss", "trl/kl")


def rl_curves(steps: Any, out: str | Path, run_id: str, chash: str) -> Path:
    """RL training curves: every reward term on one panel, then one panel per other numeric
    column of steps.csv (resolve rate, loop rate, expert calls, steps per episode, loss ...)."""
    plt, _ = setup_plots()
    df = read_table(steps)
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
    return save_figure(fig, out, run_id, chash)


def sft_loss(train_log: Any, out: str | Path, run_id: str, chash: str) -> Path:
    """SFT training loss and validation loss against the optimizer step."""
    plt, _ = setup_plots()
    df = read_table(train_log)
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for column, name, style in (("loss", "train", "-"), ("eval_loss", "validation", "--")):
        if column in df and df[column].notna().any():
            part = df[df[column].notna()]
            ax.plot(part["step"], part[column], style, marker="o", markersize=3, label=name)
    ax.set(xlabel="optimizer step", ylabel="loss (protégé turns only)", title="SFT loss")
    ax.legend()
    return save_figure(fig, out, run_id, chash)


# ------------------------------------------------------------------------------------- sweeps


# ---------------------------------------------------------------------------- all of a run


def _stage_hash(stage_dir: Path) -> str:
    path = stage_dir / "config.json"
    return config_hash(path) if path.exists() else "no-config"


def figures_for_run(results_dir: str | Path, figures_dir: str | Path, run_id: str) -> list[Path]:
    """Every figure of one run whose input exists under results_dir (a run folder, or its copy
    papermill_runs/<run>/results), written as <figures_dir>/<run_id>_<figure>.png; others skipped."""
    res, fdir = Path(results_dir), Path(figures_dir)

    def out(name: str) -> Path:
        return fdir / f"{run_id}_{name}.png"

    return [*_training_figures(res, out, run_id), *_evaluation_figures(res / "05_eval", out, run_id),
            *_ablation_figures(res / "05_ablations", out, run_id)]


def evaluation_figures(eval_dir: str | Path, figures_dir: str | Path, run_id: str) -> list[Path]:
    """The stage-05 figures of one evaluation folder (also compare_runs' side-by-side folder)."""
    fdir = Path(figures_dir)
    return _evaluation_figures(Path(eval_dir), lambda name: fdir / f"{run_id}_{name}.png", run_id)


def _training_figures(res: Path, out, run_id: str) -> list[Path]:
    """Stages 02-04: the datasets, the SFT loss, the RL curves."""
    import pandas as pd

    made: list[Path] = []
    insert = res / "02_insert"
    if (insert / "stats.csv").exists():
        chash = _stage_hash(insert)
        stats = pd.read_csv(insert / "stats.csv")
        stats = stats[stats["dataset"] != "mixed"]  # the union of the others (as insert_datasets.dataset_figures)
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
    return made


def _evaluation_figures(ev: Path, out, run_id: str) -> list[Path]:
    """Stage 05: Pass@1, loops before/after RL, the invocation ablation, expert strength, selectivity,
    tokens, cost, steps and calls."""
    import pandas as pd

    made: list[Path] = []
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


def _ablation_figures(abl: Path, out, run_id: str) -> list[Path]:
    """`make ablations`: invocation, expert choice, noisy expert, inserted data."""
    import pandas as pd

    if not (abl / "metrics.csv").exists():
        return []
    ablations = pd.read_csv(abl / "metrics.csv")
    made = []
    if len(ran(ablations)):
        made.append(pass1_table(ablations, out("05_ablations_pass1"), run_id, _stage_hash(abl)))
    if len(ablation_rows(ablations)):
        made.append(invocation_ablation(ablations, out("05_ablations_invocation"), run_id, _stage_hash(abl)))
    return made


def images(paths: list[Path]) -> list:
    """IPython images of figure files, for ``display(*images(paths))`` in a notebook."""
    from IPython.display import Image

    return [Image(filename=str(p)) for p in paths]
