"""matrixlite: small dense matrices, exact linear algebra and vector helpers."""

from .linalg import determinant, inverse, is_invertible, nullity, rank, rref, solve
from .matrix import (
    add, hadamard, identity, is_square, is_symmetric, mat_vec, matmul, matrix_power,
    minor_matrix, scale, shape, subtract, trace, transpose, zeros,
)
from .vectors import (
    angle_between, cosine_similarity, cross, distance, dot, is_orthogonal, is_parallel,
    lerp, norm, normalise, projection, scale_vector, vector_add, vector_sub,
)

__all__ = [
    "add", "angle_between", "cosine_similarity", "cross", "determinant", "distance", "dot",
    "hadamard", "identity", "inverse", "is_invertible", "is_orthogonal", "is_parallel",
    "is_square", "is_symmetric", "lerp", "mat_vec", "matmul", "matrix_power", "minor_matrix",
    "norm", "normalise", "nullity", "projection", "rank", "rref", "scale", "scale_vector",
    "shape", "solve", "subtract", "trace", "transpose", "vector_add", "vector_sub", "zeros",
]
