"""Exact linear algebra over the rationals by Gaussian elimination."""

from __future__ import annotations

from fractions import Fraction
from typing import Sequence

from .matrix import Number, _require_square, identity, shape

FracMatrix = list[list[Fraction]]


def _to_fractions(m: Sequence[Sequence[Number]]) -> FracMatrix:
    shape(m)
    return [[Fraction(x) for x in row] for row in m]


def _pivot_row(rows: FracMatrix, col: int, start: int) -> int:
    """Return the row at or below ``start`` with the largest |entry| in ``col``, or -1."""
    best = -1
    best_abs = Fraction(0)
    for i in range(start, len(rows)):
        value = abs(rows[i][col])
        if value > best_abs:
            best, best_abs = i, value
    return best


def _add_multiple(rows: FracMatrix, source: int, target: int, factor: Fraction) -> None:
    """Add ``factor`` times row ``source`` to row ``target`` in place."""
    rows[target] = [t + factor * s for t, s in zip(rows[target], rows[source])]


def _forward_eliminate(rows: FracMatrix, n_cols: int) -> tuple[list[int], int]:
    """Reduce ``rows`` to row echelon form in place over its first ``n_cols`` columns.

    Returns the pivot columns and the number of row swaps performed.
    """
    pivots: list[int] = []
    swaps = 0
    r = 0
    for c in range(n_cols):
        if r == len(rows):
            break
        p = _pivot_row(rows, c, r)
        if p < 0:
            continue
        if p != r:
            rows[p], rows[r] = rows[r], rows[p]
            swaps += 1
        for below in range(r + 1, len(rows)):
            _add_multiple(rows, r, below, -rows[below][c] / rows[r][c])
        pivots.append(c)
        r += 1
    return pivots, swaps


def _back_substitute(rows: FracMatrix, pivots: list[int]) -> None:
    """Turn a row echelon form into reduced row echelon form in place."""
    for r in range(len(pivots) - 1, -1, -1):
        c = pivots[r]
        lead = rows[r][c]
        rows[r] = [x / lead for x in rows[r]]
        for above in range(r):
            _add_multiple(rows, r, above, -rows[above][c])


def determinant(m: Sequence[Sequence[Number]]) -> Fraction:
    """Return the determinant of a square matrix as an exact Fraction."""
    n = _require_square(m)
    rows = _to_fractions(m)
    pivots, swaps = _forward_eliminate(rows, n)
    if len(pivots) < n:
        return Fraction(0)
    result = Fraction(-1 if swaps % 2 else 1)
    for i in range(n):
        result *= rows[i][i]
    return result


def rank(m: Sequence[Sequence[Number]]) -> int:
    """Return the number of linearly independent rows of ``m``."""
    rows = _to_fractions(m)
    pivots, _ = _forward_eliminate(rows, len(rows[0]))
    return len(pivots)


def rref(m: Sequence[Sequence[Number]]) -> FracMatrix:
    """Return the reduced row echelon form of ``m``."""
    rows = _to_fractions(m)
    pivots, _ = _forward_eliminate(rows, len(rows[0]))
    _back_substitute(rows, pivots)
    return rows


def is_invertible(m: Sequence[Sequence[Number]]) -> bool:
    """Return True if the square matrix ``m`` has full rank."""
    n = _require_square(m)
    return rank(m) == n


def inverse(m: Sequence[Sequence[Number]]) -> FracMatrix:
    """Return the inverse of a square matrix; raise ValueError if it is singular."""
    n = _require_square(m)
    rows = [row + eye for row, eye in zip(_to_fractions(m), _to_fractions(identity(n)))]
    pivots, _ = _forward_eliminate(rows, n)
    if len(pivots) != n:
        raise ValueError("matrix is singular")
    _back_substitute(rows, pivots)
    return [row[n:] for row in rows]


def solve(a: Sequence[Sequence[Number]], b: Sequence[Number]) -> list[Fraction]:
    """Return x with ``a @ x == b`` for a square non-singular ``a``."""
    n = _require_square(a)
    if len(b) != n:
        raise ValueError(f"right-hand side has length {len(b)}, expected {n}")
    rows = [row + [Fraction(value)] for row, value in zip(_to_fractions(a), b)]
    pivots, _ = _forward_eliminate(rows, n)
    if len(pivots) != n:
        raise ValueError("matrix is singular")
    _back_substitute(rows, pivots)
    return [row[n] for row in rows]


def nullity(m: Sequence[Sequence[Number]]) -> int:
    """Return the dimension of the null space of ``m`` (columns minus rank)."""
    _, cols = shape(m)
    return cols - rank(m)
