from fractions import Fraction

import pytest

from matrixlite import determinant, identity, inverse, is_invertible, matmul, nullity, rank, rref, solve


def test_determinant_2x2():
    assert determinant([[1, 2], [3, 4]]) == -2


def test_determinant_1x1():
    assert determinant([[-7]]) == -7


def test_determinant_identity():
    assert determinant([[1, 0, 0], [0, 1, 0], [0, 0, 1]]) == 1


def test_determinant_3x3():
    assert determinant([[6, 1, 1], [4, -2, 5], [2, 8, 7]]) == -306


def test_determinant_3x3_with_zero_entries():
    assert determinant([[2, -1, 0], [1, 3, 2], [0, 1, 4]]) == 24


def test_determinant_single_row_swap_flips_sign():
    assert determinant([[0, 2], [3, 0]]) == -6


def test_determinant_cyclic_permutation_is_positive():
    assert determinant([[0, 1, 0], [0, 0, 1], [1, 0, 0]]) == 1


def test_determinant_is_exact_fraction():
    assert determinant([[1, 2], [3, Fraction(9, 2)]]) == Fraction(-3, 2)


def test_determinant_of_float_entries():
    assert determinant([[0.5, 1.0], [2.0, 3.0]]) == Fraction(-1, 2)


def test_determinant_singular_is_zero():
    assert determinant([[1, 2, 3], [4, 5, 6], [7, 8, 9]]) == 0


def test_determinant_zero_column_is_zero():
    assert determinant([[0, 1], [0, 5]]) == 0


def test_determinant_non_square_raises():
    with pytest.raises(ValueError):
        determinant([[1, 2, 3], [4, 5, 6]])


def test_rank_full():
    assert rank([[1, 2], [3, 4]]) == 2


def test_rank_deficient_square():
    assert rank([[1, 2, 3], [4, 5, 6], [7, 8, 9]]) == 2


def test_rank_of_zero_matrix():
    assert rank([[0, 0], [0, 0]]) == 0


def test_rank_of_multiples():
    assert rank([[1, 2, 3], [2, 4, 6], [-1, -2, -3]]) == 1


def test_rank_wide_matrix():
    assert rank([[1, 0, 2, 1], [0, 1, 3, 2]]) == 2


def test_rank_tall_matrix():
    assert rank([[1, 2], [2, 4], [0, 1], [3, 7]]) == 2


def test_rank_skips_zero_column():
    assert rank([[0, 1, 2], [0, 2, 5]]) == 2


def test_rank_single_row():
    assert rank([[0, 3, 0]]) == 1


def test_nullity():
    assert nullity([[1, 0, 2, 1], [0, 1, 3, 2], [1, 1, 5, 3]]) == 2


def test_nullity_of_invertible_matrix_is_zero():
    assert nullity([[2, 1], [1, 1]]) == 0


def test_rref_with_dependent_row():
    assert rref([[1, 0, 2, 1], [0, 1, 3, 2], [1, 1, 5, 3]]) == [[1, 0, 2, 1], [0, 1, 3, 2], [0, 0, 0, 0]]


def test_rref_skips_non_pivot_column():
    assert rref([[1, 2, 3], [2, 4, 7]]) == [[1, 2, 0], [0, 0, 1]]


def test_rref_of_invertible_matrix_is_identity():
    assert rref([[2, 1, 1], [1, 3, 2], [1, 0, 0]]) == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]


def test_rref_with_fractions():
    assert rref([[2, 1, 3], [4, 4, 2]]) == [[1, 0, Fraction(5, 2)], [0, 1, -2]]


def test_rref_single_row():
    assert rref([[2, 4, 6]]) == [[1, 2, 3]]


def test_is_invertible_true():
    assert is_invertible([[2, 1], [1, 1]]) is True


def test_is_invertible_false():
    assert is_invertible([[1, 2], [2, 4]]) is False


def test_is_invertible_non_square_raises():
    with pytest.raises(ValueError):
        is_invertible([[1, 2, 3]])


def test_inverse_2x2():
    assert inverse([[4, 7], [2, 6]]) == [[Fraction(3, 5), Fraction(-7, 10)], [Fraction(-1, 5), Fraction(2, 5)]]


def test_inverse_3x3():
    assert inverse([[1, 2, 3], [0, 1, 4], [5, 6, 0]]) == [[-24, 18, 5], [20, -15, -4], [-5, 4, 1]]


def test_inverse_needs_row_swap():
    assert inverse([[0, 1], [1, 0]]) == [[0, 1], [1, 0]]


def test_inverse_of_diagonal():
    assert inverse([[2, 0], [0, -4]]) == [[Fraction(1, 2), 0], [0, Fraction(-1, 4)]]


def test_inverse_times_matrix_is_identity():
    m = [[2, -1, 0], [1, 3, 2], [0, 1, 4]]
    assert matmul(m, inverse(m)) == identity(3)


def test_inverse_singular_raises():
    with pytest.raises(ValueError):
        inverse([[1, 2], [2, 4]])


def test_inverse_non_square_raises():
    with pytest.raises(ValueError):
        inverse([[1, 2, 3], [4, 5, 6]])


def test_solve_2x2():
    assert solve([[2, 1], [1, 3]], [5, 10]) == [1, 3]


def test_solve_3x3():
    assert solve([[2, 1, -1], [-3, -1, 2], [-2, 1, 2]], [8, -11, -3]) == [2, 3, -1]


def test_solve_fractional_solution():
    assert solve([[1, 1], [1, -1]], [1, 0]) == [Fraction(1, 2), Fraction(1, 2)]


def test_solve_needs_pivoting():
    assert solve([[0, 2], [3, 1]], [4, 5]) == [1, 2]


def test_solve_singular_raises():
    with pytest.raises(ValueError):
        solve([[1, 2], [2, 4]], [3, 6])


def test_solve_wrong_rhs_length_raises():
    with pytest.raises(ValueError):
        solve([[1, 2], [3, 4]], [1, 2, 3])


def test_solve_non_square_raises():
    with pytest.raises(ValueError):
        solve([[1, 2, 3], [4, 5, 6]], [1, 2])
