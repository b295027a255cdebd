import pytest

from ledger import (
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


def test_simple_interest_fraction_of_year():
    assert simple_interest(100000, 5, 73) == 1000


def test_simple_interest_full_year():
    assert simple_interest(250000, 4, 365) == 10000


def test_simple_interest_rounds_half_up():
    assert simple_interest(10, 5, 365) == 1


def test_simple_interest_rounds_down_below_half():
    assert simple_interest(9, 5, 365) == 0


def test_simple_interest_decimal_rate():
    assert simple_interest(12345, "3.5", 30) == 36


def test_simple_interest_custom_day_count():
    assert simple_interest(36000, 10, 90, days_per_year=360) == 900


def test_simple_interest_zero_days():
    assert simple_interest(100000, 5, 0) == 0


def test_simple_interest_rejects_negative_days():
    with pytest.raises(ValueError):
        simple_interest(100000, 5, -1)


def test_simple_interest_rejects_zero_day_count():
    with pytest.raises(ValueError):
        simple_interest(100000, 5, 10, days_per_year=0)


def test_simple_interest_rejects_negative_rate():
    with pytest.raises(ValueError):
        simple_interest(100000, -1, 10)


def test_compound_amount_annual():
    assert compound_amount(100000, 5, 2, periods_per_year=1) == 110250


def test_compound_amount_monthly():
    assert compound_amount(100000, 12, 1) == 112683


def test_compound_amount_zero_years():
    assert compound_amount(100000, 12, 0) == 100000


def test_compound_interest_quarterly():
    assert compound_interest(100000, 6, 2, periods_per_year=4) == 12649


def test_compound_interest_zero_rate():
    assert compound_interest(100000, 0, 5) == 0


def test_compound_rejects_negative_years():
    with pytest.raises(ValueError):
        compound_amount(100000, 5, -1)


def test_compound_rejects_zero_periods():
    with pytest.raises(ValueError):
        compound_amount(100000, 5, 1, periods_per_year=0)


def test_monthly_payment_one_year():
    assert monthly_payment(100000, 6, 12) == 8607


def test_monthly_payment_thirty_year_mortgage():
    assert monthly_payment(20000000, 6, 360) == 119910


def test_monthly_payment_single_month():
    assert monthly_payment(100000, 12, 1) == 101000


def test_monthly_payment_zero_rate_rounds_up():
    assert monthly_payment(100000, 0, 3) == 33334


def test_monthly_payment_zero_rate_exact():
    assert monthly_payment(120000, 0, 12) == 10000


def test_monthly_payment_rejects_zero_principal():
    with pytest.raises(ValueError):
        monthly_payment(0, 6, 12)


def test_monthly_payment_rejects_zero_months():
    with pytest.raises(ValueError):
        monthly_payment(100000, 6, 0)


def test_schedule_first_row():
    assert amortization_schedule(100000, 6, 12)[0] == Installment(1, 8607, 500, 8107, 91893)


def test_schedule_second_row():
    assert amortization_schedule(100000, 6, 12)[1] == (2, 8607, 459, 8148, 83745)


def test_schedule_last_row_clears_balance():
    assert amortization_schedule(100000, 6, 12)[-1] == (12, 8603, 43, 8560, 0)


def test_schedule_length():
    assert len(amortization_schedule(100000, 6, 12)) == 12


def test_schedule_zero_rate():
    assert amortization_schedule(100000, 0, 3) == [
        (1, 33334, 0, 33334, 66666),
        (2, 33334, 0, 33334, 33332),
        (3, 33332, 0, 33332, 0),
    ]


def test_schedule_stops_early_when_paid_off():
    assert amortization_schedule(2, 0, 3) == [(1, 1, 0, 1, 1), (2, 1, 0, 1, 0)]


def test_schedule_rejects_negative_principal():
    with pytest.raises(ValueError):
        amortization_schedule(-100, 6, 12)


def test_remaining_balance_midway():
    assert remaining_balance(100000, 6, 12, 6) == 50746


def test_remaining_balance_after_one_payment():
    assert remaining_balance(100000, 6, 12, 1) == 91893


def test_remaining_balance_before_any_payment():
    assert remaining_balance(100000, 6, 12, 0) == 100000


def test_remaining_balance_after_all_payments():
    assert remaining_balance(100000, 6, 12, 12) == 0


def test_remaining_balance_after_early_payoff():
    assert remaining_balance(2, 0, 3, 3) == 0


def test_remaining_balance_rejects_too_many_payments():
    with pytest.raises(ValueError):
        remaining_balance(100000, 6, 12, 13)


def test_remaining_balance_rejects_negative_payments():
    with pytest.raises(ValueError):
        remaining_balance(100000, 6, 12, -1)


def test_total_interest():
    assert total_interest(100000, 6, 12) == 3280


def test_total_interest_zero_rate():
    assert total_interest(100000, 0, 3) == 0


def test_payoff_months_matches_schedule():
    assert payoff_months(100000, 6, 8607) == 12


def test_payoff_months_zero_rate_partial_last():
    assert payoff_months(100000, 0, 30000) == 4


def test_payoff_months_exact_division():
    assert payoff_months(90000, 0, 30000) == 3


def test_payoff_months_rejects_payment_equal_to_interest():
    with pytest.raises(ValueError, match="does not cover the interest"):
        payoff_months(100000, 12, 1000)


def test_payoff_months_rejects_zero_principal():
    with pytest.raises(ValueError):
        payoff_months(0, 6, 1000)


def test_simple_interest_one_day_year():
    assert simple_interest(1000, 10, 1, days_per_year=1) == 100


def test_monthly_payment_one_cent_loan():
    assert monthly_payment(1, 0, 1) == 1


def test_schedule_overpayment_ends_early():
    assert amortization_schedule(5, 0, 4) == [(1, 2, 0, 2, 3), (2, 2, 0, 2, 1), (3, 1, 0, 1, 0)]


def test_payoff_months_one_cent_loan():
    assert payoff_months(1, 0, 1) == 1


def test_payoff_months_last_cent_needs_a_payment():
    assert payoff_months(100001, 0, 50000) == 3


def test_payoff_months_with_interest():
    assert payoff_months(100000, 12, 10000) == 11


def test_payoff_months_large_payment_with_interest():
    assert payoff_months(100000, 12, 50000) == 3


def test_payoff_months_gives_up_on_very_long_loans():
    with pytest.raises(ValueError, match="not repaid within 1200 months"):
        payoff_months(100000000, 12, 1000001)
