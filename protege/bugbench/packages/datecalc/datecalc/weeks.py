"""ISO weeks, quarters and weekday-of-month rules."""

from .arith import add_days, from_ordinal, to_ordinal
from .calendar import MAX_YEAR, day_of_week, days_in_month, is_leap_year, validate_date


def iso_weekday(year, month, day):
    """Return the ISO weekday: Monday 1 through Sunday 7."""
    return day_of_week(year, month, day) + 1


def _week_one_monday(iso_year):
    """Ordinal of the Monday of ISO week 1 (the week holding January 4)."""
    return to_ordinal(iso_year, 1, 4) - day_of_week(iso_year, 1, 4)


def iso_weeks_in_year(iso_year):
    """Return 53 for ISO years that start or (in leap years) end on a Thursday, else 52."""
    first = day_of_week(iso_year, 1, 1)
    if first == 3 or (first == 2 and is_leap_year(iso_year)):
        return 53
    return 52


def iso_week(year, month, day):
    """Return (iso_year, week_number) of a date following ISO 8601."""
    ordinal = to_ordinal(year, month, day)
    iso_year = year
    late_december = month == 12 and day >= 29 and year < MAX_YEAR
    if late_december and ordinal >= _week_one_monday(year + 1):
        iso_year = year + 1
    elif ordinal < _week_one_monday(year):
        iso_year = year - 1
    week = (ordinal - _week_one_monday(iso_year)) // 7 + 1
    return (iso_year, week)


def from_iso_week(iso_year, week, weekday=1):
    """Return the date of an ISO (year, week, weekday) triple; weekday 1 is Monday."""
    if not 1 <= week <= iso_weeks_in_year(iso_year):
        raise ValueError("week %d out of range for %d" % (week, iso_year))
    if not 1 <= weekday <= 7:
        raise ValueError("ISO weekday must be in 1..7")
    return from_ordinal(_week_one_monday(iso_year) + (week - 1) * 7 + weekday - 1)


def week_start(year, month, day, first_weekday=0):
    """Return the first day of the week containing the date (Monday 0 by default)."""
    if not 0 <= first_weekday <= 6:
        raise ValueError("first_weekday must be in 0..6")
    back = (day_of_week(year, month, day) - first_weekday) % 7
    return add_days(year, month, day, -back)


def week_end(year, month, day, first_weekday=0):
    """Return the last day of the week containing the date."""
    return add_days(*week_start(year, month, day, first_weekday), 6)


def quarter(year, month, day):
    """Return the calendar quarter 1..4 of a date."""
    validate_date(year, month, day)
    return (month - 1) // 3 + 1


def quarter_bounds(year, number):
    """Return the first and last date of a quarter as two (y, m, d) tuples."""
    if not 1 <= number <= 4:
        raise ValueError("quarter must be in 1..4")
    first_month = 3 * number - 2
    last_month = first_month + 2
    return (year, first_month, 1), (year, last_month, days_in_month(year, last_month))


def _first_weekday_day(year, month, weekday):
    """Day of month of the first occurrence of weekday in the month."""
    if not 0 <= weekday <= 6:
        raise ValueError("weekday must be in 0..6")
    return 1 + (weekday - day_of_week(year, month, 1)) % 7


def nth_weekday(year, month, weekday, n):
    """Return the date of the n-th given weekday in a month, e.g. the 3rd Monday."""
    if n < 1:
        raise ValueError("n must be at least 1")
    day = _first_weekday_day(year, month, weekday) + (n - 1) * 7
    if day > days_in_month(year, month):
        raise ValueError("month has no occurrence number %d of that weekday" % n)
    return (year, month, day)


def last_weekday(year, month, weekday):
    """Return the date of the last given weekday in a month, e.g. the last Friday."""
    if not 0 <= weekday <= 6:
        raise ValueError("weekday must be in 0..6")
    last = days_in_month(year, month)
    back = (day_of_week(year, month, last) - weekday) % 7
    return (year, month, last - back)


def weekday_count(year, month, weekday):
    """Return how many times a weekday occurs in a month (4 or 5)."""
    first = _first_weekday_day(year, month, weekday)
    return (days_in_month(year, month) - first) // 7 + 1
