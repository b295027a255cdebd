import pytest

from ledger import allocate, format_accounting, format_amount, parse_amount, percent_of, split_evenly


def test_parse_whole_and_cents():
    assert parse_amount("12.34") == 1234


def test_parse_single_decimal_digit_is_tens_of_cents():
    assert parse_amount("1.5") == 150


def test_parse_integer_without_point():
    assert parse_amount("7") == 700


def test_parse_leading_point():
    assert parse_amount(".05") == 5


def test_parse_trailing_point():
    assert parse_amount("3.") == 300


def test_parse_negative_sign():
    assert parse_amount("-0.99") == -99


def test_parse_plus_sign_and_blanks():
    assert parse_amount("  +4.20 ") == 420


def test_parse_parentheses_mean_negative():
    assert parse_amount("(1.25)") == -125


def test_parse_rejects_unclosed_parenthesis():
    with pytest.raises(ValueError):
        parse_amount("(12.00")


def test_parse_thousands_separator():
    assert parse_amount("1,234,567.89") == 123456789


def test_parse_custom_separator():
    assert parse_amount("1 000.01", separator=" ") == 100001


def test_parse_three_digit_first_group():
    assert parse_amount("999,000") == 99900000


def test_parse_rejects_bad_grouping():
    with pytest.raises(ValueError):
        parse_amount("12,34")


def test_parse_rejects_long_first_group():
    with pytest.raises(ValueError):
        parse_amount("1234,567")


def test_parse_rejects_three_decimals():
    with pytest.raises(ValueError):
        parse_amount("1.234")


def test_parse_rejects_empty():
    with pytest.raises(ValueError):
        parse_amount("   ")


def test_parse_rejects_lone_point():
    with pytest.raises(ValueError):
        parse_amount(".")


def test_parse_rejects_letters():
    with pytest.raises(ValueError):
        parse_amount("12a.00")


def test_parse_rejects_letters_in_fraction():
    with pytest.raises(ValueError):
        parse_amount("12.x")


def test_format_small_amount():
    assert format_amount(5) == "0.05"


def test_format_zero():
    assert format_amount(0) == "0.00"


def test_format_three_digit_units_have_no_separator():
    assert format_amount(99999) == "999.99"


def test_format_thousands():
    assert format_amount(123456789) == "1,234,567.89"


def test_format_exact_thousand():
    assert format_amount(100000) == "1,000.00"


def test_format_negative_with_symbol():
    assert format_amount(-123456, symbol="$") == "-$1,234.56"


def test_format_custom_separator():
    assert format_amount(123456700, separator=".") == "1.234.567.00"


def test_format_show_plus_on_positive():
    assert format_amount(250, show_plus=True) == "+2.50"


def test_format_show_plus_on_one_cent():
    assert format_amount(1, show_plus=True) == "+0.01"


def test_format_show_plus_not_on_zero():
    assert format_amount(0, show_plus=True) == "0.00"


def test_format_accounting_negative():
    assert format_accounting(-150000, symbol="$") == "($1,500.00)"


def test_format_accounting_positive():
    assert format_accounting(42) == "0.42"


def test_format_accounting_zero_is_dash():
    assert format_accounting(0) == "-"


def test_percent_of_exact():
    assert percent_of(10000, 15) == 1500


def test_percent_of_rounds_half_up():
    assert percent_of(50, 1) == 1


def test_percent_of_rounds_down_below_half():
    assert percent_of(149, 1) == 1


def test_percent_of_rounds_up_above_half():
    assert percent_of(151, 1) == 2


def test_percent_of_decimal_string():
    assert percent_of(1999, "7.25") == 145


def test_percent_of_negative_rounds_away_from_zero():
    assert percent_of(-50, 1) == -1


def test_percent_of_float_rate():
    assert percent_of(1000, 12.5) == 125


def test_allocate_by_ratios():
    assert allocate(100, [1, 1, 1]) == [34, 33, 33]


def test_allocate_largest_remainder_wins():
    assert allocate(100, [1, 2]) == [33, 67]


def test_allocate_leftover_follows_remainder_not_share():
    assert allocate(100, [5, 1]) == [83, 17]


def test_allocate_exact_split():
    assert allocate(1000, [3, 7]) == [300, 700]


def test_allocate_keeps_total():
    assert sum(allocate(1001, [5, 3, 2, 7])) == 1001


def test_allocate_negative_amount():
    assert allocate(-100, [1, 2]) == [-33, -67]


def test_allocate_zero_ratio_gets_nothing():
    assert allocate(10, [0, 1, 1]) == [0, 5, 5]


def test_allocate_single_ratio():
    assert allocate(17, [4]) == [17]


def test_allocate_rejects_empty_ratios():
    with pytest.raises(ValueError):
        allocate(100, [])


def test_allocate_rejects_negative_ratio():
    with pytest.raises(ValueError):
        allocate(100, [2, -1])


def test_allocate_rejects_all_zero_ratios():
    with pytest.raises(ValueError):
        allocate(100, [0, 0])


def test_split_evenly_remainder_goes_first():
    assert split_evenly(10, 3) == [4, 3, 3]


def test_split_evenly_two_leftover_cents():
    assert split_evenly(11, 3) == [4, 4, 3]


def test_split_evenly_fewer_cents_than_parts():
    assert split_evenly(2, 4) == [1, 1, 0, 0]


def test_split_evenly_one_part():
    assert split_evenly(999, 1) == [999]


def test_split_evenly_rejects_zero_parts():
    with pytest.raises(ValueError):
        split_evenly(10, 0)
