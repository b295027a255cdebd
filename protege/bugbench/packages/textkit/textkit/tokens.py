"""Word and sentence tokenisation, counts and n-grams."""

_SENTENCE_END = ".!?"
_INNER_MARKS = "'-"
_ABBREVIATIONS = frozenset({"dr", "e.g", "etc", "i.e", "mr", "mrs", "ms", "prof", "vs"})


def words(text: str) -> list[str]:
    """Split text into words: runs of letters and digits, with inner ' or - kept."""
    result: list[str] = []
    current: list[str] = []
    for i, ch in enumerate(text):
        following = text[i + 1] if i + 1 < len(text) else ""
        inner = ch in _INNER_MARKS and len(current) > 0 and following.isalnum()
        if ch.isalnum() or inner:
            current.append(ch)
        elif current:
            result.append("".join(current))
            current = []
    if current:
        result.append("".join(current))
    return result


def word_count(text: str) -> int:
    """Number of words in text."""
    return len(words(text))


def word_frequencies(text: str, lowercase: bool = True) -> dict[str, int]:
    """Map each word to its count, in order of first appearance."""
    counts: dict[str, int] = {}
    for word in words(text):
        key = word.lower() if lowercase else word
        counts[key] = counts.get(key, 0) + 1
    return counts


def most_common(text: str, n: int) -> list[tuple[str, int]]:
    """The ``n`` most frequent lowercase words, ties broken alphabetically."""
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    ranked = sorted(word_frequencies(text).items(), key=lambda item: (-item[1], item[0]))
    return ranked[:n]


def average_word_length(text: str) -> float:
    """Mean number of characters per word (0.0 when there are no words)."""
    found = words(text)
    if not found:
        return 0.0
    return sum(len(word) for word in found) / len(found)


def ngrams(items: list[str], n: int) -> list[tuple[str, ...]]:
    """All runs of ``n`` consecutive items, as tuples."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    return [tuple(items[i : i + n]) for i in range(len(items) - n + 1)]


def char_ngrams(text: str, n: int) -> list[str]:
    """All substrings of length ``n``; a shorter non-empty text yields itself."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if 0 < len(text) < n:
        return [text]
    return [text[i : i + n] for i in range(len(text) - n + 1)]


def _is_abbreviation(text: str, start: int, stop: int) -> bool:
    """True if the period at ``stop`` ends a known abbreviation."""
    if text[stop] != ".":
        return False
    before = text[start:stop].split()
    if not before:
        return False
    last = before[-1].lower()
    return last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha())


def sentences(text: str) -> list[str]:
    """Split text into sentences ending in '.', '!' or '?', keeping the punctuation.

    Periods after known abbreviations and single-letter initials do not end a sentence.
    """
    result = []
    start = 0
    for i, ch in enumerate(text):
        if ch not in _SENTENCE_END:
            continue
        end = i + 1
        at_break = end == len(text) or text[end].isspace()
        if at_break and not _is_abbreviation(text, start, i):
            result.append(text[start:end].strip())
            start = end
    tail = text[start:].strip()
    if tail:
        result.append(tail)
    return result
