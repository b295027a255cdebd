"""One progress line on the console for long stages: what a newcomer running `make small` sees
while a notebook works (the pipeline streams the notebook's printed lines; its tqdm bars stay in
the .ipynb). Lines look like ``[sft] 120/933 (13%) 4m05s elapsed, ETA 27m42s: loss 0.412``."""

from __future__ import annotations

import time


def _clock(seconds: float) -> str:
    """
    >>> _clock(65), _clock(3725)
    ('1m05s', '1h02m05s')
    """
    seconds = int(round(max(0.0, seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


class Progress:
    """Prints ``[name] done/total (pct) elapsed, ETA: note`` at most every `every_s` seconds (and
    at the last item), the ETA from the mean pace so far.

    >>> p = Progress("sft", 4, every_s=0, clock=iter([0.0, 10.0, 20.0]).__next__)
    >>> p.update(1, "loss 0.5")
    [sft] 1/4 (25%) 0m10s elapsed, ETA 0m30s: loss 0.5
    >>> p.update(4)
    [sft] 4/4 (100%) 0m20s elapsed, ETA 0m00s
    """

    def __init__(self, name: str, total: int, every_s: float = 30.0, clock=time.monotonic):
        self.name, self.total, self.every_s, self.clock = name, max(1, total), every_s, clock
        self.start = clock()
        self.last = -float("inf")

    def update(self, done: int, note: str = "") -> None:
        now = self.clock()
        if now - self.last < self.every_s and done < self.total:
            return
        self.last = now
        elapsed = now - self.start
        eta = elapsed / done * (self.total - done) if done else float("nan")
        pct = 100 * done / self.total
        line = (f"[{self.name}] {done}/{self.total} ({pct:.0f}%) {_clock(elapsed)} elapsed, "
                f"ETA {_clock(eta) if eta == eta else '?'}")
        print(line + (f": {note}" if note else ""), flush=True)
