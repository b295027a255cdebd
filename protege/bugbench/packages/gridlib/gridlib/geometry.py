"""Integer plane geometry: points, distances, rectangles and lattice polygons."""

from __future__ import annotations

from math import gcd
from typing import NamedTuple, Sequence


class Point(NamedTuple):
    """A point (or offset) on the integer plane."""

    x: int
    y: int

    def __add__(self, other: Point) -> Point:  # type: ignore[override]
        return Point(self.x + other.x, self.y + other.y)

    def __sub__(self, other: Point) -> Point:
        return Point(self.x - other.x, self.y - other.y)

    def scale(self, factor: int) -> Point:
        """Return the point with both coordinates multiplied by ``factor``."""
        return Point(self.x * factor, self.y * factor)


class Rect(NamedTuple):
    """An axis-aligned rectangle covering cells ``x <= px < x + width`` and likewise for y."""

    x: int
    y: int
    width: int
    height: int

    @property
    def right(self) -> int:
        return self.x + self.width

    @property
    def bottom(self) -> int:
        return self.y + self.height


def manhattan(a: Point, b: Point) -> int:
    """Return the taxicab distance between two points."""
    return abs(a.x - b.x) + abs(a.y - b.y)


def chebyshev(a: Point, b: Point) -> int:
    """Return the king-move distance between two points."""
    return max(abs(a.x - b.x), abs(a.y - b.y))


def squared_distance(a: Point, b: Point) -> int:
    """Return the squared Euclidean distance between two points."""
    dx = a.x - b.x
    dy = a.y - b.y
    return dx * dx + dy * dy


def rotate_point(p: Point, quarter_turns: int) -> Point:
    """Rotate ``p`` about the origin clockwise (y grows downward) by 90-degree steps."""
    turns = quarter_turns % 4
    if turns == 0:
        return p
    if turns == 1:
        return Point(-p.y, p.x)
    if turns == 2:
        return Point(-p.x, -p.y)
    return Point(p.y, -p.x)


def bounding_box(points: Sequence[Point]) -> Rect:
    """Return the smallest rectangle containing every point (cells are 1x1)."""
    if not points:
        raise ValueError("bounding_box() of an empty sequence")
    min_x = min(p.x for p in points)
    min_y = min(p.y for p in points)
    max_x = max(p.x for p in points)
    max_y = max(p.y for p in points)
    return Rect(min_x, min_y, max_x - min_x + 1, max_y - min_y + 1)


def rect_area(r: Rect) -> int:
    """Return the number of cells covered by a rectangle."""
    if r.width < 0 or r.height < 0:
        raise ValueError(f"rectangle has negative size: {r}")
    return r.width * r.height


def rect_contains(r: Rect, p: Point) -> bool:
    """Return True if point ``p`` lies inside rectangle ``r``."""
    return r.x <= p.x < r.right and r.y <= p.y < r.bottom


def _overlap_1d(start_a: int, end_a: int, start_b: int, end_b: int) -> tuple[int, int]:
    """Return the bounds of the overlap of [start_a, end_a) and [start_b, end_b); may be empty."""
    return max(start_a, start_b), min(end_a, end_b)


def rect_intersection(a: Rect, b: Rect) -> Rect | None:
    """Return the overlapping rectangle of ``a`` and ``b``, or None if they are disjoint."""
    x0, x1 = _overlap_1d(a.x, a.right, b.x, b.right)
    y0, y1 = _overlap_1d(a.y, a.bottom, b.y, b.bottom)
    if x1 <= x0 or y1 <= y0:
        return None
    return Rect(x0, y0, x1 - x0, y1 - y0)


def rects_overlap(a: Rect, b: Rect) -> bool:
    """Return True if the two rectangles share at least one cell."""
    return rect_intersection(a, b) is not None


def union_area(a: Rect, b: Rect) -> int:
    """Return the number of cells covered by either rectangle."""
    shared = rect_intersection(a, b)
    overlap = rect_area(shared) if shared is not None else 0
    return rect_area(a) + rect_area(b) - overlap


def _signed_double_area(polygon: Sequence[Point]) -> int:
    """Return twice the signed shoelace area (positive when counter-clockwise in y-up axes)."""
    total = 0
    n = len(polygon)
    for i in range(n):
        cur = polygon[i]
        nxt = polygon[(i + 1) % n]
        total += cur.x * nxt.y - nxt.x * cur.y
    return total


def _require_polygon(polygon: Sequence[Point]) -> None:
    if len(polygon) < 3:
        raise ValueError(f"a polygon needs at least 3 vertices, got {len(polygon)}")


def polygon_area(polygon: Sequence[Point]) -> float:
    """Return the area of a simple polygon by the shoelace formula."""
    _require_polygon(polygon)
    return abs(_signed_double_area(polygon)) / 2


def is_counter_clockwise(polygon: Sequence[Point]) -> bool:
    """Return True if the vertices wind counter-clockwise in y-up axes."""
    _require_polygon(polygon)
    return _signed_double_area(polygon) > 0


def boundary_points(polygon: Sequence[Point]) -> int:
    """Return the number of lattice points on the polygon's boundary."""
    _require_polygon(polygon)
    count = 0
    for i in range(len(polygon)):
        step = polygon[(i + 1) % len(polygon)] - polygon[i]
        count += gcd(abs(step.x), abs(step.y))
    return count


def interior_points(polygon: Sequence[Point]) -> int:
    """Return the number of lattice points strictly inside the polygon (Pick's theorem)."""
    double_area = abs(_signed_double_area(polygon))
    boundary = boundary_points(polygon)
    return (double_area - boundary) // 2 + 1
