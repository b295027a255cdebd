"""Interest and loan amortisation computed exactly on integer cents."""

from collections import namedtuple
from fractions import Fraction

from .money import _div_half_up

MONTHS_PER_YEAR = 12
DAYS_PER_YEAR = 365
MAX_PAYOFF_MONTHS = 1200

Installment = namedtuple("Installment", "number payment interest principal balance")


def _rate(percent):
    """Convert a percentage (int, float or decimal string) to an exact fraction."""
    rate = Fraction(str(percent)) / 100
    if rate < 0:
        raise ValueError("interest rate must not be negative")
    return rate


def _round_fraction(value):
    """Round an exact fraction of cents to whole cents, halves away from zero."""
    return _div_half_up(value.numerator, value.denominator)


def simple_interest(principal, annual_percent, days, days_per_year=DAYS_PER_YEAR):
    """Return simple interest in cents on principal for a number of days."""
    if days < 0:
        raise ValueError("days must not be negative")
    if days_per_year <= 0:
        raise ValueError("days_per_year must be positive")
    return _round_fraction(principal * _rate(annual_percent) * days / days_per_year)


def _growth(rate, periods):
    """Return (1 + rate) ** periods as an exact fraction."""
    factor = Fraction(1)
    for _ in range(periods):
        factor *= 1 + rate
    return factor


def compound_amount(principal, annual_percent, years, periods_per_year=MONTHS_PER_YEAR):
    """Return principal plus compound interest after whole years, in cents."""
    if years < 0:
        raise ValueError("years must not be negative")
    if periods_per_year < 1:
        raise ValueError("periods_per_year must be at least 1")
    periodic = _rate(annual_percent) / periods_per_year
    return _round_fraction(principal * _growth(periodic, years * periods_per_year))


def compound_interest(principal, annual_percent, years, periods_per_year=MONTHS_PER_YEAR):
    """Return only the compound interest earned on principal, in cents."""
    amount = compound_amount(principal, annual_percent, years, periods_per_year)
    return amount - principal


def _check_loan(principal, months):
    if principal <= 0:
        raise ValueError("principal must be positive")
    if months < 1:
        raise ValueError("a loan needs at least one payment")


def monthly_payment(principal, annual_percent, months):
    """Return the fixed monthly payment in cents that repays principal over months."""
    _check_loan(principal, months)
    rate = _rate(annual_percent) / MONTHS_PER_YEAR
    if rate == 0:
        return -(-principal // months)
    growth = _growth(rate, months)
    return _round_fraction(principal * rate * growth / (growth - 1))


def _interest_for(balance, rate):
    """Interest in whole cents accrued on balance for one period."""
    return _round_fraction(balance * rate)


def amortization_schedule(principal, annual_percent, months):
    """Return the list of Installment rows; the last payment clears the balance."""
    _check_loan(principal, months)
    rate = _rate(annual_percent) / MONTHS_PER_YEAR
    payment = monthly_payment(principal, annual_percent, months)
    balance = principal
    rows = []
    for number in range(1, months + 1):
        interest = _interest_for(balance, rate)
        if number == months or payment - interest >= balance:
            paid = balance + interest
        else:
            paid = payment
        reduction = paid - interest
        balance -= reduction
        rows.append(Installment(number, paid, interest, reduction, balance))
        if balance == 0:
            break
    return rows


def remaining_balance(principal, annual_percent, months, paid):
    """Return the outstanding balance in cents after a number of payments."""
    if paid < 0 or paid > months:
        raise ValueError("payments made must be between 0 and %d" % months)
    if paid == 0:
        _check_loan(principal, months)
        return principal
    rows = amortization_schedule(principal, annual_percent, months)
    if paid > len(rows):
        return 0
    return rows[paid - 1].balance


def total_interest(principal, annual_percent, months):
    """Return the total interest in cents paid over the whole schedule."""
    rows = amortization_schedule(principal, annual_percent, months)
    return sum(row.interest for row in rows)


def payoff_months(principal, annual_percent, payment):
    """Return how many monthly payments of a fixed amount repay principal."""
    if principal <= 0:
        raise ValueError("principal must be positive")
    rate = _rate(annual_percent) / MONTHS_PER_YEAR
    balance, months = principal, 0
    while balance > 0:
        interest = _interest_for(balance, rate)
        if payment <= interest:
            raise ValueError("payment does not cover the interest")
        balance = balance + interest - payment
        months += 1
        if months > MAX_PAYOFF_MONTHS:
            raise ValueError("loan is not repaid within %d months" % MAX_PAYOFF_MONTHS)
    return months
