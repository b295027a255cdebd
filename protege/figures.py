"""Figures, one function per figure. Each reads only recorded results (CSV / JSON written by
the stages), never runs a model, and stamps the figure with the run id and the hash of the
config the results came from, so a figure in `figures/` names its source."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

ROLE_COLORS = {"system": "#bbbbbb", "task": "#8da0cb", "protege": "#66c2a5", "observation": "#fc8d62",
               "guidance": "#e78ac3"}


def config_hash(config: dict[str, Any] | str | Path) -> str:
    """Short, stable hash of a resolved config (a dict or a config.json path).

    >>> config_hash({"b": 1, "a": [1, 2]}) == config_hash({"a": [1, 2], "b": 1})
    True
    >>> len(config_hash({}))
    10
    """
    if isinstance(config, (str, Path)):
        config = json.loads(Path(config).read_text(encoding="utf-8"))
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:10]


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
    fig.text(0.99, 0.005, f"run {run_id} · config {chash}", ha="right", va="bottom", fontsize=7, color="#666666")
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
        ax.text(max_length, ax.get_ylim()[1] * 0.95, f" max_length={max_length}\n {over:.0%} longer (split into windows)",
                va="top", fontsize=8)
    ax.set(xlabel="tokens (chat template rendering)", title="Conversation length")
    return _save(fig, out, run_id, chash)
