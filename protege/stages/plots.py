"""What every figure shares: matplotlib/seaborn set up headless, the stamp of the run and config a
figure came from, ORACLE labels, and reading recorded tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROLE_COLORS = {"system": "#bbbbbb", "task": "#8da0cb", "protege": "#66c2a5", "observation": "#fc8d62",
               "guidance": "#e78ac3"}


def setup_plots():
    import matplotlib

    matplotlib.use("Agg")  # files only; works without a display
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    return plt, sns


def save_figure(fig, out: str | Path, run_id: str, chash: str) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Below the figure's edge (the tight bounding box takes it in), so it never covers tick labels.
    fig.text(0.99, -0.005, f"run {run_id} · config {chash}", ha="right", va="top", fontsize=7, color="#666666")
    # Fixed metadata so the same records give byte-identical files.
    fig.savefig(out, dpi=120, bbox_inches="tight", metadata={"Software": None})
    import matplotlib.pyplot as plt

    plt.close(fig)
    return out


ORACLE_COLOR = "#d62728"


def read_table(data: Any):
    """A DataFrame as is, or a CSV path read into one."""
    import pandas as pd

    return data if isinstance(data, pd.DataFrame) else pd.read_csv(data)


def ran(metrics: Any):
    """Rows of metrics.csv whose condition was run (`skipped` empty).

    >>> import pandas as pd
    >>> ran(pd.DataFrame({"condition": ["a", "b"], "skipped": [None, "no model"]}))["condition"].tolist()
    ['a']
    """
    df = read_table(metrics)
    if "skipped" not in df:
        return df
    return df[df["skipped"].isna() | (df["skipped"].astype(str).str.strip() == "")]


def condition_label(condition: str, oracle: Any) -> str:
    return f"{condition}  ORACLE" if is_oracle_value(oracle) else str(condition)


def is_oracle_value(value: Any) -> bool:
    try:
        return bool(int(float(value)))
    except (TypeError, ValueError):
        return False


def mark_oracle_ticks(ax, labels: list[str]) -> None:
    for tick, label in zip(ax.get_yticklabels(), labels):
        if label.endswith("ORACLE"):
            tick.set_color(ORACLE_COLOR)


def condition_order(df, column: str = "condition") -> list[str]:
    """Values of a column in first-appearance order (the order the stage wrote them)."""
    return list(dict.fromkeys(df[column].astype(str)))
