"""Small bookkeeping library with money as integer cents."""

from .accounts import ACCOUNT_KINDS, Ledger, is_balanced
from .loans import (
    Installment,
    amortization_schedule,
    compound_amount,
    compound_interest,
    monthly_payment,
    payoff_months,
    remaining_balance,
    simple_interest,
    total_interest,
)
from .money import (
    allocate,
    format_accounting,
    format_amount,
    parse_amount,
    percent_of,
    split_evenly,
)

__all__ = [
    "ACCOUNT_KINDS",
    "Installment",
    "Ledger",
    "allocate",
    "amortization_schedule",
    "compound_amount",
    "compound_interest",
    "format_accounting",
    "format_amount",
    "is_balanced",
    "monthly_payment",
    "parse_amount",
    "payoff_months",
    "percent_of",
    "remaining_balance",
    "simple_interest",
    "split_evenly",
    "total_interest",
]
