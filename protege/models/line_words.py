"""A one-line fix said in words, and the rule-based reader that rebuilds the fixed line from those
words and the wrong line: the check that a description-level hint carries the fix (issue 41).

The description names what is wrong (the tokens, where they are) and what they must become
(an operator by its name, a number, a name, the part that is missing, the two expressions that
swap), never the fixed line. The reader works on tokens, so "rebuilt" means the same tokens as the
fixed line (spacing aside). Pure functions."""

from __future__ import annotations

import re

from protege.models.exact_edits import common_ends
from protege.models.patch_reading import _OP_WORDS, _TOKEN, fix_words, token_hint

OP_WORDS = {**_OP_WORDS, "**": "a power", "@": "a matrix multiplication", "<<": "a left shift",
            ">>": "a right shift", "&": "a bitwise and", "|": "a bitwise or", "^": "a bitwise exclusive or",
            "~": "a bitwise inversion", "not": "a logical not", "is": "an identity test",
            "is not": "a non-identity test", "in": "a membership test", "not in": "a non-membership test",
            "=": "an assignment", "+=": "an in-place addition", "-=": "an in-place subtraction",
            "*=": "an in-place multiplication", "/=": "an in-place division", "->": "a return annotation"}
_WORD_OPS = {w: op for op, w in OP_WORDS.items()}
_ORDINAL = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth"]
_SEPARATORS = {",", "and", "or", "+", "-", "*", "/", "%", "==", "!=", "<", ">", "<=", ">=", "is", "in", "=", ":", "|", "&"}


def tokens(line: str) -> list[str]:
    return _TOKEN.findall(line)


def _find(seq: list[str], part: list[str], start: int = 0) -> list[int]:
    return [i for i in range(start, len(seq) - len(part) + 1) if seq[i:i + len(part)] == part]


def _text(part: list[str]) -> str:
    """Tokens back to code with the spacing a person would write (for quoting a part)."""
    out = ""
    for t in part:
        glue = not out or out[-1] in "([{.~" or t in ")]},.:([" or (t == "(" and re.match(r"\w", out[-1]))
        out += ("" if glue else " ") + t
    return out


def q(text: str) -> str:
    """A code fragment quoted as Markdown does, also when it holds backticks.

    >>> q("a + b"), q("see `x`")
    ('`a + b`', '`` see `x` ``')
    """
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _where(old: list[str], at: int, part: list[str]) -> str:
    """' (the second one)' when `part` occurs more than once in the line, else ''."""
    hits = _find(old, part)
    return f" (the {_ORDINAL[hits.index(at)]} one)" if len(hits) > 1 and hits.index(at) < len(_ORDINAL) else ""


def _swap(a: list[str], b: list[str]) -> tuple[list[str], str, list[str]] | None:
    """(X, separator, Y) when `a` is X sep Y and `b` is Y sep X."""
    for k, sep in enumerate(a):
        if sep in _SEPARATORS and 0 < k < len(a) - 1 and b == a[k + 1:] + [sep] + a[:k]:
            return a[:k], sep, a[k + 1:]
    return None


def describe(removed: str, added: str) -> str:
    """What is wrong in a one-line change and what it must become, in words; "" if nothing changes
    or if most of the line is rewritten (saying it would quote the fixed line).

    >>> describe("return a - b", "return a + b")
    'In that line, `-` is the wrong operator. The fix makes it an addition.'
    >>> describe("x = a ^ b", "x = a & b")
    'In that line, `^` is the wrong operator. The fix makes it a bitwise and.'
    >>> describe("return gcd(a % b, b)", "return gcd(b, a % b)")
    'In that line, `a % b` and `b` are in the wrong order. The fix swaps them.'
    >>> describe("r = k", "r = k - 1")
    'That line is missing a part after `k`. The missing part is `- 1`.'
    """
    old, new = tokens(removed), tokens(added)
    if old == new:
        return ""
    p, s = common_ends(old, new)
    gone, came = old[p:len(old) - s], new[p:len(new) - s]
    bundled = f"{token_hint(removed, added)} {fix_words(removed, added)}"
    if rebuild(removed, bundled) == new:
        return bundled  # the bundled mutations' phrasing, kept word for word where it is enough
    if len(came) == len(new) or len(came) >= max(4, 0.8 * len(new)):
        return ""  # the line is rewritten: quoting what it becomes would be the fixed line itself
    for dp in range(min(p, 3) + 1):  # a swap may share its first or last tokens with the line around it
        for ds in range(min(s, 3) + 1):
            if swap := _swap(old[p - dp:len(old) - s + ds], new[p - dp:len(new) - s + ds]):
                x, _, y = swap
                return (f"In that line, {q(_text(x))}{_where(old, p - dp, x)} and {q(_text(y))} are in the wrong "
                        "order. The fix swaps them.")
    if not gone:
        after = f" after {q(old[p - 1])}{_where(old, p - 1, [old[p - 1]])}" if p else " at its start"
        return f"That line is missing a part{after}. The missing part is {q(_text(came))}."
    what = f"{q(_text(gone))}{_where(old, p, gone)}"
    if not came:
        return f"In that line, {what} should not be there. The fix deletes that part and keeps the rest of the line."
    if "".join(came) in OP_WORDS and "".join(gone) in OP_WORDS:
        return f"In that line, {what} is the wrong operator. The fix makes it {OP_WORDS[''.join(came)]}."
    if len(came) == 1 and re.fullmatch(r"\d[\w.]*", came[0]) and len(gone) == 1:
        return f"In that line, {what} is the wrong number. The fix makes that number {came[0]}."
    return f"In that line, {what} is wrong. The fix puts {q(_text(came))} there instead."


_QUOTED = r"(`` .+? ``|`[^`]+`)"  # a fragment as `q` quotes it, one group


def _unq(quoted: str) -> str:
    """The fragment inside a `q` quote.

    >>> _unq("`a + b`"), _unq("`` see `x` ``")
    ('a + b', 'see `x`')
    """
    return quoted[3:-3] if quoted.startswith("`` ") else quoted[1:-1]


def rebuild(removed: str, description: str) -> list[str] | None:
    """The fixed line's tokens as a careful rule-based reader gets them from the wrong line and the
    description (either phrasing: `describe`'s or the bundled mutations'); None when it cannot.

    >>> rebuild("return gcd(a % b, b)", describe("return gcd(a % b, b)", "return gcd(b, a % b)"))
    ['return', 'gcd', '(', 'b', ',', 'a', '%', 'b', ')']
    >>> rebuild("if n < 0:", "In that line, `<` is the wrong operator. The fix makes it a less-than-or-equal comparison.")
    ['if', 'n', '<=', '0', ':']
    """
    old = tokens(removed)
    if m := re.search(_QUOTED + r"(?: \(the (\w+) one\))?(?:,| and) " + _QUOTED + r" are in the wrong order",
                      description):
        x, y = tokens(_unq(m.group(1))), tokens(_unq(m.group(3)))
        i = _locate(old, x, m.group(2))
        js = _find(old, y, i + len(x)) if i is not None else []
        if not js:
            return None
        j = js[0]
        return old[:i] + y + old[i + len(x):j] + x + old[j + len(y):]
    if m := re.search(r"missing a part(?: after " + _QUOTED + r"(?: \(the (\w+) one\))?| at its start)", description):
        part = re.search(r"The missing part is " + _QUOTED, description)
        if not part:
            return None
        at = _locate(old, [_unq(m.group(1))], m.group(2)) if m.group(1) is not None else -1
        return None if at is None else old[:at + 1] + tokens(_unq(part.group(1))) + old[at + 1:]
    m = re.search(r"In that line, ((?:(?:`` .+? ``|`[^`]+`) ?)+?)(?: after " + _QUOTED + r")?(?: \(the (\w+) one\))? "
                  r"(?:is|should)", description)
    if not m:
        return None
    gone = [t for quoted in re.findall(_QUOTED, m.group(1)) for t in tokens(_unq(quoted))]
    after = _unq(m.group(2)) if m.group(2) is not None else None
    at = _locate(old, gone, m.group(3), after=after)
    came = _came(gone, description)
    return None if at is None or came is None else old[:at] + came + old[at + len(gone):]


def _locate(old: list[str], part: list[str], ordinal: str | None, after: str | None = None) -> int | None:
    hits = _find(old, part)
    if after is not None:
        hits = [i for i in hits if i and old[i - 1] == after]
    if ordinal in _ORDINAL:
        k = _ORDINAL.index(ordinal)
        return hits[k] if k < len(hits) else None
    return hits[0] if hits else None


def _came(gone: list[str], text: str) -> list[str] | None:
    """What the wrong part becomes, from the fix's words."""
    if "deletes that part" in text:
        return []
    if m := re.search(r"The fix (?:puts|uses) " + _QUOTED, text):
        return tokens(_unq(m.group(1)))
    if m := re.search(r"The fix makes it (an? [\w -]+?)\.", text):
        op = _WORD_OPS.get(m.group(1))
        return tokens(op) if op else None
    if "opposite truth value" in text and gone in (["True"], ["False"]):
        return ["False" if gone == ["True"] else "True"]
    if m := re.search(r"The fix makes that number ([\w. -]+?)\.", text):
        word = m.group(1)
        try:
            x = float(gone[0]) if len(gone) == 1 else None
        except ValueError:
            x = None
        fixed = {"zero": "0", "one": "1"}.get(word)
        if fixed is None and x is not None and word in ("one smaller", "one larger"):
            y = x - 1 if word == "one smaller" else x + 1
            fixed = str(int(y)) if y == int(y) and "." not in gone[0] else str(y)
        return [fixed or word] if (fixed or re.fullmatch(r"\d[\w.]*", word)) else None
    return None
