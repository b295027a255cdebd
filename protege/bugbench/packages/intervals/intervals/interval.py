"""The Interval value type: a range of numbers with open or closed ends."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Interval:
    """A range from ``start`` to ``end``; half-open ``[start, end)`` by default."""

    start: float
    end: float
    left_closed: bool = True
    right_closed: bool = False

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")

    @classmethod
    def closed(cls, start: float, end: float) -> "Interval":
        """Build ``[start, end]``."""
        return cls(start, end, True, True)

    @classmethod
    def open(cls, start: float, end: float) -> "Interval":
        """Build ``(start, end)``."""
        return cls(start, end, False, False)

    @classmethod
    def point(cls, value: float) -> "Interval":
        """Build the single-point interval ``[value, value]``."""
        return cls(value, value, True, True)

    def __str__(self) -> str:
        left = "[" if self.left_closed else "("
        right = "]" if self.right_closed else ")"
        return f"{left}{self.start}, {self.end}{right}"

    @property
    def length(self) -> float:
        """Distance between the endpoints."""
        return self.end - self.start

    @property
    def midpoint(self) -> float:
        """Point halfway between the endpoints."""
        return (self.start + self.end) / 2

    def is_empty(self) -> bool:
        """True if the interval contains no points."""
        return self.start == self.end and not (self.left_closed and self.right_closed)

    def contains(self, value: float) -> bool:
        """True if ``value`` lies in the interval, honouring open ends."""
        if value < self.start or value > self.end:
            return False
        if value == self.start and not self.left_closed:
            return False
        if value == self.end and not self.right_closed:
            return False
        return True

    def __contains__(self, value: float) -> bool:
        return self.contains(value)

    def covers(self, other: "Interval") -> bool:
        """True if every point of ``other`` is in this interval."""
        if other.is_empty():
            return True
        start_ok = self.start < other.start or (
            self.start == other.start and (self.left_closed or not other.left_closed)
        )
        end_ok = other.end < self.end or (
            self.end == other.end and (self.right_closed or not other.right_closed)
        )
        return start_ok and end_ok

    def overlaps(self, other: "Interval") -> bool:
        """True if the two intervals share at least one point."""
        if self.is_empty() or other.is_empty():
            return False
        if self.end < other.start or other.end < self.start:
            return False
        if self.end == other.start:
            return self.right_closed and other.left_closed
        if other.end == self.start:
            return other.right_closed and self.left_closed
        return True

    def touches(self, other: "Interval") -> bool:
        """True if the intervals are disjoint but meet at an endpoint with no gap."""
        if self.is_empty() or other.is_empty():
            return False
        if self.end == other.start:
            return self.right_closed != other.left_closed
        if other.end == self.start:
            return other.right_closed != self.left_closed
        return False

    def intersection(self, other: "Interval") -> "Interval | None":
        """The shared part of both intervals, or None if they do not overlap."""
        if not self.overlaps(other):
            return None
        start, left_closed = _later_start(self, other)
        end, right_closed = _earlier_end(self, other)
        return Interval(start, end, left_closed, right_closed)

    def union(self, other: "Interval") -> "Interval":
        """The single interval covering both; they must overlap or touch."""
        if not (self.overlaps(other) or self.touches(other)):
            raise ValueError(f"{self} and {other} are disjoint")
        start, left_closed = _earlier_start(self, other)
        end, right_closed = _later_end(self, other)
        return Interval(start, end, left_closed, right_closed)

    def gap(self, other: "Interval") -> float:
        """Distance between the intervals (0 when they overlap or touch)."""
        return max(0, other.start - self.end, self.start - other.end)

    def shift(self, offset: float) -> "Interval":
        """Move both endpoints by ``offset``."""
        return Interval(self.start + offset, self.end + offset, self.left_closed, self.right_closed)

    def scale(self, factor: float, origin: float = 0) -> "Interval":
        """Stretch around ``origin``; a negative factor mirrors the interval."""
        if factor == 0:
            raise ValueError("scale factor must be non-zero")
        a = origin + (self.start - origin) * factor
        b = origin + (self.end - origin) * factor
        if factor > 0:
            return Interval(a, b, self.left_closed, self.right_closed)
        return Interval(b, a, self.right_closed, self.left_closed)

    def expand(self, amount: float) -> "Interval":
        """Grow both ends outward by ``amount`` (shrink if negative)."""
        start = self.start - amount
        end = self.end + amount
        if end < start:
            raise ValueError(f"expanding {self} by {amount} would invert it")
        return Interval(start, end, self.left_closed, self.right_closed)

    def split(self, at: float) -> "tuple[Interval, Interval]":
        """Cut at an inner point; the point goes to the right-hand part."""
        if not self.start < at < self.end:
            raise ValueError(f"{at} is not strictly inside {self}")
        return (
            Interval(self.start, at, self.left_closed, False),
            Interval(at, self.end, True, self.right_closed),
        )


def _later_start(a: Interval, b: Interval) -> tuple[float, bool]:
    if a.start > b.start:
        return a.start, a.left_closed
    if b.start > a.start:
        return b.start, b.left_closed
    return a.start, a.left_closed and b.left_closed


def _earlier_end(a: Interval, b: Interval) -> tuple[float, bool]:
    if a.end < b.end:
        return a.end, a.right_closed
    if b.end < a.end:
        return b.end, b.right_closed
    return a.end, a.right_closed and b.right_closed


def _earlier_start(a: Interval, b: Interval) -> tuple[float, bool]:
    if a.start < b.start:
        return a.start, a.left_closed
    if b.start < a.start:
        return b.start, b.left_closed
    return a.start, a.left_closed or b.left_closed


def _later_end(a: Interval, b: Interval) -> tuple[float, bool]:
    if a.end > b.end:
        return a.end, a.right_closed
    if b.end > a.end:
        return b.end, b.right_closed
    return a.end, a.right_closed or b.right_closed
