import pytest

from matrixlite import (
    add,
    hadamard,
    identity,
    is_square,
    is_symmetric,
    mat_vec,
    matmul,
    matrix_power,
    minor_matrix,
    scale,
    shape,
    subtract,
    trace,
    transpose,
    zeros,
)


def test_shape_of_rectangular_matrix():
    assert shape([[1, 2, 3], [4, 5, 6]]) == (2, 3)


def test_shape_of_single_entry():
    assert shape([[7]]) == (1, 1)


def test_shape_of_ragged_rows_raises():
    with pytest.raises(ValueError):
        shape([[1, 2], [3]])


def test_shape_of_empty_matrix_raises():
    with pytest.raises(ValueError):
        shape([])


def test_shape_of_empty_row_raises():
    with pytest.raises(ValueError):
        shape([[]])


def test_zeros():
    assert zeros(2, 3) == [[0, 0, 0], [0, 0, 0]]


def test_zeros_rows_are_independent():
    m = zeros(2, 2)
    m[0][0] = 5
    assert m == [[5, 0], [0, 0]]


def test_zeros_with_no_rows_raises():
    with pytest.raises(ValueError):
        zeros(0, 3)


def test_zeros_with_no_columns_raises():
    with pytest.raises(ValueError):
        zeros(3, 0)


def test_identity():
    assert identity(3) == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]


def test_identity_of_size_one():
    assert identity(1) == [[1]]


def test_is_square_true():
    assert is_square([[1, 2], [3, 4]]) is True


def test_is_square_false():
    assert is_square([[1, 2, 3], [4, 5, 6]]) is False


def test_transpose_rectangular():
    assert transpose([[1, 2, 3], [4, 5, 6]]) == [[1, 4], [2, 5], [3, 6]]


def test_transpose_column_vector():
    assert transpose([[1], [2], [3]]) == [[1, 2, 3]]


def test_is_symmetric_true():
    assert is_symmetric([[1, 2, 3], [2, 5, 6], [3, 6, 9]]) is True


def test_is_symmetric_false_off_diagonal():
    assert is_symmetric([[1, 2, 3], [2, 5, 6], [3, 7, 9]]) is False


def test_is_symmetric_false_next_to_diagonal():
    assert is_symmetric([[1, 2], [4, 1]]) is False


def test_is_symmetric_false_for_non_square():
    assert is_symmetric([[1, 2, 3], [2, 1, 3]]) is False


def test_add():
    assert add([[1, 2], [3, 4]], [[10, 20], [30, 40]]) == [[11, 22], [33, 44]]


def test_subtract_order_matters():
    assert subtract([[1, 2], [3, 4]], [[10, 20], [30, 40]]) == [[-9, -18], [-27, -36]]


def test_add_shape_mismatch_raises():
    with pytest.raises(ValueError):
        add([[1, 2]], [[1], [2]])


def test_subtract_shape_mismatch_raises():
    with pytest.raises(ValueError):
        subtract([[1, 2], [3, 4]], [[1, 2]])


def test_hadamard():
    assert hadamard([[1, 2], [3, 4]], [[5, 6], [7, 8]]) == [[5, 12], [21, 32]]


def test_scale():
    assert scale([[1, -2], [3, 0]], 3) == [[3, -6], [9, 0]]


def test_scale_by_fraction():
    assert scale([[2, 4]], 0.5) == [[1.0, 2.0]]


def test_matmul_rectangular():
    assert matmul([[1, 2, 3], [4, 5, 6]], [[7, 8], [9, 10], [11, 12]]) == [[58, 64], [139, 154]]


def test_matmul_is_not_commutative():
    assert matmul([[0, 1], [0, 0]], [[0, 0], [1, 0]]) == [[1, 0], [0, 0]]


def test_matmul_row_by_column():
    assert matmul([[1, 2, 3]], [[4], [5], [6]]) == [[32]]


def test_matmul_column_by_row():
    assert matmul([[1], [2]], [[3, 4]]) == [[3, 4], [6, 8]]


def test_matmul_shape_mismatch_raises():
    with pytest.raises(ValueError):
        matmul([[1, 2], [3, 4]], [[1, 2], [3, 4], [5, 6]])


def test_mat_vec():
    assert mat_vec([[1, 2, 3], [4, 5, 6]], [1, 0, -1]) == [-2, -2]


def test_mat_vec_length_mismatch_raises():
    with pytest.raises(ValueError):
        mat_vec([[1, 2, 3], [4, 5, 6]], [1, 2])


def test_matrix_power_zero_is_identity():
    assert matrix_power([[2, 3], [4, 5]], 0) == [[1, 0], [0, 1]]


def test_matrix_power_one_is_copy():
    assert matrix_power([[2, 3], [4, 5]], 1) == [[2, 3], [4, 5]]


def test_matrix_power_square():
    assert matrix_power([[1, 1], [1, 0]], 2) == [[2, 1], [1, 1]]


def test_matrix_power_odd_exponent():
    assert matrix_power([[1, 1], [1, 0]], 5) == [[8, 5], [5, 3]]


def test_matrix_power_even_exponent():
    assert matrix_power([[1, 1], [1, 0]], 6) == [[13, 8], [8, 5]]


def test_matrix_power_negative_exponent_raises():
    with pytest.raises(ValueError):
        matrix_power([[1, 1], [1, 0]], -1)


def test_matrix_power_non_square_raises():
    with pytest.raises(ValueError):
        matrix_power([[1, 2, 3], [4, 5, 6]], 2)


def test_trace():
    assert trace([[1, 2, 3], [4, 5, 6], [7, 8, 9]]) == 15


def test_trace_with_negative_entries():
    assert trace([[-4, 9], [9, 1]]) == -3


def test_trace_non_square_raises():
    with pytest.raises(ValueError):
        trace([[1, 2, 3], [4, 5, 6]])


def test_minor_matrix_removes_row_and_column():
    assert minor_matrix([[1, 2, 3], [4, 5, 6], [7, 8, 9]], 0, 1) == [[4, 6], [7, 9]]


def test_minor_matrix_last_row_and_column():
    assert minor_matrix([[1, 2, 3], [4, 5, 6], [7, 8, 9]], 2, 2) == [[1, 2], [4, 5]]


def test_minor_matrix_rectangular():
    assert minor_matrix([[1, 2, 3], [4, 5, 6]], 1, 0) == [[2, 3]]


def test_minor_matrix_of_2x2_is_single_entry():
    assert minor_matrix([[1, 2], [3, 4]], 0, 0) == [[4]]


def test_minor_matrix_row_out_of_range_raises():
    with pytest.raises(ValueError):
        minor_matrix([[1, 2], [3, 4]], 2, 0)


def test_minor_matrix_column_out_of_range_raises():
    with pytest.raises(ValueError):
        minor_matrix([[1, 2], [3, 4]], 0, 2)


def test_minor_matrix_negative_index_raises():
    with pytest.raises(ValueError):
        minor_matrix([[1, 2], [3, 4]], -1, 0)


def test_minor_matrix_negative_column_raises():
    with pytest.raises(ValueError):
        minor_matrix([[1, 2], [3, 4]], 0, -1)


def test_minor_matrix_of_single_row_raises():
    with pytest.raises(ValueError):
        minor_matrix([[1, 2, 3]], 0, 0)


def test_minor_matrix_of_single_column_raises():
    with pytest.raises(ValueError):
        minor_matrix([[1], [2], [3]], 0, 0)
