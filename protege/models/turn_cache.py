"""The KV cache a batch of conversations keeps across agent turns: rows whose next prompt extends
what was cached reuse it, and only the new tokens are prefilled."""

from __future__ import annotations

from typing import Any


class TurnCache:
    """KV caches of conversations from earlier calls, found again by their token ids.

    An agent conversation only grows: next turn's prompt starts with this turn's prompt and
    completion (up to how the chat template re-renders the completion). `take(ids)` returns
    the entry sharing the longest prefix with `ids` and that length (at least one token is left
    to compute); a conversation whose prefix changed (context truncation) shares only what is
    really common, down to nothing: a full prefill. Entries are never modified (a batch copies
    what it needs), so episodes that share a prefix (the system prompt, G rollouts of one task)
    can all start from one entry; an entry is dropped when a longer one extends it, or when
    the entries hold more than `max_mb` (least recently used first). transformers' own
    `generate(cache=...)` does the continuation; this class only keeps one batch-1 cache per
    conversation between calls and batches them (why not `generate_batch`: its paged cache
    does not persist across calls)."""

    MIN_REUSE = 16  # a shorter common prefix is not worth a cache lookup

    def __init__(self, max_mb: int):
        self.max_bytes = max_mb * 2**20
        self.entries: list[tuple[Any, list[tuple[Any, Any]]]] = []  # (token ids as a numpy array, layers)

    def take(self, ids: list[int]) -> tuple[int, list[tuple[Any, Any]] | None]:
        import numpy as np

        query = np.asarray(ids)
        best, best_n = None, 0
        for i, (cached, _) in enumerate(self.entries):
            n = common_prefix(cached, query)
            if n > best_n:
                best, best_n = i, n
        best_n = min(best_n, len(ids) - 1)
        if best is None or best_n < self.MIN_REUSE:
            return 0, None
        entry = self.entries.pop(best)
        self.entries.append(entry)  # most recently used last
        return best_n, entry[1]

    def put(self, ids: list[int], layers: list[tuple[Any, Any]]) -> None:
        import numpy as np

        new = np.asarray(ids[:layers[0][0].shape[2]])
        self.entries = [(c, lay) for c, lay in self.entries if not (len(c) <= len(new) and common_prefix(c, new) == len(c))]
        self.entries.append((new, layers))
        sizes = [sum(k.nbytes + v.nbytes for k, v in lay) for _, lay in self.entries]
        while len(self.entries) > 1 and sum(sizes) > self.max_bytes:
            self.entries.pop(0)
            sizes.pop(0)


def gather_rows(cache: Any, row: int, cols: list[int]) -> list[tuple[Any, Any]]:
    """One row's keys/values at `cols` of a batched cache, per layer, as batch-1 copies
    (index_select allocates them: no clone needed)."""
    import torch

    index = torch.tensor(cols, dtype=torch.long)
    return [(layer.keys[row:row + 1].index_select(2, index.to(layer.keys.device)),
             layer.values[row:row + 1].index_select(2, index.to(layer.values.device)))
            for layer in cache.layers]


def common_prefix(a, b) -> int:
    """Length of the common prefix of two 1-d integer arrays.

    >>> import numpy as np
    >>> common_prefix(np.array([1, 2, 3]), np.array([1, 2, 4, 5])), common_prefix(np.array([1]), np.array([1, 2]))
    (2, 1)
    """
    n = min(len(a), len(b))
    diff = (a[:n] != b[:n]).nonzero()[0]
    return int(diff[0]) if len(diff) else n
