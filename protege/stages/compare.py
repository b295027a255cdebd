"""Reading evaluation results and comparing conditions task by task: B - A in Pass@1, expert
calls, loops, repeats and format errors with paired bootstrap intervals and exact sign tests
(`protege compare`, paired.csv)."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from protege.core.metrics import paired_difference
from protege.stages.plots import ran
from protege.tasks.bundled import PINPOINTED, TIERS

# paired.csv: one row per question of KEY_PAIRS and metric (metrics.paired_difference)
PAIRED_COLUMNS = ("question", "a_condition", "b_condition", "metric", "n", "a", "b", "diff", "lo", "hi", "b_better",
                  "a_better", "p_sign")


def load_metrics(out_dir: str | Path):
    """metrics.csv as a DataFrame indexed by condition."""
    import pandas as pd

    return pd.read_csv(Path(out_dir) / "metrics.csv", keep_default_na=False, na_values=[""]).set_index("condition")


def resolved_pivot(out_dir: str | Path):
    """Instances x conditions: the resolve rate over seeds (per_instance.csv)."""
    import pandas as pd

    rows = pd.read_csv(Path(out_dir) / "per_instance.csv")
    order = list(dict.fromkeys(rows["condition"]))
    return rows.pivot_table(index="instance_id", columns="condition", values="resolved", aggfunc="mean")[order]


def _read_per_instance(source: str | Path) -> tuple[Path, list[dict[str, str]]]:
    """The rows of a per_instance.csv (or of the one in an evaluation folder), and its path."""
    path = Path(source)
    path = path / "per_instance.csv" if path.is_dir() else path
    if not path.exists():
        raise FileNotFoundError(f"{path}: no per_instance.csv (an evaluation's output, e.g. runs/<run>/05_eval)")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [k for k in ("condition", "instance_id", "resolved", "expert_calls") if k not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing field(s) {', '.join(missing)} (not an evaluation's per_instance.csv?)")
        return path, list(reader)


def _select(path: Path, rows: list[dict[str, str]], condition: str | None) -> tuple[str, list[dict[str, str]]]:
    """One condition's rows (the only one when `condition` is None), or an error naming the file."""
    names = list(dict.fromkeys(r["condition"] for r in rows))
    if condition is None and len(names) == 1:
        condition = names[0]
    if condition not in names:
        raise ValueError(f"{path}: field 'condition' " + (f"has no {condition!r}" if condition else "is ambiguous")
                         + f"; conditions there: {', '.join(names) or 'none'}")
    return condition, [r for r in rows if r["condition"] == condition]


def compare(a: str | Path, b: str | Path, a_condition: str | None = None, b_condition: str | None = None,
            by: str | None = "tier", n_boot: int = 2000) -> list[dict[str, Any]]:
    """Condition B against condition A on the tasks both ran (two per_instance.csv or evaluation
    folders, e.g. two sweep points; a file with one condition needs no name): Pass@1 and expert
    calls per task, B - A with a paired bootstrap interval (metrics.paired_difference), over all
    tasks and per value of `by` (tier, mutation). Separate intervals of two conditions on the same
    tasks overlap even when one wins task after task; the paired interval is much narrower."""
    a_path, a_rows = _read_per_instance(a)
    b_path, b_rows = (a_path, a_rows) if Path(b) in (Path(a), a_path) else _read_per_instance(b)
    return _compare_rows(_select(a_path, a_rows, a_condition), _select(b_path, b_rows, b_condition), by, n_boot)


# (metric, per_instance.csv column): Pass@1 and expert calls always; the loop indicator (a run of
# more than 10 identical base commands), exact repeats and format errors where the files have them
ALWAYS_COMPARED = (("pass1", "resolved"), ("expert_calls", "expert_calls"))
COMPARED_IF_PRESENT = (("loop", "loop"), ("repeats", "repeats"), ("format_errors", "format_errors"))


def _compare_rows(a: tuple[str, list[dict[str, str]]], b: tuple[str, list[dict[str, str]]], by: str | None,
                  n_boot: int) -> list[dict[str, Any]]:

    (a_name, a_rows), (b_name, b_rows) = a, b

    def values(rows, column):
        out: dict[str, list[float]] = {}
        for r in rows:
            if r.get(column, "") != "":
                out.setdefault(r["instance_id"], []).append(float(r[column]))
        return out

    order = (PINPOINTED, *TIERS)  # the difficulty order, then any other value by name
    found = {r.get(by, "-") for r in a_rows + b_rows} if by else set()
    groups = ["all"] + sorted(found, key=lambda g: (order.index(g) if g in order else len(order), g))
    heads = a_rows[:1] + b_rows[:1]  # an older per_instance.csv lacks the optional columns
    metrics = [*ALWAYS_COMPARED, *((m, c) for m, c in COMPARED_IF_PRESENT if all(c in r for r in heads))]
    table = []
    for group in groups:
        a_in, b_in = ([r for r in rows if group == "all" or r.get(by, "-") == group] for rows in (a_rows, b_rows))
        for metric, column in metrics:
            d = paired_difference(values(a_in, column), values(b_in, column), n_boot=n_boot)
            table.append({"a_condition": a_name, "b_condition": b_name, "group": group, "metric": metric, **d})
    return table


# (A, B, what B - A measures): the study's questions, each a pair of conditions on the same tasks.
KEY_PAIRS = (
    ("base", "sft", "what SFT buys alone"),
    ("sft", "sft+expert", "what asking the expert adds"),
    ("sft+expert-location", "sft+expert", "descriptions vs locations from the expert"),
    ("sft+expert", "sft+expert-exact_edit", "exact edits vs descriptions from the expert"),
    ("sft+expert", "sft+rl+expert", "what RL changes"),
    ("ablate-random0.2", "ablate-learned", "learned vs random asking"),
    ("ablate-every5", "ablate-learned", "learned vs fixed-interval asking"),
    ("self-expert", "ablate-learned", "a real expert vs the protégé as its own"),
    ("noisy-expert", "ablate-learned", "a reliable vs a misleading expert"),
    ("sft-inserted+expert", "ablate-learned", "live vs post-hoc inserted training data"),
)


def paired_comparisons(out_dir: str | Path, pairs: Sequence[tuple[str, str, str]] = KEY_PAIRS,
                       n_boot: int = 2000) -> list[dict[str, Any]]:
    """One row per metric and pair of `pairs` whose two conditions both ran in out_dir (an
    evaluation folder): B - A in Pass@1 and in expert calls per task over all tasks, paired (`compare`)."""
    path, rows = _read_per_instance(out_dir)
    present = {r["condition"] for r in rows}
    return [{"question": question, **r} for a, b, question in pairs if a in present and b in present
            for r in _compare_rows(_select(path, rows, a), _select(path, rows, b), None, n_boot)]


def comparison_markdown(table: Sequence[dict[str, Any]]) -> str:
    """`compare`'s rows as a markdown table (percent for Pass@1 and loops, per task otherwise; p to 2 digits)."""
    def fmt(metric: str, x: float) -> str:
        if isinstance(x, float) and math.isnan(x):
            return "-"
        return f"{100 * x:.1f}%" if metric in ("pass1", "loop") else f"{x:.2g}" if metric == "p" else f"{x:.2f}"

    head = table[0] if table else {"a_condition": "A", "b_condition": "B"}
    lines = [f"A = {head['a_condition']}, B = {head['b_condition']}; paired 95% bootstrap intervals over tasks,"
             " exact sign test (McNemar for Pass@1) on the tasks where they differ", "",
             "| group | metric | tasks | A | B | B - A [95% CI] | B higher | A higher | sign test p |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in table:
        m = r["metric"]
        lines.append(f"| {r['group']} | {m} | {r['n']} | {fmt(m, r['a'])} | {fmt(m, r['b'])} | "
                     f"{fmt(m, r['diff'])} [{fmt(m, r['lo'])}, {fmt(m, r['hi'])}] | {r['b_better']} | {r['a_better']} | "
                     f"{fmt('p', r['p_sign'])} |")
    return "\n".join(lines)


# metrics.csv columns of a side-by-side table: (column, heading, percent?)
SIDE_BY_SIDE = (("pass1_mean", "Pass@1", True), ("expert_calls_per_task", "calls / task", False),
                ("expert_token_share", "expert token share", True), ("loop_rate", "loop rate", True),
                ("format_error_rate", "format errors / step", True), ("steps_per_task", "steps / task", False))


def _label(condition: str, run: str) -> str:
    return f"{condition} [{run}]"


def compare_runs(runs: dict[str, str | Path], out: str | Path, conditions: Sequence[str] | None = None,
                 n_boot: int = 2000) -> dict[str, Any]:
    """Two or more evaluation folders (e.g. the tool and the token protégé's `05_eval`) side by side:
    the conditions they share, renamed `<condition> [<run>]`, as one evaluation folder in `out`
    (metrics.csv, metrics_by_tier.csv, per_instance.csv, so every stage-05 figure draws them
    together), each later run against the first, condition by condition and task by task
    (paired.csv: B - A over all tasks and per tier), and comparison.md. The shared tasks only:
    a paired difference needs the same tasks on both sides."""
    import pandas as pd

    if len(runs) < 2:
        raise ValueError("compare_runs: give at least two runs (label -> evaluation folder)")
    tables: dict[str, dict[str, Any]] = {}
    for name, folder in runs.items():
        folder = Path(folder)
        for needed in ("metrics.csv", "metrics_by_tier.csv", "per_instance.csv"):
            if not (folder / needed).exists():
                raise FileNotFoundError(f"run {name!r}: {folder / needed} is missing (an evaluation folder, e.g. "
                                        "papermill_runs/<run>/results/05_eval)")
        tables[name] = {f: pd.read_csv(folder / f"{f}.csv") for f in ("metrics", "metrics_by_tier", "per_instance")}
    names = list(runs)
    first = tables[names[0]]["metrics"]
    shared = [c for c in ran(first)["condition"] if all(c in set(ran(t["metrics"])["condition"])
                                                        for t in (tables[n] for n in names[1:]))]
    if conditions:
        missing = [c for c in conditions if c not in shared]
        if missing:
            raise ValueError(f"condition(s) {', '.join(missing)} not run in every run; shared: {', '.join(shared)}")
        shared = list(conditions)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    combined = {}
    for kind in ("metrics", "metrics_by_tier", "per_instance"):
        parts = []
        for cond in shared:
            for name in names:
                df = tables[name][kind]
                parts.append(df[df["condition"] == cond].assign(condition=_label(cond, name)))
        combined[kind] = pd.concat(parts, ignore_index=True)
        combined[kind].to_csv(out / f"{kind}.csv", index=False)
    paired = []
    per_instance = {name: _read_per_instance(runs[name]) for name in names}  # csv rows, as `compare` reads them
    for cond in shared:
        a_rows = _select(*per_instance[names[0]], cond)[1]
        for name in names[1:]:
            rows = _compare_rows((_label(cond, names[0]), a_rows),
                                 (_label(cond, name), _select(*per_instance[name], cond)[1]), "tier", n_boot)
            paired += [{"question": f"{cond}: {name} vs {names[0]}", **r} for r in rows]
    pd.DataFrame(paired).to_csv(out / "paired.csv", index=False)
    configs = {n: json.loads((Path(f) / "config.json").read_text()) if (Path(f) / "config.json").exists() else None
               for n, f in runs.items()}
    (out / "config.json").write_text(json.dumps({"runs": {n: str(f) for n, f in runs.items()},
                                                 "conditions": shared, "configs": configs}, indent=2) + "\n")
    (out / "comparison.md").write_text(runs_markdown(combined["metrics"], combined["metrics_by_tier"], paired) + "\n")
    return {"conditions": shared, "out": out, "paired": paired}


def runs_markdown(metrics: Any, by_tier: Any, paired: Sequence[dict[str, Any]]) -> str:
    """compare_runs' tables: the metrics side by side, Pass@1 and calls per task by tier, the paired
    differences over all tasks."""
    def pct(x: float) -> str:
        return "-" if x != x else f"{100 * x:.1f}%"

    head = "| condition | " + " | ".join(h for _, h, _ in SIDE_BY_SIDE) + " |"
    lines = [head, "|---|" + "---|" * len(SIDE_BY_SIDE)]
    for r in metrics.to_dict("records"):
        cells = []
        for col, _, percent in SIDE_BY_SIDE:
            x = float(r.get(col, float("nan")))
            cell = pct(x) if percent else ("-" if x != x else f"{x:.2f}")
            if col == "pass1_mean" and "pass1_lo" in r:
                cell += f" [{pct(float(r['pass1_lo']))}, {pct(float(r['pass1_hi']))}]"
            cells.append(cell)
        lines.append(f"| {r['condition']} | " + " | ".join(cells) + " |")
    tiers = [t for t in (PINPOINTED, *TIERS) if t in set(by_tier["group"])]
    lines += ["", "Pass@1 / expert calls per task, by tier:", "",
              "| condition | " + " | ".join(tiers) + " |", "|---|" + "---|" * len(tiers)]
    for cond in dict.fromkeys(by_tier["condition"]):
        sub = by_tier[by_tier["condition"] == cond].set_index("group")
        lines.append(f"| {cond} | " + " | ".join(
            f"{pct(float(sub.loc[t, 'pass1_mean']))} / {float(sub.loc[t, 'expert_calls_per_task']):.2f}"
            if t in sub.index else "-" for t in tiers) + " |")
    overall = [{**r, "group": r["question"]} for r in paired if r["group"] == "all"]
    if overall:
        table = comparison_markdown(overall).split("\n")
        lines += ["", "Paired differences over all tasks (B - A; A is the first run, B the other):", "",
                  table[2].replace("| group |", "| question |"), *table[3:]]
    return "\n".join(lines)
