"""Operations on collections of intervals: merging, subtraction, coverage."""

from intervals.interval import Interval


def _sort_key(interval: Interval) -> tuple:
    """Order by start (closed starts first), then by end (open ends first)."""
    return (interval.start, not interval.left_closed, interval.end, interval.right_closed)


def merge(intervals: list[Interval]) -> list[Interval]:
    """Union of the intervals as a sorted list of disjoint, non-touching intervals."""
    items = sorted((iv for iv in intervals if not iv.is_empty()), key=_sort_key)
    merged: list[Interval] = []
    for interval in items:
        if merged and (merged[-1].overlaps(interval) or merged[-1].touches(interval)):
            merged[-1] = merged[-1].union(interval)
        else:
            merged.append(interval)
    return merged


def total_length(intervals: list[Interval]) -> float:
    """Length of the union of the intervals; overlaps are counted once."""
    return sum(interval.length for interval in merge(intervals))


def _part_before(a: Interval, b: Interval) -> Interval | None:
    """The part of ``a`` lying before ``b`` starts, if any."""
    if a.start > b.start:
        return None
    piece = Interval(a.start, b.start, a.left_closed, not b.left_closed)
    return None if piece.is_empty() else piece


def _part_after(a: Interval, b: Interval) -> Interval | None:
    """The part of ``a`` lying after ``b`` ends, if any."""
    if a.end < b.end:
        return None
    piece = Interval(b.end, a.end, not b.right_closed, a.right_closed)
    return None if piece.is_empty() else piece


def difference(a: Interval, b: Interval) -> list[Interval]:
    """The parts of ``a`` not in ``b``: zero, one or two intervals."""
    if a.is_empty():
        return []
    if not a.overlaps(b):
        return [a]
    pieces = [_part_before(a, b), _part_after(a, b)]
    return [piece for piece in pieces if piece is not None]


def subtract(base: Interval, holes: list[Interval]) -> list[Interval]:
    """The parts of ``base`` not covered by any of ``holes``, in order."""
    pieces = [] if base.is_empty() else [base]
    for hole in merge(holes):
        remaining = []
        for piece in pieces:
            remaining.extend(difference(piece, hole))
        pieces = remaining
    return pieces


def gaps(intervals: list[Interval], span: Interval | None = None) -> list[Interval]:
    """Uncovered stretches between the intervals, or within ``span`` when given."""
    merged = merge(intervals)
    if span is not None:
        return subtract(span, merged)
    result = []
    for i in range(len(merged) - 1):
        left, right = merged[i], merged[i + 1]
        result.append(Interval(left.end, right.start, not left.right_closed, not right.left_closed))
    return result


def clip(intervals: list[Interval], span: Interval) -> list[Interval]:
    """Each interval cut down to ``span``; intervals outside it are dropped."""
    result = []
    for interval in intervals:
        part = interval.intersection(span)
        if part is not None:
            result.append(part)
    return result


def coverage(intervals: list[Interval], value: float) -> int:
    """How many of the intervals contain ``value``."""
    return sum(1 for interval in intervals if interval.contains(value))


def coverage_segments(intervals: list[Interval]) -> list[tuple[float, float, int]]:
    """Split the line at every endpoint and count the intervals over each open piece.

    Returns ``(low, high, count)`` for the pieces with a non-zero count.
    """
    points = sorted({p for interval in intervals for p in (interval.start, interval.end)})
    segments = []
    for i in range(len(points) - 1):
        low, high = points[i], points[i + 1]
        count = coverage(intervals, (low + high) / 2)
        if count > 0:
            segments.append((low, high, count))
    return segments


def _boundary_events(intervals: list[Interval]) -> list[tuple[float, int, int]]:
    """Sweep events ``(position, rank, delta)``; rank orders events at one position.

    At a shared position an open end comes first, then closed starts, then closed
    ends and finally open starts, so that only truly shared points count as overlap.
    """
    events = []
    for interval in intervals:
        if interval.is_empty():
            continue
        events.append((interval.start, 1 if interval.left_closed else 3, 1))
        events.append((interval.end, 2 if interval.right_closed else 0, -1))
    events.sort()
    return events


def max_overlap(intervals: list[Interval]) -> int:
    """The largest number of intervals sharing a single point."""
    depth = best = 0
    for _, _, delta in _boundary_events(intervals):
        depth += delta
        best = max(best, depth)
    return best
