"""Text that model-controlled programs printed, made safe to store and to show in a terminal.

A command's output, a file's content or a test log can carry terminal control sequences:
colours, cursor moves that hide lines, or OSC 52, which sets the clipboard of whoever `cat`s
the file. Stored observations and logs keep the text and drop the control: escape sequences
are removed, and other control characters (C0 but tab, newline and carriage return; DEL; C1)
are written as visible `\\xNN` escapes.
"""

from __future__ import annotations

import re

# CSI (ESC [ ... final byte), OSC (ESC ] ... BEL or ST), DCS/SOS/PM/APC strings, and two-byte
# ESC sequences; the 8-bit forms (U+009B CSI, U+009D OSC, ...) too.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b[\]PX^_]|[\x9d\x90\x98\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]")
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def terminal_safe(text: str) -> str:
    """`text` without terminal control: escape sequences removed, other controls made visible.

    >>> terminal_safe("\\x1b[31mred\\x1b[0m ok\\x1b]52;c;aGk=\\x07 done\\x07\\x9b2J")
    'red ok done\\\\x07'
    >>> terminal_safe("tab\\tline\\r\\n")
    'tab\\tline\\r\\n'
    """
    if not text or not _CONTROLS.search(text):
        return text
    return _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", _ESCAPES.sub("", text))


def markdown_table(columns: list[str], rows: list[list]) -> str:
    """A GitHub markdown table; `|` in a cell is escaped, floats keep one decimal.

    >>> print(markdown_table(["a", "b"], [[1, 2.25], ["x|y", None]]))
    | a | b |
    |---|---|
    | 1 | 2.2 |
    | x\\|y |  |
    """
    def cell(v) -> str:
        text = "" if v is None else f"{v:.1f}" if isinstance(v, float) else str(v)
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return "\n".join([*lines, *("| " + " | ".join(cell(v) for v in row) + " |" for row in rows)])
