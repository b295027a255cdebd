"""Date arithmetic through day ordinals, with 0001-01-01 as ordinal 1."""

from .calendar import (
    MAX_YEAR,
    MIN_YEAR,
    _days_before_month,
    day_of_week,
    days_in_month,
    validate_date,
)

DAYS_IN_400_YEARS = 146097
DAYS_IN_100_YEARS = 36524
DAYS_IN_4_YEARS = 1461
MAX_ORDINAL = 3652059


def _days_before_year(year):
    """Number of days from 0001-01-01 up to the first day of year."""
    previous = year - 1
    return previous * 365 + previous // 4 - previous // 100 + previous // 400


def to_ordinal(year, month, day):
    """Return the day number of a date, counting 0001-01-01 as day 1."""
    validate_date(year, month, day)
    return _days_before_year(year) + _days_before_month(year, month) + day


def _month_and_day(year, position):
    """Split a 1-based day-of-year position into (month, day)."""
    month = 1
    while position > days_in_month(year, month):
        position -= days_in_month(year, month)
        month += 1
    return month, position


def from_ordinal(ordinal):
    """Return the (year, month, day) tuple for a day number."""
    if not 1 <= ordinal <= MAX_ORDINAL:
        raise ValueError("ordinal out of range: %d" % ordinal)
    n400, rest = divmod(ordinal - 1, DAYS_IN_400_YEARS)
    n100, rest = divmod(rest, DAYS_IN_100_YEARS)
    n4, rest = divmod(rest, DAYS_IN_4_YEARS)
    n1, rest = divmod(rest, 365)
    year = n400 * 400 + n100 * 100 + n4 * 4 + n1 + 1
    if n1 == 4 or n100 == 4:
        return (year - 1, 12, 31)
    month, day = _month_and_day(year, rest + 1)
    return (year, month, day)


def _weekday_of_ordinal(ordinal):
    """Weekday (Monday 0) of an ordinal; day 1 was a Monday."""
    return (ordinal - 1) % 7


def add_days(year, month, day, days):
    """Return the date a number of days (possibly negative) after the given one."""
    return from_ordinal(to_ordinal(year, month, day) + days)


def add_months(year, month, day, months):
    """Shift a date by whole months, clamping the day to the target month's length."""
    validate_date(year, month, day)
    new_year, month_index = divmod(year * 12 + month - 1 + months, 12)
    new_month = month_index + 1
    if not MIN_YEAR <= new_year <= MAX_YEAR:
        raise ValueError("result year out of range: %d" % new_year)
    return (new_year, new_month, min(day, days_in_month(new_year, new_month)))


def add_years(year, month, day, years):
    """Shift a date by whole years; February 29 becomes February 28 when needed."""
    return add_months(year, month, day, years * 12)


def days_between(start, end):
    """Return end minus start in days for two (year, month, day) tuples."""
    return to_ordinal(*end) - to_ordinal(*start)


def compare_dates(first, second):
    """Return -1, 0 or 1 as first is before, equal to or after second."""
    difference = days_between(second, first)
    if difference < 0:
        return -1
    if difference > 0:
        return 1
    return 0


def months_between(start, end):
    """Return the number of complete months from start to end (negative if earlier)."""
    months = (end[0] - start[0]) * 12 + end[1] - start[1]
    if months > 0 and end[2] < start[2]:
        months -= 1
    elif months < 0 and end[2] > start[2]:
        months += 1
    return months


def _count_weekdays(first_ordinal, count):
    """Count Monday-to-Friday days among count consecutive days from first_ordinal."""
    full_weeks, extra = divmod(count, 7)
    total = full_weeks * 5
    weekday = _weekday_of_ordinal(first_ordinal)
    for offset in range(extra):
        if (weekday + offset) % 7 < 5:
            total += 1
    return total


def business_days_between(start, end):
    """Count weekdays in the half-open range [start, end); negative if end < start."""
    span = days_between(start, end)
    if span < 0:
        return -business_days_between(end, start)
    return _count_weekdays(to_ordinal(*start), span)


def add_business_days(year, month, day, days):
    """Step over weekends to the date a number of business days away."""
    ordinal = to_ordinal(year, month, day)
    step = 1 if days >= 0 else -1
    remaining = abs(days)
    while remaining > 0:
        ordinal += step
        if _weekday_of_ordinal(ordinal) < 5:
            remaining -= 1
    return from_ordinal(ordinal)


def next_weekday(year, month, day, weekday):
    """Return the first date strictly after the given one that falls on weekday."""
    if not 0 <= weekday <= 6:
        raise ValueError("weekday must be in 0..6")
    ahead = (weekday - day_of_week(year, month, day)) % 7
    return add_days(year, month, day, ahead or 7)
