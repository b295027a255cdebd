"""Money amounts stored as integer cents: parsing, formatting and allocation."""

from fractions import Fraction

CENTS_PER_UNIT = 100
GROUP_SIZE = 3


def _div_half_up(numerator, denominator):
    """Divide an integer by a positive integer, rounding halves away from zero."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    quotient, remainder = divmod(abs(numerator), denominator)
    if 2 * remainder >= denominator:
        quotient += 1
    return quotient if numerator >= 0 else -quotient


def _split_sign(text):
    """Strip surrounding blanks and a leading sign; return (negative, body)."""
    body = text.strip()
    if not body:
        raise ValueError("empty amount")
    if body.startswith("(") and body.endswith(")"):
        return True, body[1:-1].strip()
    if body[0] in "+-":
        return body[0] == "-", body[1:].strip()
    return False, body


def _check_grouping(whole, separator):
    """Validate thousands separators in the integer part of an amount."""
    groups = whole.split(separator)
    if len(groups) == 1:
        return
    if not 1 <= len(groups[0]) <= GROUP_SIZE:
        raise ValueError("bad thousands grouping: %r" % whole)
    for group in groups[1:]:
        if len(group) != GROUP_SIZE:
            raise ValueError("bad thousands grouping: %r" % whole)


def parse_amount(text, separator=","):
    """Parse a decimal string such as "-1,234.5" or "(12.00)" into integer cents."""
    negative, body = _split_sign(text)
    whole, dot, frac = body.partition(".")
    _check_grouping(whole, separator)
    whole = whole.replace(separator, "")
    if not whole and not frac:
        raise ValueError("no digits in amount: %r" % text)
    if whole and not whole.isdigit():
        raise ValueError("invalid amount: %r" % text)
    if frac and not frac.isdigit():
        raise ValueError("invalid amount: %r" % text)
    if len(frac) > 2:
        raise ValueError("more than two decimal places: %r" % text)
    cents = int(whole or "0") * CENTS_PER_UNIT + int(frac.ljust(2, "0"))
    return -cents if negative else cents


def _group_thousands(digits, separator):
    """Insert separator between groups of three digits, counting from the right."""
    groups = []
    while len(digits) > GROUP_SIZE:
        groups.append(digits[-GROUP_SIZE:])
        digits = digits[:-GROUP_SIZE]
    groups.append(digits)
    return separator.join(reversed(groups))


def format_amount(cents, symbol="", separator=",", show_plus=False):
    """Format integer cents as text such as "-$1,234.56"."""
    units, rest = divmod(abs(cents), CENTS_PER_UNIT)
    body = _group_thousands(str(units), separator) + "." + str(rest).zfill(2)
    if cents < 0:
        sign = "-"
    elif show_plus and cents > 0:
        sign = "+"
    else:
        sign = ""
    return sign + symbol + body


def format_accounting(cents, symbol=""):
    """Format cents in accounting style: negatives in parentheses, zero as a dash."""
    if cents == 0:
        return "-"
    text = format_amount(abs(cents), symbol)
    if cents < 0:
        return "(" + text + ")"
    return text


def percent_of(cents, percent):
    """Return percent (int, float or decimal string) of cents, rounded half-up."""
    rate = Fraction(str(percent))
    return _div_half_up(cents * rate.numerator, rate.denominator * 100)


def _largest_remainder(amount, ratios):
    """Allocate a non-negative amount by ratios, leftover cents to largest remainders."""
    weight = sum(ratios)
    shares = [amount * ratio // weight for ratio in ratios]
    remainders = [amount * ratio % weight for ratio in ratios]
    leftover = amount - sum(shares)
    order = sorted(range(len(ratios)), key=lambda i: (-remainders[i], i))
    for index in order[:leftover]:
        shares[index] += 1
    return shares


def allocate(cents, ratios):
    """Split cents proportionally to ratios so that the parts sum exactly to cents."""
    if not ratios:
        raise ValueError("at least one ratio is required")
    if any(ratio < 0 for ratio in ratios):
        raise ValueError("ratios must not be negative")
    if sum(ratios) == 0:
        raise ValueError("ratios must not all be zero")
    shares = _largest_remainder(abs(cents), list(ratios))
    if cents < 0:
        return [-share for share in shares]
    return shares


def split_evenly(cents, parts):
    """Split cents into parts that differ by at most one cent, larger parts first."""
    if parts < 1:
        raise ValueError("parts must be at least 1")
    return allocate(cents, [1] * parts)
