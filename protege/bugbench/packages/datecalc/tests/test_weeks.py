import pytest

from datecalc import (
    from_iso_week,
    iso_week,
    iso_weekday,
    iso_weeks_in_year,
    last_weekday,
    nth_weekday,
    quarter,
    quarter_bounds,
    week_end,
    week_start,
    weekday_count,
)


def test_iso_weekday_monday():
    assert iso_weekday(2024, 3, 4) == 1


def test_iso_weekday_sunday():
    assert iso_weekday(2024, 3, 10) == 7


def test_iso_week_mid_year():
    assert iso_week(2024, 6, 15) == (2024, 24)


def test_iso_week_first_monday_of_year():
    assert iso_week(2024, 1, 1) == (2024, 1)


def test_iso_week_january_in_previous_iso_year():
    assert iso_week(2021, 1, 3) == (2020, 53)


def test_iso_week_first_day_of_week_one():
    assert iso_week(2021, 1, 4) == (2021, 1)


def test_iso_week_january_first_in_week_52():
    assert iso_week(2022, 1, 1) == (2021, 52)


def test_iso_week_december_in_next_iso_year():
    assert iso_week(2024, 12, 30) == (2025, 1)


def test_iso_week_december_29_in_next_iso_year():
    assert iso_week(2025, 12, 29) == (2026, 1)


def test_iso_week_december_28_in_same_year():
    assert iso_week(2025, 12, 28) == (2025, 52)


def test_iso_week_december_31_in_week_53():
    assert iso_week(2020, 12, 31) == (2020, 53)


def test_iso_week_last_supported_day():
    assert iso_week(9999, 12, 31) == (9999, 52)


def test_iso_weeks_in_year_starting_thursday():
    assert iso_weeks_in_year(2015) == 53


def test_iso_weeks_in_leap_year_starting_wednesday():
    assert iso_weeks_in_year(2020) == 53


def test_iso_weeks_in_common_year_starting_wednesday():
    assert iso_weeks_in_year(2025) == 52


def test_iso_weeks_in_ordinary_year():
    assert iso_weeks_in_year(2023) == 52


def test_from_iso_week_monday():
    assert from_iso_week(2021, 1) == (2021, 1, 4)


def test_from_iso_week_in_previous_calendar_year():
    assert from_iso_week(2025, 1, 1) == (2024, 12, 30)


def test_from_iso_week_sunday_of_week_53():
    assert from_iso_week(2020, 53, 7) == (2021, 1, 3)


def test_from_iso_week_rejects_week_53_in_short_year():
    with pytest.raises(ValueError):
        from_iso_week(2023, 53)


def test_from_iso_week_rejects_week_zero():
    with pytest.raises(ValueError):
        from_iso_week(2023, 0)


def test_from_iso_week_rejects_weekday_eight():
    with pytest.raises(ValueError):
        from_iso_week(2023, 10, 8)


def test_from_iso_week_rejects_weekday_zero():
    with pytest.raises(ValueError):
        from_iso_week(2023, 10, 0)


def test_week_start_monday():
    assert week_start(2024, 3, 7) == (2024, 3, 4)


def test_week_start_on_first_weekday_itself():
    assert week_start(2024, 3, 4) == (2024, 3, 4)


def test_week_start_sunday_based():
    assert week_start(2024, 3, 7, first_weekday=6) == (2024, 3, 3)


def test_week_start_across_year_boundary():
    assert week_start(2025, 1, 1) == (2024, 12, 30)


def test_week_start_rejects_bad_first_weekday():
    with pytest.raises(ValueError):
        week_start(2024, 3, 7, first_weekday=7)


def test_week_end_sunday():
    assert week_end(2024, 3, 7) == (2024, 3, 10)


def test_week_end_saturday_for_sunday_based_weeks():
    assert week_end(2024, 3, 10, first_weekday=6) == (2024, 3, 16)


def test_quarter_first():
    assert quarter(2024, 3, 31) == 1


def test_quarter_second_starts_in_april():
    assert quarter(2024, 4, 1) == 2


def test_quarter_fourth():
    assert quarter(2024, 12, 31) == 4


def test_quarter_rejects_invalid_date():
    with pytest.raises(ValueError):
        quarter(2024, 13, 1)


def test_quarter_bounds_first_in_leap_year():
    assert quarter_bounds(2024, 1) == ((2024, 1, 1), (2024, 3, 31))


def test_quarter_bounds_second():
    assert quarter_bounds(2023, 2) == ((2023, 4, 1), (2023, 6, 30))


def test_quarter_bounds_fourth():
    assert quarter_bounds(2023, 4) == ((2023, 10, 1), (2023, 12, 31))


def test_quarter_bounds_rejects_fifth():
    with pytest.raises(ValueError):
        quarter_bounds(2023, 5)


def test_quarter_bounds_rejects_zero():
    with pytest.raises(ValueError):
        quarter_bounds(2023, 0)


def test_nth_weekday_third_monday():
    assert nth_weekday(2024, 1, 0, 3) == (2024, 1, 15)


def test_nth_weekday_first_on_day_one():
    assert nth_weekday(2024, 3, 4, 1) == (2024, 3, 1)


def test_nth_weekday_first_wraps_into_next_week():
    assert nth_weekday(2024, 3, 3, 1) == (2024, 3, 7)


def test_nth_weekday_fifth_occurrence():
    assert nth_weekday(2024, 3, 4, 5) == (2024, 3, 29)


def test_nth_weekday_fourth_thursday_of_november():
    assert nth_weekday(2023, 11, 3, 4) == (2023, 11, 23)


def test_nth_weekday_rejects_missing_fifth():
    with pytest.raises(ValueError):
        nth_weekday(2023, 2, 0, 5)


def test_nth_weekday_rejects_zero():
    with pytest.raises(ValueError):
        nth_weekday(2024, 3, 0, 0)


def test_nth_weekday_rejects_bad_weekday():
    with pytest.raises(ValueError):
        nth_weekday(2024, 3, 7, 1)


def test_last_weekday_last_monday_of_may():
    assert last_weekday(2024, 5, 0) == (2024, 5, 27)


def test_last_weekday_on_last_day():
    assert last_weekday(2024, 5, 4) == (2024, 5, 31)


def test_last_weekday_of_leap_february():
    assert last_weekday(2024, 2, 3) == (2024, 2, 29)


def test_last_weekday_rejects_bad_weekday():
    with pytest.raises(ValueError):
        last_weekday(2024, 5, -1)


def test_weekday_count_five():
    assert weekday_count(2024, 3, 4) == 5


def test_weekday_count_four():
    assert weekday_count(2024, 3, 0) == 4


def test_weekday_count_common_february():
    assert weekday_count(2023, 2, 2) == 4


def test_weekday_count_leap_february_extra_day():
    assert weekday_count(2024, 2, 3) == 5


def test_nth_weekday_sunday_on_last_day_of_month():
    assert nth_weekday(2024, 3, 6, 5) == (2024, 3, 31)


def test_last_weekday_sunday():
    assert last_weekday(2024, 3, 6) == (2024, 3, 31)


def test_last_weekday_earlier_in_week_than_last_day():
    assert last_weekday(2024, 5, 5) == (2024, 5, 25)


def test_last_weekday_rejects_weekday_seven():
    with pytest.raises(ValueError):
        last_weekday(2024, 5, 7)
