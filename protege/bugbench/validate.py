"""Validation of the bundled benchmark for real: every instance's gold patch resolves it and the
empty patch does not (`protege bench validate`)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from protege.env.grading import grade
from protege.tasks.schema import Task


def validate(tasks: list[Task], env_config=None, workers: int = 2, progress: bool = True) -> list[dict]:
    """Grade every instance twice for real: the gold patch must resolve it and the empty
    patch must not. Returns one row per instance."""
    from tqdm.auto import tqdm


    def one(task: Task) -> dict:
        gold = grade(task, task.patch, env_config, model_name="gold")
        empty = grade(task, "", env_config, model_name="empty")
        return {"instance_id": task.instance_id, "package": task.extra.get("package", task.repo),
                "tier": task.difficulty or "-", "split": task.extra.get("split", "-"),
                "gold_resolved": gold.resolved, "empty_resolved": empty.resolved,
                "ok": gold.resolved and not empty.resolved,
                "error": gold.error or empty.error}

    with ThreadPoolExecutor(workers) as pool:
        return list(tqdm(pool.map(one, tasks), total=len(tasks), desc="validate", disable=not progress))


def validation_table(rows: list[dict]):
    """Counts per package and tier: instances, gold resolved, empty not resolved."""
    import pandas as pd

    df = pd.DataFrame(rows)
    df["empty_not_resolved"] = ~df["empty_resolved"]
    return (df.groupby(["package", "tier"])
              .agg(instances=("instance_id", "count"), gold_resolved=("gold_resolved", "sum"),
                   empty_not_resolved=("empty_not_resolved", "sum"))
              .reset_index())
