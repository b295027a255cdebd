"""Version parsing and constraint resolution (">=1.2,<2.0" style)."""

_OPERATORS = ("~=", "==", "!=", ">=", "<=", ">", "<")


def parse_version(text):
    """Parse "1.2.3" into a tuple of integers."""
    parts = text.strip().split(".")
    if not all(part.isdigit() for part in parts):
        raise ValueError(f"invalid version {text!r}")
    return tuple(int(part) for part in parts)


def _compare_tuples(a, b):
    """Three-way compare of version tuples, padding the shorter with zeros."""
    width = max(len(a), len(b))
    a = a + (0,) * (width - len(a))
    b = b + (0,) * (width - len(b))
    if a < b:
        return -1
    if a > b:
        return 1
    return 0


def compare_versions(a, b):
    """Return -1, 0 or 1 as version string a is lower, equal or higher than b."""
    return _compare_tuples(parse_version(a), parse_version(b))


def _compatible_upper(target):
    """Exclusive upper bound for "~=": bump the second-to-last component."""
    if len(target) < 2:
        raise ValueError("'~=' needs a version with at least two components")
    prefix = target[:-1]
    return prefix[:-1] + (prefix[-1] + 1,)


def parse_constraint(text):
    """Parse a comma-separated constraint into (operator, version tuple) pairs."""
    clauses = []
    for raw in text.split(","):
        clause = raw.strip()
        if not clause or clause == "*":
            continue
        for op in _OPERATORS:
            if clause.startswith(op):
                clauses.append((op, parse_version(clause[len(op):])))
                break
        else:
            clauses.append(("==", parse_version(clause)))
    return clauses


def _satisfies_clause(version, op, target):
    cmp = _compare_tuples(version, target)
    if op == "==":
        return cmp == 0
    if op == "!=":
        return cmp != 0
    if op == ">=":
        return cmp >= 0
    if op == "<=":
        return cmp <= 0
    if op == ">":
        return cmp > 0
    if op == "<":
        return cmp < 0
    upper = _compatible_upper(target)
    return cmp >= 0 and _compare_tuples(version, upper) < 0


def satisfies(version, constraint):
    """True if the version string meets every clause of the constraint."""
    parsed = parse_version(version)
    return all(_satisfies_clause(parsed, op, target) for op, target in parse_constraint(constraint))


def resolve(available, constraint):
    """Highest available version meeting the constraint; ValueError if none does."""
    clauses = parse_constraint(constraint)
    best = None
    for candidate in available:
        parsed = parse_version(candidate)
        if not all(_satisfies_clause(parsed, op, target) for op, target in clauses):
            continue
        if best is None or _compare_tuples(parsed, parse_version(best)) > 0:
            best = candidate
    if best is None:
        raise ValueError(f"no version satisfies {constraint!r}")
    return best


def resolve_all(requirements, index):
    """Pick a version for every {package: constraint} from {package: [versions]}."""
    chosen = {}
    for package in sorted(requirements):
        if package not in index:
            raise KeyError(f"unknown package {package!r}")
        chosen[package] = resolve(index[package], requirements[package])
    return chosen
