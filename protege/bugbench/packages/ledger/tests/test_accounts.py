import pytest

from ledger import ACCOUNT_KINDS, Ledger, is_balanced


def make_books():
    books = Ledger()
    books.open_account("cash", "asset")
    books.open_account("loan", "liability")
    books.open_account("capital", "equity")
    books.open_account("sales", "income")
    books.open_account("rent", "expense")
    return books


def trading_books():
    books = make_books()
    books.post("owner invests", [("cash", 100000), ("capital", -100000)])
    books.post("cash sale", [("cash", 25000), ("sales", -25000)])
    books.post("pay rent", [("rent", 8000), ("cash", -8000)])
    return books


def test_account_kinds():
    assert ACCOUNT_KINDS == ("asset", "liability", "equity", "income", "expense")


def test_is_balanced_true():
    assert is_balanced([("cash", 500), ("sales", -500)]) is True


def test_is_balanced_false_when_off_by_one():
    assert is_balanced([("cash", 500), ("sales", -499)]) is False


def test_is_balanced_needs_two_lines():
    assert is_balanced([("cash", 0)]) is False


def test_accounts_sorted():
    assert make_books().accounts() == ["capital", "cash", "loan", "rent", "sales"]


def test_accounts_filtered_by_kind():
    assert make_books().accounts("income") == ["sales"]


def test_kind_of():
    assert make_books().kind_of("loan") == "liability"


def test_kind_of_unknown_account():
    with pytest.raises(KeyError):
        make_books().kind_of("bank")


def test_open_account_rejects_unknown_kind():
    with pytest.raises(ValueError):
        Ledger().open_account("x", "revenue")


def test_open_account_rejects_duplicate():
    books = make_books()
    with pytest.raises(ValueError):
        books.open_account("cash", "asset")


def test_new_account_balance_is_zero():
    assert make_books().balance("cash") == 0


def test_post_returns_sequential_ids():
    books = make_books()
    books.post("first", [("cash", 100), ("capital", -100)])
    assert books.post("second", [("cash", 200), ("capital", -200)]) == 2


def test_post_rejects_unbalanced():
    with pytest.raises(ValueError):
        make_books().post("bad", [("cash", 100), ("capital", -99)])


def test_post_rejects_single_line():
    with pytest.raises(ValueError):
        make_books().post("bad", [("cash", 0)])


def test_post_rejects_zero_amount_line():
    with pytest.raises(ValueError):
        make_books().post("bad", [("cash", 100), ("rent", 0), ("capital", -100)])


def test_post_rejects_unknown_account():
    with pytest.raises(KeyError):
        make_books().post("bad", [("bank", 100), ("capital", -100)])


def test_rejected_post_changes_nothing():
    books = make_books()
    with pytest.raises(ValueError):
        books.post("bad", [("cash", 100), ("capital", -50)])
    assert books.balance("cash") == 0


def test_asset_balance_is_debit_minus_credit():
    assert trading_books().balance("cash") == 117000


def test_equity_balance_is_credit_normal():
    assert trading_books().balance("capital") == 100000


def test_expense_balance_is_debit_normal():
    assert trading_books().balance("rent") == 8000


def test_balance_of_unknown_account():
    with pytest.raises(KeyError):
        trading_books().balance("bank")


def test_transfer_moves_money():
    books = make_books()
    books.transfer("borrow", "cash", "loan", 5000)
    assert books.balance("loan") == 5000


def test_transfer_rejects_zero():
    with pytest.raises(ValueError):
        make_books().transfer("nothing", "cash", "loan", 0)


def test_transaction_lookup():
    assert trading_books().transaction(2) == ("cash sale", [("cash", 25000), ("sales", -25000)])


def test_transaction_lookup_last_id():
    assert trading_books().transaction(3)[0] == "pay rent"


def test_transaction_lookup_zero_id():
    with pytest.raises(KeyError):
        trading_books().transaction(0)


def test_transaction_lookup_past_end():
    with pytest.raises(KeyError):
        trading_books().transaction(4)


def test_reverse_restores_balance():
    books = trading_books()
    books.reverse(3)
    assert books.balance("rent") == 0


def test_reverse_default_memo():
    books = trading_books()
    new_id = books.reverse(2)
    assert books.transaction(new_id)[0] == "reversal of #2 cash sale"


def test_history_running_balance():
    assert trading_books().history("cash") == [(1, 100000, 100000), (2, 25000, 125000), (3, -8000, 117000)]


def test_history_credit_normal_account():
    assert trading_books().history("sales") == [(2, -25000, 25000)]


def test_trial_balance_rows():
    assert trading_books().trial_balance() == [
        ("capital", 0, 100000),
        ("cash", 117000, 0),
        ("loan", 0, 0),
        ("rent", 8000, 0),
        ("sales", 0, 25000),
    ]


def test_trial_totals_agree():
    assert trading_books().trial_totals() == (125000, 125000)


def test_total_by_kind():
    assert trading_books().total_by_kind("income") == 25000


def test_total_by_kind_rejects_unknown():
    with pytest.raises(ValueError):
        trading_books().total_by_kind("assets")


def test_net_income():
    assert trading_books().net_income() == 17000


def test_net_loss_is_negative():
    books = make_books()
    books.post("rent on credit", [("rent", 3000), ("loan", -3000)])
    assert books.net_income() == -3000


def test_close_period_moves_profit_to_equity():
    books = trading_books()
    books.close_period("capital")
    assert books.balance("capital") == 117000


def test_close_period_zeroes_income():
    books = trading_books()
    books.close_period("capital")
    assert books.balance("sales") == 0


def test_close_period_zeroes_expense():
    books = trading_books()
    books.close_period("capital")
    assert books.balance("rent") == 0


def test_close_period_lines():
    books = trading_books()
    txn_id = books.close_period("capital")
    assert books.transaction(txn_id) == ("closing entry", [("rent", -8000), ("sales", 25000), ("capital", -17000)])


def test_close_period_nothing_to_close():
    assert make_books().close_period("capital") is None


def test_close_period_requires_equity_account():
    with pytest.raises(ValueError):
        trading_books().close_period("cash")


def test_close_period_break_even_leaves_equity_alone():
    books = make_books()
    books.post("sale", [("cash", 5000), ("sales", -5000)])
    books.post("rent", [("rent", 5000), ("cash", -5000)])
    txn_id = books.close_period("capital")
    assert books.transaction(txn_id)[1] == [("rent", -5000), ("sales", 5000)]


def test_one_cent_debit_is_a_debit():
    books = make_books()
    books.post("penny", [("cash", 1), ("capital", -1)])
    assert books.trial_balance()[:2] == [("capital", 0, 1), ("cash", 1, 0)]


def test_transfer_one_cent():
    books = make_books()
    books.transfer("penny", "rent", "cash", 1)
    assert books.balance("cash") == -1


def test_transaction_lookup_first_id():
    assert trading_books().transaction(1)[0] == "owner invests"
