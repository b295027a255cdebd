import pytest

from datecalc import (
    add_business_days,
    add_days,
    add_months,
    add_years,
    business_days_between,
    compare_dates,
    days_between,
    from_ordinal,
    months_between,
    next_weekday,
    to_ordinal,
)


def test_ordinal_of_first_day():
    assert to_ordinal(1, 1, 1) == 1


def test_ordinal_of_modern_date():
    assert to_ordinal(2024, 3, 1) == 738946


def test_ordinal_of_end_of_century():
    assert to_ordinal(2000, 12, 31) == 730485


def test_ordinal_of_last_day():
    assert to_ordinal(9999, 12, 31) == 3652059


def test_ordinal_rejects_invalid_date():
    with pytest.raises(ValueError):
        to_ordinal(2023, 2, 29)


def test_from_ordinal_first_day():
    assert from_ordinal(1) == (1, 1, 1)


def test_from_ordinal_modern_date():
    assert from_ordinal(738946) == (2024, 3, 1)


def test_from_ordinal_leap_day():
    assert from_ordinal(738945) == (2024, 2, 29)


def test_from_ordinal_end_of_400_year_cycle():
    assert from_ordinal(730485) == (2000, 12, 31)


def test_from_ordinal_end_of_four_year_cycle():
    assert from_ordinal(1461) == (4, 12, 31)


def test_from_ordinal_end_of_common_year():
    assert from_ordinal(365) == (1, 12, 31)


def test_from_ordinal_end_of_leap_century():
    assert from_ordinal(146097) == (400, 12, 31)


def test_from_ordinal_after_cycle():
    assert from_ordinal(146098) == (401, 1, 1)


def test_from_ordinal_end_of_common_century():
    assert from_ordinal(36524) == (100, 12, 31)


def test_from_ordinal_last_day():
    assert from_ordinal(3652059) == (9999, 12, 31)


def test_from_ordinal_rejects_zero():
    with pytest.raises(ValueError):
        from_ordinal(0)


def test_from_ordinal_rejects_past_range():
    with pytest.raises(ValueError):
        from_ordinal(3652060)


def test_add_days_across_year_end():
    assert add_days(2023, 12, 30, 3) == (2024, 1, 2)


def test_add_days_into_leap_day():
    assert add_days(2024, 2, 28, 1) == (2024, 2, 29)


def test_add_days_negative():
    assert add_days(2024, 3, 1, -1) == (2024, 2, 29)


def test_add_days_zero():
    assert add_days(2023, 7, 14, 0) == (2023, 7, 14)


def test_add_months_simple():
    assert add_months(2023, 1, 15, 1) == (2023, 2, 15)


def test_add_months_clamps_to_month_end():
    assert add_months(2023, 1, 31, 1) == (2023, 2, 28)


def test_add_months_clamps_to_leap_day():
    assert add_months(2024, 1, 31, 1) == (2024, 2, 29)


def test_add_months_across_year():
    assert add_months(2023, 11, 30, 3) == (2024, 2, 29)


def test_add_months_to_december():
    assert add_months(2023, 10, 31, 2) == (2023, 12, 31)


def test_add_months_negative_across_year():
    assert add_months(2024, 1, 31, -2) == (2023, 11, 30)


def test_add_months_rejects_result_out_of_range():
    with pytest.raises(ValueError):
        add_months(9999, 12, 1, 1)


def test_add_years_from_leap_day():
    assert add_years(2024, 2, 29, 1) == (2025, 2, 28)


def test_add_years_leap_to_leap():
    assert add_years(2024, 2, 29, 4) == (2028, 2, 29)


def test_days_between_forward():
    assert days_between((2024, 1, 1), (2024, 3, 1)) == 60


def test_days_between_backward():
    assert days_between((2023, 3, 1), (2023, 1, 1)) == -59


def test_days_between_same_day():
    assert days_between((2023, 5, 5), (2023, 5, 5)) == 0


def test_compare_dates_before():
    assert compare_dates((2023, 12, 31), (2024, 1, 1)) == -1


def test_compare_dates_after():
    assert compare_dates((2024, 1, 2), (2024, 1, 1)) == 1


def test_compare_dates_equal():
    assert compare_dates((2024, 1, 1), (2024, 1, 1)) == 0


def test_months_between_complete_months():
    assert months_between((2023, 1, 15), (2023, 4, 15)) == 3


def test_months_between_incomplete_month():
    assert months_between((2023, 1, 15), (2023, 4, 14)) == 2


def test_months_between_backward():
    assert months_between((2023, 4, 15), (2023, 1, 15)) == -3


def test_months_between_backward_incomplete():
    assert months_between((2023, 4, 14), (2023, 1, 15)) == -2


def test_months_between_across_years():
    assert months_between((2022, 11, 1), (2024, 2, 1)) == 15


def test_business_days_full_week():
    assert business_days_between((2024, 3, 4), (2024, 3, 11)) == 5


def test_business_days_end_is_exclusive():
    assert business_days_between((2024, 3, 4), (2024, 3, 8)) == 4


def test_business_days_over_weekend():
    assert business_days_between((2024, 3, 8), (2024, 3, 12)) == 2


def test_business_days_starting_on_saturday():
    assert business_days_between((2024, 3, 9), (2024, 3, 12)) == 1


def test_business_days_weekend_only():
    assert business_days_between((2024, 3, 9), (2024, 3, 11)) == 0


def test_business_days_several_weeks():
    assert business_days_between((2024, 1, 1), (2024, 2, 1)) == 23


def test_business_days_reversed_is_negative():
    assert business_days_between((2024, 3, 12), (2024, 3, 8)) == -2


def test_add_business_days_skips_weekend():
    assert add_business_days(2024, 3, 8, 1) == (2024, 3, 11)


def test_add_business_days_within_week():
    assert add_business_days(2024, 3, 4, 4) == (2024, 3, 8)


def test_add_business_days_backward():
    assert add_business_days(2024, 3, 11, -1) == (2024, 3, 8)


def test_add_business_days_from_saturday():
    assert add_business_days(2024, 3, 9, 1) == (2024, 3, 11)


def test_add_business_days_zero():
    assert add_business_days(2024, 3, 9, 0) == (2024, 3, 9)


def test_next_weekday_later_in_week():
    assert next_weekday(2024, 3, 4, 4) == (2024, 3, 8)


def test_next_weekday_same_weekday_goes_a_week_ahead():
    assert next_weekday(2024, 3, 4, 0) == (2024, 3, 11)


def test_next_weekday_wraps_around():
    assert next_weekday(2024, 3, 8, 1) == (2024, 3, 12)


def test_next_weekday_rejects_bad_weekday():
    with pytest.raises(ValueError):
        next_weekday(2024, 3, 8, 7)


def test_ordinal_after_400_year_boundary():
    assert to_ordinal(2001, 1, 1) == 730486


def test_add_months_into_first_year():
    assert add_months(1, 2, 15, -1) == (1, 1, 15)


def test_add_months_into_last_year():
    assert add_months(9999, 11, 30, 1) == (9999, 12, 30)


def test_months_between_same_month_earlier_day():
    assert months_between((2023, 5, 20), (2023, 5, 10)) == 0


def test_months_between_same_month_later_day():
    assert months_between((2023, 5, 10), (2023, 5, 20)) == 0


def test_months_between_one_day_short_of_a_month():
    assert months_between((2023, 1, 15), (2023, 2, 14)) == 0


def test_months_between_one_day_short_backward():
    assert months_between((2023, 2, 14), (2023, 1, 15)) == 0


def test_next_weekday_sunday():
    assert next_weekday(2024, 3, 4, 6) == (2024, 3, 10)
