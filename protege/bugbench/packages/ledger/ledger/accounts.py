"""Double-entry ledger: accounts, balanced transactions and trial balances."""

ACCOUNT_KINDS = ("asset", "liability", "equity", "income", "expense")
DEBIT_NORMAL = ("asset", "expense")


def _line_total(lines):
    """Sum the signed amounts of (account, cents) lines."""
    total = 0
    for _, amount in lines:
        total += amount
    return total


def is_balanced(lines):
    """Return True when debits (positive) and credits (negative) cancel out."""
    return len(lines) >= 2 and _line_total(lines) == 0


def _natural_sign(kind):
    """Return +1 for debit-normal account kinds and -1 for credit-normal ones."""
    if kind in DEBIT_NORMAL:
        return 1
    return -1


class Ledger:
    """A set of named accounts and the balanced transactions posted to them.

    Amounts are integer cents; a positive line amount is a debit, a negative
    one a credit.
    """

    def __init__(self):
        self._kinds = {}
        self._totals = {}
        self._transactions = []

    def open_account(self, name, kind):
        """Create an account of the given kind with a zero balance."""
        if kind not in ACCOUNT_KINDS:
            raise ValueError("unknown account kind: %r" % kind)
        if name in self._kinds:
            raise ValueError("account already exists: %r" % name)
        self._kinds[name] = kind
        self._totals[name] = [0, 0]

    def accounts(self, kind=None):
        """Return account names in sorted order, optionally only those of one kind."""
        return sorted(n for n, k in self._kinds.items() if kind is None or k == kind)

    def kind_of(self, name):
        """Return the kind of a named account."""
        self._require(name)
        return self._kinds[name]

    def _require(self, name):
        if name not in self._kinds:
            raise KeyError("no such account: %r" % name)

    def _validate(self, lines):
        if len(lines) < 2:
            raise ValueError("a transaction needs at least two lines")
        for name, amount in lines:
            self._require(name)
            if amount == 0:
                raise ValueError("zero amount on account %r" % name)
        difference = _line_total(lines)
        if difference != 0:
            raise ValueError("transaction is unbalanced by %d cents" % difference)

    def post(self, memo, lines):
        """Record a balanced list of (account, cents) lines and return its id."""
        lines = [(name, amount) for name, amount in lines]
        self._validate(lines)
        for name, amount in lines:
            column = 0 if amount > 0 else 1
            self._totals[name][column] += abs(amount)
        self._transactions.append((memo, lines))
        return len(self._transactions)

    def transfer(self, memo, debit_account, credit_account, cents):
        """Post a two-line transaction moving cents from credit to debit account."""
        if cents <= 0:
            raise ValueError("transfer amount must be positive")
        return self.post(memo, [(debit_account, cents), (credit_account, -cents)])

    def transaction(self, txn_id):
        """Return (memo, lines) of a posted transaction by its id (starting at 1)."""
        if not 1 <= txn_id <= len(self._transactions):
            raise KeyError("no such transaction: %r" % txn_id)
        memo, lines = self._transactions[txn_id - 1]
        return memo, list(lines)

    def reverse(self, txn_id, memo=None):
        """Post a transaction that undoes txn_id and return the new id."""
        original_memo, lines = self.transaction(txn_id)
        if memo is None:
            memo = "reversal of #%d %s" % (txn_id, original_memo)
        return self.post(memo, [(name, -amount) for name, amount in lines])

    def _raw_balance(self, name):
        debits, credits = self._totals[name]
        return debits - credits

    def balance(self, name):
        """Return the balance of an account in its natural sign (credit-normal flipped)."""
        self._require(name)
        return _natural_sign(self._kinds[name]) * self._raw_balance(name)

    def history(self, name):
        """Return [(txn_id, cents, running_balance)] for every line touching name."""
        self._require(name)
        sign = _natural_sign(self._kinds[name])
        rows, running = [], 0
        for txn_id, (_, lines) in enumerate(self._transactions, start=1):
            for account, amount in lines:
                if account == name:
                    running += sign * amount
                    rows.append((txn_id, amount, running))
        return rows

    def trial_balance(self):
        """Return [(account, debit, credit)] rows with each balance in one column."""
        rows = []
        for name in self.accounts():
            raw = self._raw_balance(name)
            if raw > 0:
                rows.append((name, raw, 0))
            elif raw < 0:
                rows.append((name, 0, -raw))
            else:
                rows.append((name, 0, 0))
        return rows

    def trial_totals(self):
        """Return (total debits, total credits) of the trial balance."""
        debit_total = sum(row[1] for row in self.trial_balance())
        credit_total = sum(row[2] for row in self.trial_balance())
        return debit_total, credit_total

    def total_by_kind(self, kind):
        """Return the sum of natural-sign balances of all accounts of one kind."""
        if kind not in ACCOUNT_KINDS:
            raise ValueError("unknown account kind: %r" % kind)
        return sum(self.balance(name) for name in self.accounts(kind))

    def net_income(self):
        """Return income minus expenses."""
        return self.total_by_kind("income") - self.total_by_kind("expense")

    def close_period(self, equity_account, memo="closing entry"):
        """Move income and expense balances into an equity account; return id or None."""
        if self.kind_of(equity_account) != "equity":
            raise ValueError("closing account must be equity: %r" % equity_account)
        lines = []
        for name in self.accounts():
            raw = self._raw_balance(name)
            if self._kinds[name] in ("income", "expense") and raw != 0:
                lines.append((name, -raw))
        if not lines:
            return None
        net = self.net_income()
        if net != 0:
            lines.append((equity_account, -net))
        return self.post(memo, lines)
