"""Vectors as plain sequences of numbers."""

from __future__ import annotations

import math
from typing import Sequence

from .matrix import Number

Vector = Sequence[Number]

TOLERANCE = 1e-9


def _require_same_length(a: Vector, b: Vector) -> int:
    if len(a) != len(b):
        raise ValueError(f"length mismatch: {len(a)} vs {len(b)}")
    if len(a) == 0:
        raise ValueError("vectors must not be empty")
    return len(a)


def dot(a: Vector, b: Vector) -> Number:
    """Return the dot product of two vectors of equal length."""
    n = _require_same_length(a, b)
    return sum(a[i] * b[i] for i in range(n))


def vector_add(a: Vector, b: Vector) -> list[Number]:
    """Return the entrywise sum of two vectors."""
    _require_same_length(a, b)
    return [x + y for x, y in zip(a, b)]


def vector_sub(a: Vector, b: Vector) -> list[Number]:
    """Return the entrywise difference ``a - b``."""
    _require_same_length(a, b)
    return [x - y for x, y in zip(a, b)]


def scale_vector(v: Vector, factor: Number) -> list[Number]:
    """Return ``v`` with every entry multiplied by ``factor``."""
    return [factor * x for x in v]


def norm(v: Vector, order: float = 2) -> float:
    """Return the p-norm of ``v``; ``order`` may be 1, 2, any p >= 1, or math.inf."""
    if len(v) == 0:
        raise ValueError("norm of an empty vector")
    if order < 1:
        raise ValueError(f"norm order must be at least 1, got {order}")
    if order == math.inf:
        return float(max(abs(x) for x in v))
    if order == 1:
        return float(sum(abs(x) for x in v))
    return sum(abs(x) ** order for x in v) ** (1 / order)


def distance(a: Vector, b: Vector) -> float:
    """Return the Euclidean distance between two points."""
    return norm(vector_sub(a, b))


def normalise(v: Vector) -> list[float]:
    """Return the unit vector pointing the same way as ``v``."""
    length = norm(v)
    if length < TOLERANCE:
        raise ValueError("cannot normalise a zero vector")
    return [x / length for x in v]


def cross(a: Vector, b: Vector) -> list[Number]:
    """Return the cross product of two 3-D vectors."""
    if len(a) != 3 or len(b) != 3:
        raise ValueError("cross product is only defined for 3-D vectors")
    return [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]


def projection(a: Vector, onto: Vector) -> list[float]:
    """Return the orthogonal projection of ``a`` onto ``onto``."""
    denom = dot(onto, onto)
    if abs(denom) < TOLERANCE:
        raise ValueError("cannot project onto a zero vector")
    return scale_vector(onto, dot(a, onto) / denom)


def cosine_similarity(a: Vector, b: Vector) -> float:
    """Return the cosine of the angle between two non-zero vectors, clamped to [-1, 1]."""
    _require_same_length(a, b)
    na, nb = norm(a), norm(b)
    if na < TOLERANCE or nb < TOLERANCE:
        raise ValueError("cosine similarity is undefined for a zero vector")
    return max(-1.0, min(1.0, dot(a, b) / (na * nb)))


def angle_between(a: Vector, b: Vector, degrees: bool = False) -> float:
    """Return the angle between two vectors in radians (or degrees)."""
    angle = math.acos(cosine_similarity(a, b))
    if degrees:
        return math.degrees(angle)
    return angle


def is_orthogonal(a: Vector, b: Vector, tol: float = TOLERANCE) -> bool:
    """Return True if the dot product of ``a`` and ``b`` is within ``tol`` of zero."""
    return abs(dot(a, b)) <= tol


def is_parallel(a: Vector, b: Vector, tol: float = TOLERANCE) -> bool:
    """Return True if two non-zero vectors point along the same line (either direction)."""
    return abs(abs(cosine_similarity(a, b)) - 1) <= tol


def lerp(a: Vector, b: Vector, t: float) -> list[float]:
    """Return the point a fraction ``t`` of the way from ``a`` to ``b``."""
    return vector_add(a, scale_vector(vector_sub(b, a), t))
