"""Gregorian calendar facts for plain integer (year, month, day) dates."""

MIN_YEAR = 1
MAX_YEAR = 9999
MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_SAKAMOTO_OFFSETS = (0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4)


def is_leap_year(year):
    """Return True for Gregorian leap years (divisible by 4, centuries only by 400)."""
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def days_in_year(year):
    """Return 366 for leap years and 365 otherwise."""
    return 366 if is_leap_year(year) else 365


def days_in_month(year, month):
    """Return the number of days in a month of a given year."""
    if not 1 <= month <= 12:
        raise ValueError("month must be in 1..12, got %d" % month)
    if month == 2 and is_leap_year(year):
        return 29
    return MONTH_DAYS[month - 1]


def _days_before_month(year, month):
    """Number of days in the year before the first day of month."""
    total = sum(MONTH_DAYS[: month - 1])
    if month > 2 and is_leap_year(year):
        total += 1
    return total


def is_valid_date(year, month, day):
    """Return True when (year, month, day) names a real date in years 1..9999."""
    if not MIN_YEAR <= year <= MAX_YEAR:
        return False
    if not 1 <= month <= 12:
        return False
    return 1 <= day <= days_in_month(year, month)


def validate_date(year, month, day):
    """Return the date as a tuple, or raise ValueError naming the bad field."""
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ValueError("year out of range: %d" % year)
    if not 1 <= month <= 12:
        raise ValueError("month out of range: %d" % month)
    last = days_in_month(year, month)
    if not 1 <= day <= last:
        raise ValueError("day must be in 1..%d, got %d" % (last, day))
    return (year, month, day)


def day_of_year(year, month, day):
    """Return the 1-based position of the date within its year."""
    validate_date(year, month, day)
    return _days_before_month(year, month) + day


def day_of_week(year, month, day):
    """Return the weekday with Monday as 0 and Sunday as 6 (Sakamoto's method)."""
    validate_date(year, month, day)
    if month < 3:
        year -= 1
    sunday_based = (
        year + year // 4 - year // 100 + year // 400 + _SAKAMOTO_OFFSETS[month - 1] + day
    ) % 7
    return (sunday_based + 6) % 7


def weekday_name(year, month, day):
    """Return the English name of the date's weekday."""
    return WEEKDAY_NAMES[day_of_week(year, month, day)]


def is_weekend(year, month, day):
    """Return True on Saturdays and Sundays."""
    return day_of_week(year, month, day) >= 5


def parse_iso(text):
    """Parse "YYYY-MM-DD" into a validated (year, month, day) tuple."""
    parts = text.strip().split("-")
    if len(parts) != 3:
        raise ValueError("expected YYYY-MM-DD, got %r" % text)
    year_text, month_text, day_text = parts
    if len(year_text) != 4 or len(month_text) != 2 or len(day_text) != 2:
        raise ValueError("expected YYYY-MM-DD, got %r" % text)
    if not (year_text + month_text + day_text).isdigit():
        raise ValueError("non-digit in date %r" % text)
    return validate_date(int(year_text), int(month_text), int(day_text))


def format_iso(year, month, day):
    """Format a date as "YYYY-MM-DD"."""
    validate_date(year, month, day)
    return "%04d-%02d-%02d" % (year, month, day)
