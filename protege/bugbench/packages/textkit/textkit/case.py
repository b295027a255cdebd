"""Identifier case conversion, title casing and URL slugs."""

import unicodedata

_MINOR_WORDS = frozenset(
    {"a", "an", "and", "as", "at", "but", "by", "for", "in", "of", "on", "or", "the", "to"}
)


def _is_boundary(prev: str, cur: str, nxt: str) -> bool:
    """Return True if a new word starts at ``cur`` inside an identifier."""
    if cur.isupper() and (prev.islower() or prev.isdigit()):
        return True
    if prev.isupper() and cur.isupper() and nxt.islower():
        return True
    return False


def _flush(current: list[str], words: list[str]) -> None:
    if current:
        words.append("".join(current).lower())
        current.clear()


def _capitalize(word: str) -> str:
    return word[:1].upper() + word[1:]


def split_identifier(text: str) -> list[str]:
    """Split an identifier written in any common case style into lowercase words."""
    words: list[str] = []
    current: list[str] = []
    for i, ch in enumerate(text):
        if not ch.isalnum():
            _flush(current, words)
            continue
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if current and _is_boundary(text[i - 1], ch, nxt):
            _flush(current, words)
        current.append(ch)
    _flush(current, words)
    return words


def to_snake(text: str) -> str:
    """Convert an identifier to snake_case."""
    return "_".join(split_identifier(text))


def to_kebab(text: str) -> str:
    """Convert an identifier to kebab-case."""
    return "-".join(split_identifier(text))


def to_camel(text: str) -> str:
    """Convert an identifier to camelCase."""
    words = split_identifier(text)
    if not words:
        return ""
    return words[0] + "".join(_capitalize(word) for word in words[1:])


def to_pascal(text: str) -> str:
    """Convert an identifier to PascalCase."""
    return "".join(_capitalize(word) for word in split_identifier(text))


def to_title(text: str, minor_words: frozenset[str] = _MINOR_WORDS) -> str:
    """Title-case a phrase, keeping minor words lowercase except at either end."""
    words = text.split()
    last = len(words) - 1
    result = []
    for i, word in enumerate(words):
        lower = word.lower()
        if 0 < i < last and lower in minor_words:
            result.append(lower)
        else:
            result.append(_capitalize(lower))
    return " ".join(result)


def _ascii_fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return decomposed.encode("ascii", "ignore").decode("ascii")


def _truncate_slug(slug: str, max_length: int, separator: str) -> str:
    if max_length <= 0 or len(slug) <= max_length:
        return slug
    cut = slug[: max_length + 1].rfind(separator)
    if cut <= 0:
        return slug[:max_length]
    return slug[:cut]


def slugify(text: str, separator: str = "-", max_length: int = 0) -> str:
    """Lowercase ASCII slug; runs of other characters become one separator.

    A positive ``max_length`` cuts the slug at a word boundary when possible.
    """
    parts: list[str] = []
    current: list[str] = []
    for ch in _ascii_fold(text).lower():
        if ch.isalnum():
            current.append(ch)
        elif current:
            parts.append("".join(current))
            current = []
    if current:
        parts.append("".join(current))
    return _truncate_slug(separator.join(parts), max_length, separator)
