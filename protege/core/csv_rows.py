"""Long checks that write one CSV row per item as it finishes, so an interrupted run resumes."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def read_rows(out: Path) -> list[dict[str, str]]:
    if not out.exists():
        return []
    with out.open(newline="") as fh:
        return list(csv.DictReader(fh))


def resumable_rows(items: Sequence[T], key: Callable[[T], str], work: Callable[[T], dict[str, Any]], out: Path,
                   fields: list[str], workers: int = 2, desc: str = "rows", progress: bool = True,
                   row_key: Callable[[dict[str, Any]], str] | None = None) -> list[dict[str, Any]]:
    """`work(item)` for every item whose key has no row in `out` yet (in parallel threads), each
    row appended and flushed as it comes; returns the rows of all `items`, old and new, in order.

    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "rows.csv"
    >>> rows = resumable_rows([1, 2], str, lambda i: {"id": str(i), "sq": i * i}, out, ["id", "sq"], progress=False)
    >>> [r["sq"] for r in resumable_rows([1, 2, 3], str, lambda i: {"id": str(i), "sq": -1}, out, ["id", "sq"],
    ...                                  progress=False)]
    ['1', '4', -1]
    """
    from tqdm.auto import tqdm

    row_key = row_key or (lambda r: r[fields[0]])
    done = {row_key(r): r for r in read_rows(out)}
    todo = [item for item in items if key(item) not in done]
    out.parent.mkdir(parents=True, exist_ok=True)
    new_file = not out.exists() or out.stat().st_size == 0
    with out.open("a", newline="") as fh, ThreadPoolExecutor(max(1, workers)) as pool:
        writer = csv.DictWriter(fh, fields, extrasaction="ignore")
        if new_file:
            writer.writeheader()
        for item, row in tqdm(zip(todo, pool.map(work, todo)), total=len(todo), desc=desc, disable=not progress):
            writer.writerow(row)
            fh.flush()
            done[key(item)] = row
    return [done[key(item)] for item in items if key(item) in done]
