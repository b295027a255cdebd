"""The study's metrics, one place for evaluation (stage 05) and RL (stage 04): Pass@1 with a
bootstrap interval over instances, loop rate (paper Fig. 6), the expert's share of tokens (paper
Fig. 3) and the summary row of one condition. Pure functions of finished episodes, no I/O."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from protege.core.loop_detection import has_long_run, repeats_in_window

LOOP_THRESHOLD = 10  # paper Fig. 6: a run of identical base commands longer than this is a loop
# Exits "at a limit": the step limit, or the repeat limit that cuts an established loop short (it would
# have run on to the step limit: AgentConfig.repeat_limit).
LIMIT_EXITS = ("step_limit", "repeat_limit")


def _mean(values: Sequence[float]) -> float:
    vals = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return sum(vals) / len(vals) if vals else math.nan


def pass1_interval(per_instance: Sequence[Sequence[float]], level: float = 0.95, n_boot: int = 2000,
                   seed: int = 0) -> tuple[float, float, float]:
    """Pass@1 and its percentile-bootstrap interval over instances: (mean, lo, hi).

    `per_instance` holds, for each instance, its resolved values (0/1) across seeds. Pass@1 is
    the mean over instances of each instance's mean over seeds (= the mean over seeds of per-seed
    Pass@1 when every seed covers every instance). The interval resamples instances with
    replacement `n_boot` times (numpy, fixed `seed`, so it is reproducible) and takes the
    (1 - level) / 2 and (1 + level) / 2 quantiles of the resampled means.

    >>> [round(x, 3) for x in pass1_interval([[1, 1, 1], [0, 0, 0], [1, 0, 1], [0, 0, 0]])]
    [0.417, 0.0, 0.833]
    >>> pass1_interval([[1], [1]]), pass1_interval([[0, 1]])
    ((1.0, 1.0, 1.0), (0.5, 0.5, 0.5))
    >>> pass1_interval([])
    (nan, nan, nan)
    """
    import numpy as np

    means = np.array([_mean(v) for v in per_instance if len(v)], dtype=float)
    means = means[~np.isnan(means)]
    if not len(means):
        return math.nan, math.nan, math.nan
    mean = float(means.mean())
    if len(means) == 1:
        return mean, mean, mean
    rng = np.random.default_rng(seed)
    boots = means[rng.integers(0, len(means), size=(n_boot, len(means)))].mean(axis=1)
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return mean, float(lo), float(hi)


def paired_difference(a: dict[str, Sequence[float]], b: dict[str, Sequence[float]], level: float = 0.95,
                      n_boot: int = 2000, seed: int = 0) -> dict[str, float]:
    """B minus A on the instances both were run on, each instance's value its mean over seeds,
    with a percentile-bootstrap interval that resamples instances and keeps each instance's pair
    together: two conditions run on the same tasks share most of their variance (the hard tasks
    are hard for both), so the paired interval is far narrower than two separate ones.
    `b_better` / `a_better` count the instances where one is strictly higher, and `p_sign` is the
    exact two-sided sign test on them (for 0/1 outcomes these are McNemar's discordant pairs and
    exact test): how often a split at least this uneven arises when neither condition is better.

    >>> a = {"t1": [1], "t2": [0], "t3": [0], "t4": [1]}
    >>> b = {"t1": [1], "t2": [1], "t3": [0], "t4": [1], "t5": [1]}
    >>> d = paired_difference(a, b)
    >>> d["n"], d["a"], d["b"], d["diff"], d["b_better"], d["a_better"]
    (4, 0.5, 0.75, 0.25, 1, 0)
    >>> d["lo"], d["hi"], d["p_sign"]
    (0.0, 0.75, 1.0)
    >>> round(paired_difference({str(i): [0] for i in range(6)}, {str(i): [1] for i in range(6)})["p_sign"], 4)
    0.0312
    >>> paired_difference({"t": [1, 0]}, {"t": [1, 1]})["diff"], paired_difference({}, {})["n"]
    (0.5, 0)
    """
    import numpy as np

    common = [k for k in a if k in b]
    pa = np.array([_mean(a[k]) for k in common], dtype=float)
    pb = np.array([_mean(b[k]) for k in common], dtype=float)
    keep = ~(np.isnan(pa) | np.isnan(pb))
    pa, pb = pa[keep], pb[keep]
    if not len(pa):
        return {"n": 0, "a": math.nan, "b": math.nan, "diff": math.nan, "lo": math.nan, "hi": math.nan,
                "b_better": 0, "a_better": 0, "p_sign": math.nan}
    d = pb - pa
    lo = hi = float(d.mean())
    if len(d) > 1:
        rng = np.random.default_rng(seed)
        boots = d[rng.integers(0, len(d), size=(n_boot, len(d)))].mean(axis=1)
        lo, hi = (float(q) for q in np.quantile(boots, [(1 - level) / 2, (1 + level) / 2]))
    up, down = int((d > 0).sum()), int((d < 0).sum())
    tail = sum(math.comb(up + down, k) for k in range(min(up, down) + 1)) / 2 ** (up + down)
    return {"n": int(len(d)), "a": float(pa.mean()), "b": float(pb.mean()), "diff": float(d.mean()), "lo": lo,
            "hi": hi, "b_better": up, "a_better": down, "p_sign": min(1.0, 2 * tail)}


def loop_rate(actions: Sequence[Sequence[str]], threshold: int = LOOP_THRESHOLD) -> float:
    """Share of trajectories (given as their action lists) with a run of more than `threshold`
    identical base commands (`protege.core.loop_detection.has_long_run`; paper Fig. 6).

    >>> loop_rate([["pytest"] * 11, ["ls", "cat a"], ["grep x"] * 3 + ["find ."] * 9])
    0.6666666666666666
    """

    return _mean([float(has_long_run(list(a), threshold)) for a in actions])


def token_share(rows: Sequence[dict[str, Any]]) -> float:
    """Expert tokens over all tokens, summed over trajectories (token-weighted, paper Fig. 3), from
    per-instance rows.

    >>> token_share([{"protege_prompt_tokens": 80, "protege_completion_tokens": 10, "expert_input_tokens": 8,
    ...               "expert_output_tokens": 2}, {"protege_prompt_tokens": 100, "protege_completion_tokens": 0,
    ...               "expert_input_tokens": 0, "expert_output_tokens": 0}])
    0.05
    """
    expert = sum(r["expert_input_tokens"] + r["expert_output_tokens"] for r in rows)
    total = expert + sum(r["protege_prompt_tokens"] + r["protege_completion_tokens"] for r in rows)
    return expert / total if total else math.nan


def summarize(rows: Sequence[dict[str, Any]], n_boot: int = 2000) -> dict[str, Any]:
    """The metric columns of one condition from its per-instance rows (all seeds).

    >>> rows = [dict(seed=s, instance_id=i, resolved=int(i == "a"), steps=10, expert_calls=2, format_errors=1,
    ...              protege_prompt_tokens=90, protege_completion_tokens=0, expert_input_tokens=5,
    ...              expert_output_tokens=5, cost_usd=0.5, loop=int(s == 1)) for s in (0, 1) for i in "ab"]
    >>> m = summarize(rows)
    >>> m["n_tasks"], m["n_seeds"], m["pass1_mean"], m["expert_calls_per_task"], m["loop_rate"]
    (2, 2, 0.5, 2.0, 0.5)
    >>> m["expert_token_share"], m["format_error_rate"], m["cost_per_task"]
    (0.1, 0.1, 0.5)
    >>> rows[0].update(repeats=3, exit_status="step_limit"); rows[1].update(exit_status="format_errors")
    >>> rows[2].update(repeats=10, exit_status="repeat_limit")  # a loop cut short counts as run to the limit
    >>> m = summarize(rows)
    >>> m["repeats_per_task"], m["repeat_rate"], m["step_limit_rate"], m["format_exit_rate"]
    (3.25, 0.5, 0.5, 0.25)
    """
    by_instance: dict[str, list[float]] = {}
    for r in rows:
        if r["resolved"] is not None and r["resolved"] != "":
            by_instance.setdefault(r["instance_id"], []).append(float(r["resolved"]))
    mean, lo, hi = pass1_interval(list(by_instance.values()), n_boot=n_boot)
    steps = sum(r["steps"] for r in rows)
    return {
        "n_tasks": len({r["instance_id"] for r in rows}), "n_seeds": len({r["seed"] for r in rows}),
        "pass1_mean": mean, "pass1_lo": lo, "pass1_hi": hi,
        "expert_calls_per_task": _mean([r["expert_calls"] for r in rows]),
        "expert_token_share": token_share(rows) if rows else math.nan,
        "loop_rate": _mean([r["loop"] for r in rows]),
        # Repeats: actions identical (arguments included) to one of the 5 before them; exits: how
        # episodes ended when they did not submit (a limit, consecutive format errors).
        "repeat_rate": _mean([float(int(r.get("repeats") or 0) > 0) for r in rows]),
        "repeats_per_task": _mean([int(r.get("repeats") or 0) for r in rows]),
        "step_limit_rate": _mean([float(r.get("exit_status") in LIMIT_EXITS) for r in rows]),
        "format_exit_rate": _mean([float(r.get("exit_status") == "format_errors") for r in rows]),
        "steps_per_task": _mean([r["steps"] for r in rows]),
        "cost_per_task": _mean([r["cost_usd"] for r in rows]),
        "format_error_rate": sum(r["format_errors"] for r in rows) / steps if steps else math.nan,
    }


def episode_metrics(trajs: Sequence[Any], resolved: Sequence[bool], loop_threshold: int = LOOP_THRESHOLD) -> dict[str, float]:
    """Resolve rate, loop rate (a base-command run longer than `loop_threshold`, paper Fig. 6),
    repeat rate (any action repeating one of the 5 before it), expert calls and steps.

    >>> from types import SimpleNamespace as NS
    >>> looping = NS(actions=["ls"] * 12, action_keys=["ls"] * 12, exit_status="step_limit",
    ...              counts=NS(expert_calls=2, steps=12, format_errors=0))
    >>> fixed = NS(actions=["ls", "cat a"], action_keys=["ls", "cat a"], exit_status="submitted",
    ...            counts=NS(expert_calls=0, steps=2, format_errors=1))
    >>> m = episode_metrics([looping, fixed], [False, True])
    >>> m["resolve_rate"], m["loop_rate"], m["repeat_rate"], m["repeats"], m["expert_calls"], m["steps"]
    (0.5, 0.5, 0.5, 5.5, 1.0, 7.0)
    >>> m["step_limit_rate"]
    0.5
    """

    repeats = [repeats_in_window(t.action_keys) for t in trajs]
    return {"episodes": len(trajs), "resolve_rate": _mean([float(r) for r in resolved]),
            "loop_rate": loop_rate([t.actions for t in trajs], loop_threshold),
            "repeat_rate": _mean([float(n > 0) for n in repeats]), "repeats": _mean([float(n) for n in repeats]),
            "step_limit_rate": _mean([float(t.exit_status in LIMIT_EXITS) for t in trajs]),
            "expert_calls": _mean([float(t.counts.expert_calls) for t in trajs]),
            "steps": _mean([float(t.counts.steps) for t in trajs]),
            "format_errors": _mean([float(t.counts.format_errors) for t in trajs])}
