import math

import pytest

from matrixlite import (
    angle_between,
    cosine_similarity,
    cross,
    distance,
    dot,
    is_orthogonal,
    is_parallel,
    lerp,
    norm,
    normalise,
    projection,
    scale_vector,
    vector_add,
    vector_sub,
)


def test_dot():
    assert dot([1, 2, 3], [4, -5, 6]) == 12


def test_dot_single_entry():
    assert dot([3], [-4]) == -12


def test_dot_length_mismatch_raises():
    with pytest.raises(ValueError):
        dot([1, 2], [1, 2, 3])


def test_dot_empty_raises():
    with pytest.raises(ValueError):
        dot([], [])


def test_vector_add():
    assert vector_add([1, 2, 3], [10, 20, 30]) == [11, 22, 33]


def test_vector_sub_order_matters():
    assert vector_sub([1, 2, 3], [10, 20, 30]) == [-9, -18, -27]


def test_vector_add_length_mismatch_raises():
    with pytest.raises(ValueError):
        vector_add([1, 2], [1])


def test_scale_vector():
    assert scale_vector([1, -2, 3], -2) == [-2, 4, -6]


def test_norm_euclidean():
    assert norm([3, 4]) == pytest.approx(5.0)


def test_norm_order_one():
    assert norm([3, -4], 1) == 7.0


def test_norm_infinity():
    assert norm([3, -4, 2], math.inf) == 4.0


def test_norm_order_three():
    assert norm([1, 2, -2], 3) == pytest.approx(17 ** (1 / 3))


def test_norm_order_below_one_raises():
    with pytest.raises(ValueError):
        norm([1, 2], 0.5)


def test_norm_empty_raises():
    with pytest.raises(ValueError):
        norm([])


def test_distance():
    assert distance([1, 1], [4, 5]) == pytest.approx(5.0)


def test_distance_to_self_is_zero():
    assert distance([2, -3, 7], [2, -3, 7]) == 0.0


def test_normalise():
    assert normalise([3, 4]) == pytest.approx([0.6, 0.8])


def test_normalise_negative_entries():
    assert normalise([0, -2, 0]) == pytest.approx([0.0, -1.0, 0.0])


def test_normalise_zero_vector_raises():
    with pytest.raises(ValueError):
        normalise([0, 0])


def test_cross_of_basis_vectors():
    assert cross([1, 0, 0], [0, 1, 0]) == [0, 0, 1]


def test_cross_general():
    assert cross([1, 2, 3], [4, 5, 6]) == [-3, 6, -3]


def test_cross_is_anticommutative():
    assert cross([4, 5, 6], [1, 2, 3]) == [3, -6, 3]


def test_cross_uneven_components():
    assert cross([2, 0, 1], [1, 3, 0]) == [-3, 1, 6]


def test_cross_2d_raises():
    with pytest.raises(ValueError):
        cross([1, 2], [3, 4])


def test_cross_mixed_dimensions_raises():
    with pytest.raises(ValueError):
        cross([1, 2, 3], [3, 4])


def test_projection_onto_axis():
    assert projection([3, 4], [1, 0]) == pytest.approx([3.0, 0.0])


def test_projection_onto_diagonal():
    assert projection([2, 3], [1, 1]) == pytest.approx([2.5, 2.5])


def test_projection_onto_scaled_vector():
    assert projection([1, 2], [0, 4]) == pytest.approx([0.0, 2.0])


def test_projection_onto_zero_vector_raises():
    with pytest.raises(ValueError):
        projection([1, 2], [0, 0])


def test_cosine_similarity():
    assert cosine_similarity([1, 2], [2, 1]) == pytest.approx(0.8)


def test_cosine_similarity_clamped_to_one():
    assert cosine_similarity([1, 1, 1], [2, 2, 2]) == 1.0


def test_cosine_similarity_clamped_to_minus_one():
    assert cosine_similarity([1, 1, 1], [-2, -2, -2]) == -1.0


def test_cosine_similarity_opposite():
    assert cosine_similarity([1, 2], [-2, -4]) == pytest.approx(-1.0)


def test_cosine_similarity_orthogonal():
    assert cosine_similarity([1, 0], [0, 3]) == 0.0


def test_cosine_similarity_zero_vector_raises():
    with pytest.raises(ValueError):
        cosine_similarity([0, 0], [1, 1])


def test_cosine_similarity_second_zero_vector_raises():
    with pytest.raises(ValueError):
        cosine_similarity([1, 1], [0, 0])


def test_cosine_similarity_length_mismatch_raises():
    with pytest.raises(ValueError):
        cosine_similarity([1, 1], [1, 1, 1])


def test_angle_between_radians():
    assert angle_between([1, 0], [0, 1]) == pytest.approx(math.pi / 2)


def test_angle_between_degrees():
    assert angle_between([1, 0], [1, 1], degrees=True) == pytest.approx(45.0)


def test_angle_between_opposite_vectors():
    assert angle_between([1, 2], [-1, -2], degrees=True) == pytest.approx(180.0)


def test_angle_between_parallel_vectors_is_zero():
    assert angle_between([1, 1, 1], [2, 2, 2]) == 0.0


def test_angle_between_antiparallel_vectors_is_pi():
    assert angle_between([1, 1, 1], [-2, -2, -2]) == pytest.approx(math.pi)


def test_is_orthogonal_true():
    assert is_orthogonal([1, 2, 0], [-2, 1, 5]) is True


def test_is_orthogonal_false():
    assert is_orthogonal([1, 2], [1, 0]) is False


def test_is_orthogonal_with_tolerance():
    assert is_orthogonal([1, 0.001], [0, 1], tol=0.01) is True


def test_is_orthogonal_exactly_at_tolerance():
    assert is_orthogonal([1, 0.5], [0, 1], tol=0.5) is True


def test_is_parallel_same_direction():
    assert is_parallel([1, 2, 3], [2, 4, 6]) is True


def test_is_parallel_opposite_direction():
    assert is_parallel([1, 2], [-3, -6]) is True


def test_is_parallel_tolerance_is_inclusive():
    assert is_parallel([1, 0], [0, 1], tol=1.0) is True


def test_is_parallel_false():
    assert is_parallel([1, 0], [1, 1]) is False


def test_lerp_quarter_way():
    assert lerp([0, 10], [8, 30], 0.25) == pytest.approx([2.0, 15.0])


def test_lerp_endpoints():
    assert lerp([1, 2], [5, 7], 1.0) == pytest.approx([5.0, 7.0])
