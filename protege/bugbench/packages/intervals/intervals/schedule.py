"""Scheduling helpers built on intervals: rooms, free slots and selections."""

from intervals.interval import Interval
from intervals.ops import _sort_key, gaps, max_overlap, merge


def min_rooms(meetings: list[Interval]) -> int:
    """Fewest rooms needed so that no two overlapping meetings share a room."""
    return max_overlap(meetings)


def assign_rooms(meetings: list[Interval]) -> list[int]:
    """Room number for each meeting (input order), reusing the lowest free room."""
    order = sorted(range(len(meetings)), key=lambda i: _sort_key(meetings[i]))
    last_in_room: list[Interval] = []
    rooms = [0] * len(meetings)
    for index in order:
        meeting = meetings[index]
        for room, previous in enumerate(last_in_room):
            if not previous.overlaps(meeting):
                last_in_room[room] = meeting
                rooms[index] = room
                break
        else:
            rooms[index] = len(last_in_room)
            last_in_room.append(meeting)
    return rooms


def conflicts(meetings: list[Interval]) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)`` with ``i < j`` of meetings that overlap."""
    pairs = []
    for i in range(len(meetings)):
        for j in range(i + 1, len(meetings)):
            if meetings[i].overlaps(meetings[j]):
                pairs.append((i, j))
    return pairs


def free_slots(busy: list[Interval], window: Interval, duration: float) -> list[Interval]:
    """Free stretches of ``window`` that last at least ``duration``."""
    if duration < 0:
        raise ValueError(f"duration must be non-negative, got {duration}")
    return [slot for slot in gaps(busy, window) if slot.length >= duration]


def first_free_slot(busy: list[Interval], window: Interval, duration: float) -> Interval | None:
    """The earliest half-open slot of exactly ``duration`` inside ``window``, or None."""
    for slot in free_slots(busy, window, duration):
        return Interval(slot.start, slot.start + duration, slot.left_closed, False)
    return None


def busy_time(meetings: list[Interval], window: Interval) -> float:
    """Total time inside ``window`` covered by at least one meeting."""
    total = 0.0
    for interval in merge(meetings):
        part = interval.intersection(window)
        if part is not None:
            total += part.length
    return total


def utilization(meetings: list[Interval], window: Interval) -> float:
    """Fraction of ``window`` covered by meetings, between 0.0 and 1.0."""
    if window.length <= 0:
        raise ValueError("window must have positive length")
    return busy_time(meetings, window) / window.length


def _end_key(interval: Interval) -> tuple:
    """Earliest end first; among equal ends the latest (shortest) start first."""
    return (interval.end, interval.right_closed, -interval.start)


def max_non_overlapping(intervals: list[Interval]) -> list[Interval]:
    """A largest set of pairwise disjoint intervals, chosen greedily by earliest end.

    Empty intervals are ignored.
    """
    chosen: list[Interval] = []
    for interval in sorted(intervals, key=_end_key):
        if interval.is_empty():
            continue
        if not chosen or not chosen[-1].overlaps(interval):
            chosen.append(interval)
    return chosen


def min_removals(intervals: list[Interval]) -> int:
    """Fewest non-empty intervals to drop so that the rest do not overlap."""
    non_empty = [interval for interval in intervals if not interval.is_empty()]
    return len(non_empty) - len(max_non_overlapping(non_empty))


def longest_free_slot(busy: list[Interval], window: Interval) -> Interval | None:
    """The longest free stretch of ``window``; the earliest wins ties."""
    best = None
    for slot in gaps(busy, window):
        if best is None or slot.length > best.length:
            best = slot
    return best
