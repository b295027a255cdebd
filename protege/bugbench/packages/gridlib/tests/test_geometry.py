import pytest

from gridlib import (
    Point,
    Rect,
    boundary_points,
    bounding_box,
    chebyshev,
    interior_points,
    is_counter_clockwise,
    manhattan,
    polygon_area,
    rect_area,
    rect_contains,
    rect_intersection,
    rects_overlap,
    rotate_point,
    squared_distance,
    union_area,
)


def test_point_addition():
    assert Point(1, 2) + Point(3, -5) == Point(4, -3)


def test_point_subtraction():
    assert Point(1, 2) - Point(3, -5) == Point(-2, 7)


def test_point_scale():
    assert Point(2, -3).scale(3) == Point(6, -9)


def test_manhattan_distance():
    assert manhattan(Point(1, 2), Point(4, 6)) == 7


def test_manhattan_with_negative_coordinates():
    assert manhattan(Point(-2, 3), Point(1, -1)) == 7


def test_manhattan_same_point_is_zero():
    assert manhattan(Point(5, 5), Point(5, 5)) == 0


def test_chebyshev_uses_larger_axis_y():
    assert chebyshev(Point(1, 2), Point(4, -3)) == 5


def test_chebyshev_uses_larger_axis_x():
    assert chebyshev(Point(-4, 1), Point(2, 3)) == 6


def test_squared_distance():
    assert squared_distance(Point(1, 2), Point(4, 6)) == 25


def test_squared_distance_negative_offsets():
    assert squared_distance(Point(0, 0), Point(-2, -3)) == 13


def test_rotate_point_zero_turns():
    assert rotate_point(Point(2, 1), 0) == Point(2, 1)


def test_rotate_point_one_turn_clockwise():
    assert rotate_point(Point(2, 1), 1) == Point(-1, 2)


def test_rotate_point_half_turn():
    assert rotate_point(Point(2, 1), 2) == Point(-2, -1)


def test_rotate_point_three_turns():
    assert rotate_point(Point(2, 1), 3) == Point(1, -2)


def test_rotate_point_negative_turns_go_counter_clockwise():
    assert rotate_point(Point(2, 1), -1) == Point(1, -2)


def test_rotate_point_wraps_after_four_turns():
    assert rotate_point(Point(2, 1), 5) == Point(-1, 2)


def test_bounding_box_of_points():
    assert bounding_box([Point(3, 1), Point(-1, 4), Point(2, -2)]) == Rect(-1, -2, 5, 7)


def test_bounding_box_of_single_point():
    assert bounding_box([Point(4, 7)]) == Rect(4, 7, 1, 1)


def test_bounding_box_of_empty_sequence_raises():
    with pytest.raises(ValueError):
        bounding_box([])


def test_rect_right():
    assert Rect(2, 3, 4, 5).right == 6


def test_rect_bottom():
    assert Rect(2, 3, 4, 5).bottom == 8


def test_rect_area():
    assert rect_area(Rect(1, 1, 3, 4)) == 12


def test_rect_area_of_empty_rect_is_zero():
    assert rect_area(Rect(1, 1, 0, 4)) == 0


def test_rect_area_of_zero_height_is_zero():
    assert rect_area(Rect(1, 1, 4, 0)) == 0


def test_rect_area_negative_width_raises():
    with pytest.raises(ValueError):
        rect_area(Rect(0, 0, -1, 2))


def test_rect_area_negative_height_raises():
    with pytest.raises(ValueError):
        rect_area(Rect(0, 0, 2, -1))


def test_rect_contains_interior_point():
    assert rect_contains(Rect(1, 1, 3, 3), Point(2, 2)) is True


def test_rect_contains_top_left_corner():
    assert rect_contains(Rect(1, 1, 3, 3), Point(1, 1)) is True


def test_rect_contains_last_cell():
    assert rect_contains(Rect(1, 1, 3, 3), Point(3, 3)) is True


def test_rect_excludes_right_edge():
    assert rect_contains(Rect(1, 1, 3, 3), Point(4, 2)) is False


def test_rect_excludes_bottom_edge():
    assert rect_contains(Rect(1, 1, 3, 3), Point(2, 4)) is False


def test_rect_excludes_point_left_of_rect():
    assert rect_contains(Rect(1, 1, 3, 3), Point(0, 2)) is False


def test_rect_excludes_point_above_rect():
    assert rect_contains(Rect(1, 1, 3, 3), Point(2, 0)) is False


def test_rect_intersection_of_overlapping_rects():
    assert rect_intersection(Rect(0, 0, 4, 3), Rect(2, 1, 5, 5)) == Rect(2, 1, 2, 2)


def test_rect_intersection_is_symmetric():
    assert rect_intersection(Rect(2, 1, 5, 5), Rect(0, 0, 4, 3)) == Rect(2, 1, 2, 2)


def test_rect_intersection_of_nested_rects():
    assert rect_intersection(Rect(0, 0, 10, 10), Rect(3, 4, 2, 1)) == Rect(3, 4, 2, 1)


def test_rect_intersection_single_cell():
    assert rect_intersection(Rect(0, 0, 3, 3), Rect(2, 2, 3, 3)) == Rect(2, 2, 1, 1)


def test_rect_intersection_touching_edges_is_none():
    assert rect_intersection(Rect(0, 0, 2, 2), Rect(2, 0, 2, 2)) is None


def test_rect_intersection_disjoint_is_none():
    assert rect_intersection(Rect(0, 0, 2, 2), Rect(5, 5, 1, 1)) is None


def test_rect_intersection_disjoint_vertically_is_none():
    assert rect_intersection(Rect(0, 0, 4, 2), Rect(1, 3, 2, 2)) is None


def test_rects_overlap_true():
    assert rects_overlap(Rect(0, 0, 3, 3), Rect(2, 2, 3, 3)) is True


def test_rects_overlap_false_when_touching():
    assert rects_overlap(Rect(0, 0, 3, 3), Rect(0, 3, 3, 3)) is False


def test_union_area_of_overlapping_rects():
    assert union_area(Rect(0, 0, 4, 3), Rect(2, 1, 5, 5)) == 33


def test_union_area_of_disjoint_rects():
    assert union_area(Rect(0, 0, 2, 2), Rect(5, 5, 1, 3)) == 7


def test_polygon_area_of_square():
    assert polygon_area([Point(0, 0), Point(4, 0), Point(4, 4), Point(0, 4)]) == 16.0


def test_polygon_area_of_triangle_with_half_units():
    assert polygon_area([Point(0, 0), Point(3, 0), Point(0, 3)]) == pytest.approx(4.5)


def test_polygon_area_independent_of_orientation():
    assert polygon_area([Point(0, 4), Point(4, 4), Point(4, 0), Point(0, 0)]) == 16.0


def test_polygon_area_of_concave_polygon():
    shape = [Point(0, 0), Point(4, 0), Point(4, 4), Point(2, 2), Point(0, 4)]
    assert polygon_area(shape) == 12.0


def test_polygon_area_needs_three_vertices():
    with pytest.raises(ValueError):
        polygon_area([Point(0, 0), Point(1, 1)])


def test_is_counter_clockwise_true():
    assert is_counter_clockwise([Point(0, 0), Point(2, 0), Point(2, 2), Point(0, 2)]) is True


def test_is_counter_clockwise_smallest_triangle():
    assert is_counter_clockwise([Point(0, 0), Point(1, 0), Point(0, 1)]) is True


def test_is_counter_clockwise_false_for_clockwise():
    assert is_counter_clockwise([Point(0, 0), Point(0, 2), Point(2, 2), Point(2, 0)]) is False


def test_is_counter_clockwise_false_for_degenerate():
    assert is_counter_clockwise([Point(0, 0), Point(1, 1), Point(2, 2)]) is False


def test_is_counter_clockwise_needs_three_vertices():
    with pytest.raises(ValueError):
        is_counter_clockwise([Point(0, 0), Point(1, 0)])


def test_boundary_points_of_square():
    assert boundary_points([Point(0, 0), Point(4, 0), Point(4, 4), Point(0, 4)]) == 16


def test_boundary_points_of_triangle_with_diagonal():
    assert boundary_points([Point(0, 0), Point(4, 0), Point(0, 3)]) == 8


def test_boundary_points_of_translated_triangle():
    assert boundary_points([Point(1, 1), Point(5, 1), Point(1, 4)]) == 8


def test_boundary_points_of_rectangle():
    assert boundary_points([Point(0, 0), Point(4, 0), Point(4, 2), Point(0, 2)]) == 12


def test_boundary_points_with_negative_steps():
    assert boundary_points([Point(0, 0), Point(-2, -4), Point(-2, 0)]) == 8


def test_interior_points_of_square():
    assert interior_points([Point(0, 0), Point(4, 0), Point(4, 4), Point(0, 4)]) == 9


def test_interior_points_of_triangle():
    assert interior_points([Point(0, 0), Point(4, 0), Point(0, 3)]) == 3


def test_interior_points_with_odd_boundary_count():
    assert interior_points([Point(0, 0), Point(3, 0), Point(0, 3)]) == 1


def test_interior_points_of_unit_square_is_zero():
    assert interior_points([Point(0, 0), Point(1, 0), Point(1, 1), Point(0, 1)]) == 0


def test_interior_points_needs_three_vertices():
    with pytest.raises(ValueError):
        interior_points([Point(0, 0), Point(3, 3)])
