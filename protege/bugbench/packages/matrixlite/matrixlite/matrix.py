"""Dense matrices stored as lists of row lists."""

from __future__ import annotations

import operator
from typing import Callable, Sequence

Number = int | float
Matrix = list[list[Number]]


def shape(m: Sequence[Sequence[Number]]) -> tuple[int, int]:
    """Return (rows, columns) of a non-empty rectangular matrix."""
    if len(m) == 0 or len(m[0]) == 0:
        raise ValueError("a matrix needs at least one row and one column")
    cols = len(m[0])
    for i, row in enumerate(m):
        if len(row) != cols:
            raise ValueError(f"row {i} has {len(row)} entries, expected {cols}")
    return len(m), cols


def _require_square(m: Sequence[Sequence[Number]]) -> int:
    rows, cols = shape(m)
    if rows != cols:
        raise ValueError(f"expected a square matrix, got {rows}x{cols}")
    return rows


def _require_same_shape(a: Sequence[Sequence[Number]], b: Sequence[Sequence[Number]]) -> None:
    if shape(a) != shape(b):
        raise ValueError(f"shape mismatch: {shape(a)} vs {shape(b)}")


def zeros(rows: int, cols: int) -> Matrix:
    """Return a ``rows`` x ``cols`` matrix of zeros."""
    if rows < 1 or cols < 1:
        raise ValueError(f"matrix dimensions must be positive, got {rows}x{cols}")
    return [[0] * cols for _ in range(rows)]


def identity(n: int) -> Matrix:
    """Return the ``n`` x ``n`` identity matrix."""
    m = zeros(n, n)
    for i in range(n):
        m[i][i] = 1
    return m


def is_square(m: Sequence[Sequence[Number]]) -> bool:
    """Return True if the matrix has as many rows as columns."""
    rows, cols = shape(m)
    return rows == cols


def transpose(m: Sequence[Sequence[Number]]) -> Matrix:
    """Return the transpose of ``m``."""
    rows, cols = shape(m)
    return [[m[i][j] for i in range(rows)] for j in range(cols)]


def is_symmetric(m: Sequence[Sequence[Number]]) -> bool:
    """Return True if ``m`` is square and equal to its transpose."""
    if not is_square(m):
        return False
    n = len(m)
    for i in range(n):
        for j in range(i + 1, n):
            if m[i][j] != m[j][i]:
                return False
    return True


def _elementwise(
    a: Sequence[Sequence[Number]],
    b: Sequence[Sequence[Number]],
    op: Callable[[Number, Number], Number],
) -> Matrix:
    _require_same_shape(a, b)
    return [[op(x, y) for x, y in zip(row_a, row_b)] for row_a, row_b in zip(a, b)]


def add(a: Sequence[Sequence[Number]], b: Sequence[Sequence[Number]]) -> Matrix:
    """Return the entrywise sum ``a + b``."""
    return _elementwise(a, b, operator.add)


def subtract(a: Sequence[Sequence[Number]], b: Sequence[Sequence[Number]]) -> Matrix:
    """Return the entrywise difference ``a - b``."""
    return _elementwise(a, b, operator.sub)


def hadamard(a: Sequence[Sequence[Number]], b: Sequence[Sequence[Number]]) -> Matrix:
    """Return the entrywise product of ``a`` and ``b``."""
    return _elementwise(a, b, operator.mul)


def scale(m: Sequence[Sequence[Number]], factor: Number) -> Matrix:
    """Return ``m`` with every entry multiplied by ``factor``."""
    shape(m)
    return [[factor * x for x in row] for row in m]


def _dot_rows(row: Sequence[Number], col: Sequence[Number]) -> Number:
    total: Number = 0
    for k in range(len(row)):
        total += row[k] * col[k]
    return total


def matmul(a: Sequence[Sequence[Number]], b: Sequence[Sequence[Number]]) -> Matrix:
    """Return the matrix product ``a @ b``."""
    a_rows, a_cols = shape(a)
    b_rows, b_cols = shape(b)
    if a_cols != b_rows:
        raise ValueError(f"cannot multiply {a_rows}x{a_cols} by {b_rows}x{b_cols}")
    b_t = transpose(b)
    return [[_dot_rows(a[i], b_t[j]) for j in range(b_cols)] for i in range(a_rows)]


def mat_vec(m: Sequence[Sequence[Number]], v: Sequence[Number]) -> list[Number]:
    """Return the matrix-vector product ``m @ v``."""
    rows, cols = shape(m)
    if len(v) != cols:
        raise ValueError(f"vector of length {len(v)} does not fit {rows}x{cols} matrix")
    return [_dot_rows(m[i], v) for i in range(rows)]


def matrix_power(m: Sequence[Sequence[Number]], exponent: int) -> Matrix:
    """Return ``m`` raised to a non-negative integer power by repeated squaring."""
    n = _require_square(m)
    if exponent < 0:
        raise ValueError(f"exponent must be non-negative, got {exponent}")
    result = identity(n)
    base = [list(row) for row in m]
    while exponent > 0:
        if exponent % 2 == 1:
            result = matmul(result, base)
        base = matmul(base, base)
        exponent //= 2
    return result


def trace(m: Sequence[Sequence[Number]]) -> Number:
    """Return the sum of the main diagonal of a square matrix."""
    n = _require_square(m)
    return sum(m[i][i] for i in range(n))


def minor_matrix(m: Sequence[Sequence[Number]], row: int, col: int) -> Matrix:
    """Return ``m`` with row ``row`` and column ``col`` removed."""
    rows, cols = shape(m)
    if rows < 2 or cols < 2:
        raise ValueError("a minor needs at least a 2x2 matrix")
    if not (0 <= row < rows and 0 <= col < cols):
        raise ValueError(f"index ({row}, {col}) out of range for {rows}x{cols} matrix")
    return [list(r[:col]) + list(r[col + 1 :]) for i, r in enumerate(m) if i != row]
