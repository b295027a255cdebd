import pytest

from intervals import (
    Interval,
    assign_rooms,
    busy_time,
    conflicts,
    first_free_slot,
    free_slots,
    longest_free_slot,
    max_non_overlapping,
    min_removals,
    min_rooms,
    utilization,
)


def test_min_rooms_overlapping_meetings():
    assert min_rooms([Interval(0, 30), Interval(5, 10), Interval(15, 20)]) == 2


def test_min_rooms_back_to_back_share_room():
    assert min_rooms([Interval(9, 10), Interval(10, 11), Interval(11, 12)]) == 1


def test_min_rooms_no_meetings():
    assert min_rooms([]) == 0


def test_assign_rooms_reuses_lowest_free_room():
    assert assign_rooms(
        [Interval(0, 30), Interval(5, 10), Interval(15, 20), Interval(10, 15), Interval(30, 40)]
    ) == [0, 1, 1, 1, 0]


def test_assign_rooms_opens_new_rooms():
    assert assign_rooms([Interval(0, 10), Interval(1, 10), Interval(2, 10)]) == [0, 1, 2]


def test_assign_rooms_unsorted_input():
    assert assign_rooms([Interval(5, 6), Interval(0, 5), Interval(4, 8)]) == [0, 0, 1]


def test_assign_rooms_empty():
    assert assign_rooms([]) == []


def test_conflicts_lists_overlapping_pairs():
    assert conflicts([Interval(0, 5), Interval(4, 6), Interval(5, 7), Interval(10, 11)]) == [
        (0, 1),
        (1, 2),
    ]


def test_conflicts_includes_last_pair():
    assert conflicts([Interval(0, 1), Interval(5, 7), Interval(6, 8)]) == [(1, 2)]


def test_conflicts_none():
    assert conflicts([Interval(0, 1), Interval(1, 2)]) == []


def test_free_slots_long_enough():
    assert free_slots([Interval(9, 10), Interval(12, 13)], Interval(8, 17), 2) == [
        Interval(10, 12),
        Interval(13, 17),
    ]


def test_free_slots_duration_is_inclusive():
    assert free_slots([Interval(1, 2)], Interval(0, 4), 1) == [Interval(0, 1), Interval(2, 4)]


def test_free_slots_zero_duration_keeps_all():
    assert free_slots([Interval(1, 3)], Interval(0, 4), 0) == [Interval(0, 1), Interval(3, 4)]


def test_free_slots_negative_duration_raises():
    with pytest.raises(ValueError):
        free_slots([], Interval(0, 1), -1)


def test_first_free_slot_earliest_fit():
    assert first_free_slot([Interval(9, 10), Interval(12, 13)], Interval(8, 17), 2) == Interval(
        10, 12
    )


def test_first_free_slot_after_closed_busy_end():
    assert first_free_slot([Interval.closed(0, 2)], Interval(0, 10), 3) == Interval.open(2, 5)


def test_first_free_slot_none_fits():
    assert first_free_slot([Interval(1, 9)], Interval(0, 10), 2) is None


def test_busy_time_clips_to_window():
    assert busy_time([Interval(7, 9), Interval(12, 14)], Interval(8, 17)) == pytest.approx(3.0)


def test_busy_time_merges_overlapping_meetings():
    assert busy_time([Interval(12, 13), Interval(12.5, 14)], Interval(8, 17)) == pytest.approx(2.0)


def test_busy_time_ignores_meetings_outside_window():
    assert busy_time([Interval(0, 2), Interval(20, 30)], Interval(5, 10)) == 0.0


def test_utilization_fraction():
    assert utilization([Interval(8, 10)], Interval(8, 16)) == pytest.approx(0.25)


def test_utilization_unit_window():
    assert utilization([Interval(0, 0.5)], Interval(0, 1)) == pytest.approx(0.5)


def test_utilization_empty_window_raises():
    with pytest.raises(ValueError):
        utilization([], Interval(3, 3))


def test_max_non_overlapping_greedy_by_end():
    assert max_non_overlapping(
        [Interval(1, 4), Interval(3, 5), Interval(0, 6), Interval(5, 7), Interval(8, 11)]
    ) == [Interval(1, 4), Interval(5, 7), Interval(8, 11)]


def test_max_non_overlapping_compares_with_last_chosen():
    assert max_non_overlapping([Interval(0, 1), Interval(1, 3), Interval(2, 4)]) == [
        Interval(0, 1),
        Interval(1, 3),
    ]


def test_max_non_overlapping_same_end_prefers_later_start():
    assert max_non_overlapping([Interval(0, 5), Interval(3, 5), Interval(5, 6)]) == [
        Interval(3, 5),
        Interval(5, 6),
    ]


def test_max_non_overlapping_tie_prefers_shorter():
    assert max_non_overlapping([Interval(0, 5), Interval(3, 5), Interval(1, 4)]) == [
        Interval(1, 4)
    ]


def test_max_non_overlapping_same_end_prefers_open_end():
    assert max_non_overlapping([Interval.closed(0, 5), Interval(1, 5), Interval.closed(5, 6)]) == [
        Interval(1, 5),
        Interval.closed(5, 6),
    ]


def test_max_non_overlapping_skips_empty():
    assert max_non_overlapping([Interval(2, 2), Interval(0, 3)]) == [Interval(0, 3)]


def test_min_removals():
    assert min_removals([Interval(1, 2), Interval(2, 3), Interval(3, 4), Interval(1, 3)]) == 1


def test_min_removals_ignores_empty():
    assert min_removals([Interval(1, 1), Interval(0, 5), Interval(5, 6)]) == 0


def test_longest_free_slot():
    assert longest_free_slot([Interval(9, 10), Interval(12, 13)], Interval(8, 17)) == Interval(
        13, 17
    )


def test_longest_free_slot_tie_keeps_earliest():
    assert longest_free_slot([Interval(2, 3)], Interval(0, 5)) == Interval(0, 2)


def test_longest_free_slot_fully_busy():
    assert longest_free_slot([Interval(0, 10)], Interval(2, 8)) is None
