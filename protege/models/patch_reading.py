"""Reading a patch and a conversation the way the reference expert does: hunks and the function
they sit in, one-line changes token by token, the fix said in words, paths and functions an agent
mentioned, and the exact edits an expert reply spells out. Pure functions."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from protege.core.protocols import Message


@dataclass
class Change:
    """One contiguous run of removed/added lines in a unified diff."""

    path: str
    line: int  # first changed line in the new file (1-based)
    function: str  # enclosing def/class from the hunk header or context, "" if unknown
    removed: list[str]
    added: list[str]
    before: list[str]  # unchanged lines just above the change, nearest last
    after: list[str]  # unchanged lines just below


_HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+(\d+)(?:,(\d+))? @@ ?(.*)$")


_DEF = re.compile(r"^\s*(?:async\s+)?(def|class)\s+([A-Za-z_]\w*)")


def parse_patch(patch: str) -> list[Change]:
    """Contiguous changes of a unified diff, with their file, line and enclosing function.

    >>> c = parse_patch("--- a/m.py\\n+++ b/m.py\\n@@ -1,2 +1,2 @@ def f(x):\\n     y = 1\\n-    return x\\n+    return x + y\\n")
    >>> (c[0].path, c[0].line, c[0].function, c[0].removed, c[0].added, c[0].before)
    ('m.py', 2, 'f', ['    return x'], ['    return x + y'], ['    y = 1'])
    """
    changes: list[Change] = []
    path, new_line, function = "", 0, ""
    old_left = new_left = 0  # body lines still expected in the current hunk
    context: list[str] = []
    last: Change | None = None  # the latest change of this hunk, still collecting `after`
    for raw in patch.splitlines():
        if old_left <= 0 and new_left <= 0:  # between hunks: headers
            if raw.startswith(("--- ", "+++ ")):
                name = raw[4:].split("\t")[0]
                if name != "/dev/null":  # keep the old name when a file is deleted
                    path = name[2:] if name[:2] in ("a/", "b/") else name
            elif m := _HUNK.match(raw):
                old_left, new_line, new_left = int(m.group(1) or 1), int(m.group(2)), int(m.group(3) or 1)
                context, last = [], None
                header = _DEF.match(m.group(4).strip())
                function = header.group(2) if header else ""
            continue
        kind, line = (raw[:1] or " "), raw[1:]
        if kind in "-+":
            if last is None or last.after:
                last = Change(path, new_line, function, [], [], context[-3:], [])
                changes.append(last)
            (last.removed if kind == "-" else last.added).append(line)
            old_left -= kind == "-"
            new_left -= kind == "+"
            new_line += kind == "+"
        elif kind == " ":
            if last is not None and len(last.after) < 3:
                last.after.append(line)
            if d := _DEF.match(line):
                function = d.group(2)
            context.append(line)
            old_left, new_left, new_line = old_left - 1, new_left - 1, new_line + 1
    for change in changes:  # a def the fix adds names the place better than nothing
        for added in change.added:
            if not change.function and (d := _DEF.match(added)):
                change.function = d.group(2)
    return changes


_PATH = re.compile(r"(?<![\w/.-])(/?(?:[\w.-]+/)*[\w-]+\.(?:py|pyi|cfg|toml|ini|txt|rst|md|json|yaml|yml|c|h|js|ts))\b")


_KEYWORDS = set(__import__("keyword").kwlist) | {"self", "cls", "None", "True", "False", "print", "len", "str", "int"}


def one_line_change(patch: str) -> tuple[Change, str, str] | None:
    """(change, wrong line, fixed line) when the patch changes exactly one non-blank line, the
    line a pinpointed issue or a description-level hint quotes; else None."""
    changes = parse_patch(patch)
    if len(changes) != 1:
        return None
    removed = [ln for ln in changes[0].removed if ln.strip()]
    added = [ln for ln in changes[0].added if ln.strip()]
    if len(removed) != 1 or len(added) != 1:
        return None
    return changes[0], removed[0], added[0]


def context_paths(context: list[Message]) -> list[str]:
    """File paths the trajectory mentions, in order of first mention."""
    found: dict[str, None] = {}
    for msg in context:
        text = (msg.get("content") or "") + json.dumps(msg.get("tool_calls") or [])
        for path in _PATH.findall(text):
            found.setdefault(path.removeprefix("/testbed/").lstrip("/"), None)
    return list(found)


def context_functions(context: list[Message]) -> list[str]:
    found: dict[str, None] = {}
    for msg in context:
        for name in re.findall(r"\b(?:def|class)\s+([A-Za-z_]\w*)", msg.get("content") or ""):
            found.setdefault(name, None)
    return list(found)


def same_file(a: str, b: str) -> bool:
    return a == b or a.endswith("/" + b) or b.endswith("/" + a)


def names_in(lines: list[str]) -> set[str]:
    return set(re.findall(r"[A-Za-z_][\w.]*", "\n".join(lines))) - _KEYWORDS


_TOKEN = re.compile(r"\w+|==|!=|<=|>=|//|\*\*|->|[^\w\s]")


@dataclass(frozen=True)
class LineDiff:
    """The token-level difference of a one-line change, kept as spans of the written lines: the one
    reading of a change that the description hints, their fix words and the demonstrations' change
    thoughts all phrase (so they cannot disagree about which tokens changed).

    >>> d = LineDiff.of("return a - b", "return a + b"); d.gone, d.came, d.stretch()
    (['-'], ['+'], ('-', '+', 'a'))
    >>> d = LineDiff.of("x = f(a)-1", "x = f(a)+1"); d.gone, d.came
    (['-'], ['+'])
    >>> LineDiff.of("y = g(a, b)", "y = g(b, a)").swapped, LineDiff.of("x = 1", "x = 1").ops
    (True, [])
    """

    old_line: str
    new_line: str
    old: tuple[re.Match, ...]
    new: tuple[re.Match, ...]
    ops: list[tuple[str, int, int, int, int]]  # difflib opcodes that are not "equal"

    @classmethod
    def of(cls, removed: str, added: str) -> LineDiff:
        import difflib

        old, new = tuple(_TOKEN.finditer(removed)), tuple(_TOKEN.finditer(added))
        matcher = difflib.SequenceMatcher(a=[m.group() for m in old], b=[m.group() for m in new], autojunk=False)
        return cls(removed, added, old, new, [op for op in matcher.get_opcodes() if op[0] != "equal"])

    @property
    def old_tokens(self) -> list[str]:
        return [m.group() for m in self.old]

    @property
    def new_tokens(self) -> list[str]:
        return [m.group() for m in self.new]

    @property
    def gone(self) -> list[str]:
        return [m.group() for _, i1, i2, _, _ in self.ops for m in self.old[i1:i2]]

    @property
    def came(self) -> list[str]:
        return [m.group() for *_, j1, j2 in self.ops for m in self.new[j1:j2]]

    @property
    def swapped(self) -> bool:
        """The same tokens in another order."""
        return bool(self.ops) and sorted(self.old_tokens) == sorted(self.new_tokens)

    def stretch(self) -> tuple[str, str, str]:
        """(old text, new text) from the first to the last differing token as written in each line,
        and the old token just before that stretch ("" at the start of the line)."""
        i1, i2, j1, j2 = self.ops[0][1], self.ops[-1][2], self.ops[0][3], self.ops[-1][4]
        gone = self.old_line[self.old[i1].start():self.old[i2 - 1].end()] if i2 > i1 else ""
        came = self.new_line[self.new[j1].start():self.new[j2 - 1].end()] if j2 > j1 else ""
        return gone, came, self.old[i1 - 1].group() if i1 else ""


def token_hint(removed: str, added: str) -> str:
    """What is wrong in a one-line change, naming the wrong tokens but not the fix's code.

    >>> token_hint("return a - b", "return a + b")
    'In that line, `-` is the wrong operator.'
    >>> token_hint("a + b + c", "a + b - c")
    'In that line, `+` after `b` is the wrong operator.'
    >>> token_hint("if n < 0:", "if n <= 0:")
    'In that line, `<` is the wrong operator.'
    >>> token_hint("y = g(a, b)", "y = g(b, a)")
    'In that line, `a`, `b` are in the wrong order.'
    >>> token_hint("t = x", "t = x + 1")
    'That line is missing a part after `x` (an operator and a number).'
    """
    d = LineDiff.of(removed, added)
    if not d.ops:
        return ""
    gone, came, old, new = d.gone, d.came, d.old_tokens, d.new_tokens
    if d.swapped:
        moved = [a for a, b in zip(old, new) if a != b and re.match(r"\w", a)]
        return f"In that line, {', '.join(f'`{t}`' for t in dict.fromkeys(moved))} are in the wrong order."
    words = [t for t in gone if re.match(r"\w", t)]
    if gone:
        kw = ("and", "or", "not", "is", "in", "True", "False", "None")
        what = ("operator" if not words else "part" if len(words) < len(gone) else
                "number" if all(t.isdigit() for t in words) else
                "keyword" if all(t in kw for t in words) else "name" if len(words) == 1 else "part")
        k = next((i for i, (a, b) in enumerate(zip(old, new)) if a != b), 0)
        which = f" after `{old[k - 1]}`" if k and old.count(gone[0]) > 1 else ""
        return f"In that line, {' '.join(f'`{t}`' for t in gone)}{which} is the wrong {what}."
    k = next((i for i, (a, b) in enumerate(zip(old, new)) if a != b), len(old))
    after = f" after `{old[k - 1]}`" if k else ""
    kinds = ["an operator" if not re.match(r"\w", t) else "a number" if t.isdigit() else "a name" for t in came]
    return f"That line is missing a part{after} ({' and '.join(dict.fromkeys(kinds))})."


_OP_WORDS = {"+": "an addition", "-": "a subtraction", "*": "a multiplication", "/": "a true division",
             "//": "a floor division", "%": "a remainder", "<": "a strict less-than comparison",
             "<=": "a less-than-or-equal comparison", ">": "a strict greater-than comparison",
             ">=": "a greater-than-or-equal comparison", "==": "an equality test", "!=": "an inequality test",
             "and": "a logical and", "or": "a logical or"}


def fix_words(removed: str, added: str) -> str:
    """What the fix of a one-line change does, in words, not code: the description level's last
    clue. A reply that only says "`-` is the wrong operator" leaves a 135M protégé guessing among
    five operators (docs/LOG.md 2026-12-02); an expert would say which kind of operation it should be.

    >>> fix_words("return a - b", "return a + b")
    'The fix makes it an addition.'
    >>> fix_words("if n < 0:", "if n <= 0:")
    'The fix makes it a less-than-or-equal comparison.'
    >>> fix_words("k = n % 8", "k = n % 7"), fix_words("x = 1", "x = 0")
    ('The fix makes that number one smaller.', 'The fix makes that number zero.')
    >>> fix_words("for i in range(n - 1):", "for i in range(n):")
    'The fix deletes that part and keeps the rest of the line.'
    >>> fix_words("y = g(a, b)", "y = g(b, a)")
    'The fix swaps them.'
    >>> fix_words("t = x", "t = x + 1")
    ''
    """
    d = LineDiff.of(removed, added)
    gone, came = d.gone, d.came
    if d.swapped:
        return "The fix swaps them."
    if gone and not came:
        return "The fix deletes that part and keeps the rest of the line."
    if len(gone) != 1 or len(came) != 1:
        return ""
    a, b = gone[0], came[0]
    if b in _OP_WORDS and a in _OP_WORDS:
        return f"The fix makes it {_OP_WORDS[b]}."
    if {a, b} == {"True", "False"}:
        return "The fix uses the opposite truth value."
    try:
        x, y = float(a), float(b)
    except ValueError:
        return ""
    what = ("zero" if y == 0 else "one" if y == 1 and x == 0 else "one smaller" if y == x - 1 else
            "one larger" if y == x + 1 else "")
    return f"The fix makes that number {what}." if what else ""


_CALL_LINE = re.compile(r'^\{"name": "(?:str_replace_editor|bash)", "arguments": .*\}$', re.M)


def guidance_calls(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(tool, arguments) of every call an exact-edit reply spells out, in order.

    >>> guidance_calls('Then:' + chr(10) + '{"name": "bash", "arguments": {"command": "rm -- old.py"}}')
    [('bash', {'command': 'rm -- old.py'})]
    """
    calls = []
    for line in _CALL_LINE.findall(text):
        try:
            call = json.loads(line)
            calls.append((str(call["name"]), dict(call["arguments"])))
        except (ValueError, KeyError, TypeError):
            continue
    return calls


def guidance_edits(text: str) -> list[dict[str, Any]]:
    """The str_replace_editor arguments an exact-edit reply spells out, in order.

    >>> call = '{"name": "str_replace_editor", "arguments": {"command": "str_replace", "path": "m.py", '
    >>> call += '"old_str": "    return x", "new_str": "    return x + 1"}}'
    >>> guidance_edits("Short answer: make this call:" + chr(10) + call)[0]["new_str"]
    '    return x + 1'
    >>> guidance_edits("Look at `f` in `m.py`.")
    []
    """
    return [args for tool, args in guidance_calls(text) if tool == "str_replace_editor"]
