import pytest

from intervals import Interval


def test_default_interval_is_half_open():
    assert Interval(1, 3) == Interval(1, 3, True, False)


def test_end_before_start_is_rejected():
    with pytest.raises(ValueError):
        Interval(3, 2)


def test_intervals_are_hashable_values():
    assert len({Interval(0, 1), Interval(0, 1)}) == 1


def test_str_shows_bracket_style():
    assert str(Interval(0, 5, False, True)) == "(0, 5]"


def test_str_closed():
    assert str(Interval.closed(1, 2)) == "[1, 2]"


def test_open_constructor():
    assert Interval.open(1, 2) == Interval(1, 2, False, False)


def test_point_constructor():
    assert Interval.point(4) == Interval(4, 4, True, True)


def test_length():
    assert Interval(-2, 5).length == 7


def test_midpoint():
    assert Interval(1, 4).midpoint == pytest.approx(2.5)


def test_point_interval_is_not_empty():
    assert Interval.point(3).is_empty() is False


def test_degenerate_half_open_is_empty():
    assert Interval(3, 3).is_empty() is True


def test_proper_interval_is_not_empty():
    assert Interval.open(3, 4).is_empty() is False


def test_contains_closed_start():
    assert Interval(1, 3).contains(1) is True


def test_contains_excludes_open_end():
    assert Interval(1, 3).contains(3) is False


def test_contains_includes_closed_end():
    assert Interval.closed(1, 3).contains(3) is True


def test_contains_excludes_open_start():
    assert Interval.open(1, 3).contains(1) is False


def test_contains_outside_below():
    assert Interval(1, 3).contains(0.5) is False


def test_contains_outside_above():
    assert Interval.closed(1, 3).contains(3.5) is False


def test_in_operator():
    assert 2 in Interval(1, 3)


def test_covers_inner_interval():
    assert Interval(0, 10).covers(Interval(2, 10)) is True


def test_covers_rejects_closed_end_at_open_end():
    assert Interval(0, 10).covers(Interval.closed(2, 10)) is False


def test_covers_rejects_closed_start_at_open_start():
    assert Interval.open(0, 10).covers(Interval(0, 5)) is False


def test_covers_open_start_inside_open_start():
    assert Interval.open(0, 10).covers(Interval.open(0, 5)) is True


def test_covers_rejects_longer_interval():
    assert Interval(0, 10).covers(Interval(5, 11)) is False


def test_covers_rejects_earlier_start():
    assert Interval(0, 10).covers(Interval(-1, 5)) is False


def test_covers_empty_interval():
    assert Interval(0, 1).covers(Interval(5, 5)) is True


def test_overlaps_partial():
    assert Interval(0, 5).overlaps(Interval(3, 8)) is True


def test_overlaps_false_for_half_open_neighbours():
    assert Interval(0, 5).overlaps(Interval(5, 8)) is False


def test_overlaps_shared_closed_endpoint():
    assert Interval.closed(0, 5).overlaps(Interval(5, 8)) is True


def test_overlaps_shared_endpoint_other_side():
    assert Interval(5, 8).overlaps(Interval.closed(0, 5)) is True


def test_overlaps_false_when_other_starts_open():
    assert Interval.closed(0, 5).overlaps(Interval.open(5, 8)) is False


def test_overlaps_false_when_separated():
    assert Interval(0, 2).overlaps(Interval(3, 4)) is False


def test_overlaps_false_when_other_is_before():
    assert Interval(3, 4).overlaps(Interval(0, 2)) is False


def test_overlaps_false_with_empty_interval():
    assert Interval(0, 5).overlaps(Interval(2, 2)) is False


def test_touches_half_open_neighbours():
    assert Interval(0, 5).touches(Interval(5, 8)) is True


def test_touches_in_reverse_order():
    assert Interval(5, 8).touches(Interval(0, 5)) is True


def test_touches_false_when_point_missing():
    assert Interval(0, 5).touches(Interval.open(5, 8)) is False


def test_touches_false_when_overlapping():
    assert Interval.closed(0, 5).touches(Interval(5, 8)) is False


def test_touches_false_when_separated():
    assert Interval(0, 4).touches(Interval(5, 8)) is False


def test_intersection_of_overlapping():
    assert Interval(0, 5).intersection(Interval.closed(3, 8)) == Interval(3, 5)


def test_intersection_takes_later_start_closure():
    assert Interval(0, 5).intersection(Interval.open(3, 8)) == Interval(3, 5, False, False)


def test_intersection_same_start_mixed_closure():
    assert Interval.closed(1, 4).intersection(Interval.open(1, 6)) == Interval(1, 4, False, True)


def test_intersection_same_end_mixed_closure():
    assert Interval.closed(0, 4).intersection(Interval(2, 4)) == Interval(2, 4)


def test_intersection_single_shared_point():
    assert Interval.closed(0, 5).intersection(Interval.closed(5, 9)) == Interval.point(5)


def test_intersection_disjoint_is_none():
    assert Interval(0, 5).intersection(Interval(5, 9)) is None


def test_union_of_touching():
    assert Interval(0, 5).union(Interval.closed(5, 8)) == Interval.closed(0, 8)


def test_union_same_start_mixed_closure():
    assert Interval.open(1, 3).union(Interval(1, 2)) == Interval(1, 3, True, False)


def test_union_same_end_mixed_closure():
    assert Interval(0, 3).union(Interval.closed(2, 3)) == Interval.closed(0, 3)


def test_union_in_reverse_order():
    assert Interval(4, 9).union(Interval(1, 5)) == Interval(1, 9)


def test_union_of_disjoint_raises():
    with pytest.raises(ValueError):
        Interval(0, 1).union(Interval(2, 3))


def test_gap_between_disjoint():
    assert Interval(0, 2).gap(Interval(5, 6)) == 3


def test_gap_other_before():
    assert Interval(5, 6).gap(Interval(0, 2)) == 3


def test_gap_overlapping_is_zero():
    assert Interval(0, 4).gap(Interval(2, 6)) == 0


def test_shift_keeps_closure():
    assert Interval(1, 3, False, True).shift(-2) == Interval(-1, 1, False, True)


def test_scale_about_zero():
    assert Interval(1, 3).scale(2) == Interval(2, 6)


def test_scale_about_origin():
    assert Interval(2, 4).scale(3, origin=2) == Interval(2, 8)


def test_scale_negative_mirrors_and_swaps_closure():
    assert Interval(1, 3).scale(-1) == Interval(-3, -1, False, True)


def test_scale_by_zero_raises():
    with pytest.raises(ValueError):
        Interval(1, 3).scale(0)


def test_expand_both_sides():
    assert Interval(2, 4).expand(1) == Interval(1, 5)


def test_expand_negative_shrinks_to_point():
    assert Interval.closed(2, 4).expand(-1) == Interval.point(3)


def test_expand_shrinking_too_far_raises():
    with pytest.raises(ValueError):
        Interval(2, 4).expand(-2)


def test_split_inner_point():
    assert Interval.closed(0, 10).split(4) == (Interval(0, 4), Interval.closed(4, 10))


def test_split_at_endpoint_raises():
    with pytest.raises(ValueError):
        Interval(0, 10).split(10)


def test_split_at_start_raises():
    with pytest.raises(ValueError):
        Interval(0, 10).split(0)


def test_touches_false_with_empty_interval():
    assert Interval(0, 5).touches(Interval(5, 5)) is False


def test_intersection_same_start_open_first():
    assert Interval.open(1, 6).intersection(Interval.closed(1, 4)) == Interval(1, 4, False, True)


def test_intersection_same_end_open_first():
    assert Interval(2, 4).intersection(Interval.closed(0, 4)) == Interval(2, 4)


def test_union_same_end_closed_first():
    assert Interval.closed(2, 3).union(Interval(0, 3)) == Interval.closed(0, 3)


def test_scale_by_fraction():
    assert Interval(2, 6).scale(0.5) == Interval(1, 3)


def test_scale_by_negative_fraction():
    assert Interval(2, 6, False, True).scale(-0.5) == Interval(-3, -1, True, False)
