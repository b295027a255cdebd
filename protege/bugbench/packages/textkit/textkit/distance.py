"""Edit distances, common prefixes/subsequences and similarity scores."""

from textkit.tokens import char_ngrams


def levenshtein(a: str, b: str) -> int:
    """Minimum number of single-character insertions, deletions and substitutions."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost))
        previous = current
    return previous[-1]


def hamming(a: str, b: str) -> int:
    """Number of positions at which two equal-length strings differ."""
    if len(a) != len(b):
        raise ValueError(f"lengths differ: {len(a)} != {len(b)}")
    return sum(1 for x, y in zip(a, b) if x != y)


def _prefix_length(a: str, b: str) -> int:
    limit = min(len(a), len(b))
    for i in range(limit):
        if a[i] != b[i]:
            return i
    return limit


def common_prefix(strings: list[str]) -> str:
    """Longest prefix shared by all strings ('' for an empty list)."""
    if not strings:
        return ""
    prefix = strings[0]
    for other in strings[1:]:
        prefix = prefix[: _prefix_length(prefix, other)]
        if not prefix:
            break
    return prefix


def common_suffix(strings: list[str]) -> str:
    """Longest suffix shared by all strings ('' for an empty list)."""
    return common_prefix([s[::-1] for s in strings])[::-1]


def _lcs_table(a: str, b: str) -> list[list[int]]:
    """table[i][j] is the LCS length of a[i:] and b[j:]."""
    rows, cols = len(a), len(b)
    table = [[0] * (cols + 1) for _ in range(rows + 1)]
    for i in range(rows - 1, -1, -1):
        for j in range(cols - 1, -1, -1):
            if a[i] == b[j]:
                table[i][j] = table[i + 1][j + 1] + 1
            else:
                table[i][j] = max(table[i + 1][j], table[i][j + 1])
    return table


def lcs_length(a: str, b: str) -> int:
    """Length of the longest common subsequence of two strings."""
    return _lcs_table(a, b)[0][0]


def longest_common_subsequence(a: str, b: str) -> str:
    """One longest common subsequence, preferring to skip characters of ``a`` on ties."""
    table = _lcs_table(a, b)
    i = j = 0
    out = []
    while i < len(a) and j < len(b):
        if a[i] == b[j]:
            out.append(a[i])
            i += 1
            j += 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return "".join(out)


def similarity(a: str, b: str) -> float:
    """1.0 minus the Levenshtein distance divided by the longer length."""
    longest = max(len(a), len(b))
    if longest == 0:
        return 1.0
    return 1.0 - levenshtein(a, b) / longest


def lcs_ratio(a: str, b: str) -> float:
    """Twice the LCS length over the total length (1.0 for two empty strings)."""
    total = len(a) + len(b)
    if total == 0:
        return 1.0
    return 2 * lcs_length(a, b) / total


def jaccard(a: str, b: str, n: int = 2) -> float:
    """Jaccard index of the sets of character n-grams of two strings."""
    left = set(char_ngrams(a, n))
    right = set(char_ngrams(b, n))
    if not left and not right:
        return 1.0
    return len(left & right) / len(left | right)


def closest(word: str, candidates: list[str], max_distance: int = -1) -> str | None:
    """Candidate with the smallest Levenshtein distance to ``word``; first wins ties.

    A non-negative ``max_distance`` rejects candidates farther away than that.
    """
    best = None
    best_distance = 0
    for candidate in candidates:
        d = levenshtein(word, candidate)
        if max_distance >= 0 and d > max_distance:
            continue
        if best is None or d < best_distance:
            best = candidate
            best_distance = d
    return best
