"""Line wrapping, justification, indentation and truncation."""


def _chunks(word: str, width: int) -> list[str]:
    """Split a word into pieces no longer than ``width``."""
    return [word[i : i + width] for i in range(0, len(word), width)]


def wrap(text: str, width: int) -> list[str]:
    """Greedily wrap text into lines of at most ``width`` characters.

    Words longer than ``width`` are broken into several pieces.
    """
    if width < 1:
        raise ValueError(f"width must be positive, got {width}")
    lines: list[str] = []
    current: list[str] = []
    length = 0
    for word in text.split():
        for chunk in _chunks(word, width):
            if current and length + 1 + len(chunk) > width:
                lines.append(" ".join(current))
                current = []
                length = 0
            if current:
                length += 1
            current.append(chunk)
            length += len(chunk)
    if current:
        lines.append(" ".join(current))
    return lines


def fill(text: str, width: int) -> str:
    """Wrap text and join the lines with newlines."""
    return "\n".join(wrap(text, width))


def _justify_line(line: str, width: int) -> str:
    """Spread the words of a line so that it is exactly ``width`` long."""
    words = line.split(" ")
    gaps = len(words) - 1
    if gaps == 0:
        return line.ljust(width)
    spaces = width - sum(len(word) for word in words)
    base, extra = divmod(spaces, gaps)
    parts = []
    for i, word in enumerate(words[:-1]):
        pad = base + 1 if i < extra else base
        parts.append(word + " " * pad)
    parts.append(words[-1])
    return "".join(parts)


def justify(text: str, width: int) -> list[str]:
    """Wrap text and pad every line but the last to exactly ``width`` characters."""
    lines = wrap(text, width)
    if not lines:
        return []
    return [_justify_line(line, width) for line in lines[:-1]] + [lines[-1]]


def indent(text: str, prefix: str, skip_blank: bool = True) -> str:
    """Add ``prefix`` to every line; blank lines are left alone unless skip_blank is False."""
    result = []
    for line in text.split("\n"):
        if skip_blank and not line.strip():
            result.append(line)
        else:
            result.append(prefix + line)
    return "\n".join(result)


def _leading_spaces(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _common_margin(lines: list[str]) -> int:
    widths = [_leading_spaces(line) for line in lines if line.strip()]
    return min(widths) if widths else 0


def dedent(text: str) -> str:
    """Remove the common leading spaces of all non-blank lines; blank lines become empty."""
    lines = text.split("\n")
    margin = _common_margin(lines)
    return "\n".join(line[margin:] if line.strip() else "" for line in lines)


def truncate(text: str, limit: int, ellipsis: str = "...") -> str:
    """Shorten text to at most ``limit`` characters, ending with ``ellipsis`` when cut."""
    if limit < 0:
        raise ValueError(f"limit must be non-negative, got {limit}")
    if len(text) <= limit:
        return text
    if limit <= len(ellipsis):
        return ellipsis[:limit]
    return text[: limit - len(ellipsis)] + ellipsis


def truncate_words(text: str, max_words: int, ellipsis: str = "...") -> str:
    """Keep the first ``max_words`` words, appending ``ellipsis`` if any were dropped."""
    if max_words < 0:
        raise ValueError(f"max_words must be non-negative, got {max_words}")
    words = text.split()
    if len(words) <= max_words:
        return " ".join(words)
    return " ".join(words[:max_words]) + ellipsis
