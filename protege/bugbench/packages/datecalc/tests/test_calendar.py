import pytest

from datecalc import (
    WEEKDAY_NAMES,
    day_of_week,
    day_of_year,
    days_in_month,
    days_in_year,
    format_iso,
    is_leap_year,
    is_valid_date,
    is_weekend,
    parse_iso,
    validate_date,
    weekday_name,
)


def test_leap_year_divisible_by_four():
    assert is_leap_year(2024) is True


def test_common_year():
    assert is_leap_year(2023) is False


def test_century_is_not_leap():
    assert is_leap_year(1900) is False


def test_fourth_century_is_leap():
    assert is_leap_year(2000) is True


def test_days_in_leap_year():
    assert days_in_year(2024) == 366


def test_days_in_common_year():
    assert days_in_year(2100) == 365


def test_days_in_february_leap():
    assert days_in_month(2024, 2) == 29


def test_days_in_february_common():
    assert days_in_month(2023, 2) == 28


def test_days_in_april():
    assert days_in_month(2023, 4) == 30


def test_days_in_december():
    assert days_in_month(2023, 12) == 31


def test_days_in_january():
    assert days_in_month(2023, 1) == 31


def test_days_in_month_rejects_month_zero():
    with pytest.raises(ValueError):
        days_in_month(2023, 0)


def test_days_in_month_rejects_month_thirteen():
    with pytest.raises(ValueError):
        days_in_month(2023, 13)


def test_valid_leap_day():
    assert is_valid_date(2024, 2, 29) is True


def test_invalid_leap_day_in_common_year():
    assert is_valid_date(2023, 2, 29) is False


def test_invalid_day_zero():
    assert is_valid_date(2023, 5, 0) is False


def test_invalid_month():
    assert is_valid_date(2023, 13, 1) is False


def test_invalid_year_zero():
    assert is_valid_date(0, 1, 1) is False


def test_valid_last_supported_day():
    assert is_valid_date(9999, 12, 31) is True


def test_invalid_year_past_range():
    assert is_valid_date(10000, 1, 1) is False


def test_validate_date_returns_tuple():
    assert validate_date(2023, 6, 30) == (2023, 6, 30)


def test_validate_date_rejects_day_past_month_end():
    with pytest.raises(ValueError):
        validate_date(2023, 6, 31)


def test_validate_date_rejects_bad_month():
    with pytest.raises(ValueError):
        validate_date(2023, 0, 1)


def test_validate_date_rejects_bad_year():
    with pytest.raises(ValueError):
        validate_date(0, 12, 1)


def test_day_of_year_first_day():
    assert day_of_year(2023, 1, 1) == 1


def test_day_of_year_march_first_common():
    assert day_of_year(2023, 3, 1) == 60


def test_day_of_year_march_first_leap():
    assert day_of_year(2024, 3, 1) == 61


def test_day_of_year_february_in_leap_year():
    assert day_of_year(2024, 2, 29) == 60


def test_day_of_year_last_day_leap():
    assert day_of_year(2024, 12, 31) == 366


def test_day_of_year_rejects_invalid():
    with pytest.raises(ValueError):
        day_of_year(2023, 2, 30)


def test_day_of_week_monday():
    assert day_of_week(2024, 1, 1) == 0


def test_day_of_week_sunday():
    assert day_of_week(2023, 12, 31) == 6


def test_day_of_week_leap_day():
    assert day_of_week(2024, 2, 29) == 3


def test_day_of_week_late_in_year():
    assert day_of_week(1999, 12, 31) == 4


def test_day_of_week_year_one():
    assert day_of_week(1, 1, 1) == 0


def test_day_of_week_february_of_century():
    assert day_of_week(1900, 2, 28) == 2


def test_weekday_names():
    assert WEEKDAY_NAMES[4] == "Friday"


def test_weekday_name():
    assert weekday_name(2000, 1, 1) == "Saturday"


def test_is_weekend_saturday():
    assert is_weekend(2024, 3, 16) is True


def test_is_weekend_friday():
    assert is_weekend(2024, 3, 15) is False


def test_parse_iso():
    assert parse_iso("2024-02-29") == (2024, 2, 29)


def test_parse_iso_strips_blanks():
    assert parse_iso(" 0042-07-04 ") == (42, 7, 4)


def test_parse_iso_rejects_invalid_date():
    with pytest.raises(ValueError):
        parse_iso("2023-02-29")


def test_parse_iso_rejects_short_fields():
    with pytest.raises(ValueError):
        parse_iso("2023-2-09")


def test_parse_iso_rejects_wrong_separator():
    with pytest.raises(ValueError):
        parse_iso("2023/02/09")


def test_parse_iso_rejects_letters():
    with pytest.raises(ValueError):
        parse_iso("2023-0a-09")


def test_format_iso_pads_fields():
    assert format_iso(987, 3, 5) == "0987-03-05"


def test_format_iso_rejects_invalid():
    with pytest.raises(ValueError):
        format_iso(2023, 4, 31)


def test_valid_first_supported_day():
    assert is_valid_date(1, 1, 1) is True


def test_day_of_week_after_400_year_boundary():
    assert day_of_week(2001, 1, 1) == 0


def test_day_of_week_april():
    assert day_of_week(2023, 4, 1) == 5


def test_day_of_week_june():
    assert day_of_week(2023, 6, 1) == 3


def test_day_of_week_july():
    assert day_of_week(2023, 7, 4) == 1


def test_day_of_week_august():
    assert day_of_week(2023, 8, 15) == 1


def test_day_of_week_september():
    assert day_of_week(2023, 9, 30) == 5


def test_day_of_week_october():
    assert day_of_week(2023, 10, 31) == 1


def test_day_of_week_november():
    assert day_of_week(2023, 11, 11) == 5
