from intervals import (
    Interval,
    clip,
    coverage,
    coverage_segments,
    difference,
    gaps,
    max_overlap,
    merge,
    subtract,
    total_length,
)


def test_merge_overlapping_and_touching():
    assert merge([Interval(5, 8), Interval(1, 3), Interval(2, 4), Interval(8, 9)]) == [
        Interval(1, 4),
        Interval(5, 9),
    ]


def test_merge_overlap_with_latest_not_first():
    assert merge([Interval(0, 1), Interval(2, 4), Interval(3, 5)]) == [
        Interval(0, 1),
        Interval(2, 5),
    ]


def test_merge_touch_with_latest_not_first():
    assert merge([Interval(0, 1), Interval(2, 3), Interval(3, 4)]) == [
        Interval(0, 1),
        Interval(2, 4),
    ]


def test_merge_keeps_gap_of_one_point():
    assert merge([Interval(0, 1), Interval(1, 2, False, True)]) == [
        Interval(0, 1),
        Interval(1, 2, False, True),
    ]


def test_merge_closed_end_with_open_start():
    assert merge([Interval.closed(0, 1), Interval.open(1, 2)]) == [Interval(0, 2)]


def test_merge_nested_interval():
    assert merge([Interval(0, 10), Interval(2, 3)]) == [Interval(0, 10)]


def test_merge_same_start_prefers_closed():
    assert merge([Interval.open(0, 2), Interval(0, 1)]) == [Interval(0, 2, True, False)]


def test_merge_point_bridges_open_ends():
    assert merge([Interval(0, 1), Interval.open(1, 2), Interval.point(1)]) == [Interval(0, 2)]


def test_merge_drops_empty_intervals():
    assert merge([Interval(3, 3), Interval(5, 6)]) == [Interval(5, 6)]


def test_merge_empty_list():
    assert merge([]) == []


def test_total_length_counts_overlap_once():
    assert total_length([Interval(0, 4), Interval(2, 6), Interval(10, 11)]) == 7


def test_total_length_empty():
    assert total_length([]) == 0


def test_difference_hole_in_middle():
    assert difference(Interval(0, 10), Interval(3, 5)) == [Interval(0, 3), Interval(5, 10)]


def test_difference_cuts_start():
    assert difference(Interval(0, 10), Interval(-5, 4)) == [Interval(4, 10)]


def test_difference_cuts_end():
    assert difference(Interval(0, 10), Interval.closed(6, 12)) == [Interval(0, 6)]


def test_difference_closed_hole_leaves_open_ends():
    assert difference(Interval.closed(0, 10), Interval.closed(3, 5)) == [
        Interval(0, 3, True, False),
        Interval(5, 10, False, True),
    ]


def test_difference_open_hole_leaves_endpoint_points():
    assert difference(Interval.closed(0, 10), Interval.open(0, 10)) == [
        Interval.point(0),
        Interval.point(10),
    ]


def test_difference_same_span_is_empty():
    assert difference(Interval(0, 10), Interval(0, 10)) == []


def test_difference_disjoint_returns_original():
    assert difference(Interval(0, 2), Interval(2, 4)) == [Interval(0, 2)]


def test_difference_of_empty_interval():
    assert difference(Interval(1, 1), Interval(0, 4)) == []


def test_subtract_several_holes():
    assert subtract(Interval(0, 10), [Interval(5, 7), Interval(2, 3)]) == [
        Interval(0, 2),
        Interval(3, 5),
        Interval(7, 10),
    ]


def test_subtract_overlapping_holes():
    assert subtract(Interval(0, 10), [Interval(2, 5), Interval(4, 8)]) == [
        Interval(0, 2),
        Interval(8, 10),
    ]


def test_subtract_no_holes():
    assert subtract(Interval(0, 3), []) == [Interval(0, 3)]


def test_subtract_from_empty_base():
    assert subtract(Interval(2, 2), [Interval(5, 6)]) == []


def test_gaps_between_intervals():
    assert gaps([Interval(1, 3), Interval(5, 6), Interval(6, 8), Interval(10, 11)]) == [
        Interval(3, 5),
        Interval(8, 10),
    ]


def test_gaps_closure_is_inverted():
    assert gaps([Interval.closed(0, 1), Interval.open(3, 4)]) == [Interval(1, 3, False, True)]


def test_gaps_single_interval_has_none():
    assert gaps([Interval(0, 1)]) == []


def test_gaps_within_span():
    assert gaps([Interval(1, 3)], Interval(0, 5)) == [Interval(0, 1), Interval(3, 5)]


def test_clip_to_span():
    assert clip([Interval(-5, 2), Interval(3, 4), Interval(8, 20)], Interval(0, 10)) == [
        Interval(0, 2),
        Interval(3, 4),
        Interval(8, 10),
    ]


def test_clip_drops_outside():
    assert clip([Interval(10, 12)], Interval(0, 10)) == []


def test_coverage_counts_containing_intervals():
    assert coverage([Interval(0, 5), Interval(2, 8), Interval(5, 9)], 5) == 2


def test_coverage_none():
    assert coverage([Interval(0, 5)], 7) == 0


def test_coverage_segments_counts_each_piece():
    assert coverage_segments([Interval(0, 4), Interval(2, 6), Interval(2, 3)]) == [
        (0, 2, 1),
        (2, 3, 3),
        (3, 4, 2),
        (4, 6, 1),
    ]


def test_coverage_segments_skips_uncovered_piece():
    assert coverage_segments([Interval(0, 1), Interval(3, 4)]) == [(0, 1, 1), (3, 4, 1)]


def test_coverage_segments_probe_inside_open_piece():
    assert coverage_segments([Interval.open(0, 1)]) == [(0, 1, 1)]


def test_coverage_segments_empty():
    assert coverage_segments([]) == []


def test_max_overlap_nested():
    assert max_overlap([Interval(0, 10), Interval(1, 5), Interval(2, 3)]) == 3


def test_max_overlap_after_earlier_interval_ends():
    assert max_overlap([Interval(0, 1), Interval(2, 5), Interval(3, 6), Interval(4, 7)]) == 3


def test_max_overlap_half_open_chain():
    assert max_overlap([Interval(0, 5), Interval(5, 10)]) == 1


def test_max_overlap_shared_closed_point():
    assert max_overlap([Interval.closed(0, 5), Interval(5, 10)]) == 2


def test_max_overlap_closed_end_and_open_start():
    assert max_overlap([Interval.closed(0, 5), Interval.open(5, 10)]) == 1


def test_max_overlap_open_end_and_closed_start():
    assert max_overlap([Interval(5, 10), Interval(0, 5)]) == 1


def test_max_overlap_identical_points():
    assert max_overlap([Interval.point(2), Interval.point(2)]) == 2


def test_max_overlap_ignores_empty():
    assert max_overlap([Interval(1, 1), Interval(0, 2)]) == 1


def test_max_overlap_no_intervals():
    assert max_overlap([]) == 0
