"""A gold patch as the editor calls that rebuild it exactly: the exact-edit hint level's content.

Every hunk shape becomes calls the editor accepts: a replacement, an insertion (anchored on a
neighbouring line, never an empty `old_str`), a deletion, several hunks (one call each, in file
order, each anchored on text that is unique in the file as it stands when the call is made),
whitespace-only and CRLF changes (line endings kept byte for byte), a file with no final newline,
a new file (`create`), a deleted or renamed file (`bash`). `replay` applies the calls to file
contents the way the editor does, so a property test can check that they give the gold result.
Pure functions."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass
class Hunk:
    old_start: int  # the first old line's number (1-based; the line before an insertion into nothing)
    old: list[str]  # lines of the old side, each with its own line ending ("" on a last line without one)
    new: list[str]


@dataclass
class FileDiff:
    old_path: str | None  # None: the file is new
    new_path: str | None  # None: the file is deleted
    hunks: list[Hunk] = field(default_factory=list)
    binary: bool = False

    @property
    def path(self) -> str:
        return self.new_path or self.old_path or ""


def _name(raw: str) -> str | None:
    name = raw.split("\t")[0].strip()
    if name == "/dev/null":
        return None
    return name[2:] if name[:2] in ("a/", "b/") else name


def file_diffs(patch: str) -> list[FileDiff]:
    """The files of a unified git diff and their hunks, line endings kept exactly (a CRLF file's
    lines keep their "\\r"; a side that ends without a newline ends without one).

    >>> d = file_diffs("diff --git a/m.py b/m.py\\n--- a/m.py\\n+++ b/m.py\\n@@ -1 +1 @@\\n-x = 1\\n"
    ...                "\\\\ No newline at end of file\\n+x = 2\\n")
    >>> d[0].path, d[0].hunks[0].old, d[0].hunks[0].new
    ('m.py', ['x = 1'], ['x = 2\\n'])
    """
    files: list[FileDiff] = []
    cur: FileDiff | None = None
    last = ""  # the side(s) the last body line went to: "-", "+" or " ", for "\\ No newline"
    lines = patch.split("\n")
    i = 0
    while i < len(lines):
        raw = lines[i]
        if raw.startswith("diff --git "):
            m = re.match(r"diff --git a/(.*) b/(.*)$", raw)
            cur = FileDiff(m.group(1) if m else None, m.group(2) if m else None)
            files.append(cur)
        elif cur is None:
            pass
        elif raw.startswith("new file mode"):
            cur.old_path = None
        elif raw.startswith("deleted file mode"):
            cur.new_path = None
        elif raw.startswith("rename from "):
            cur.old_path = raw[len("rename from "):]
        elif raw.startswith("rename to "):
            cur.new_path = raw[len("rename to "):]
        elif raw.startswith(("Binary files", "GIT binary patch")):
            cur.binary = True
        elif raw.startswith("--- "):
            cur.old_path = _name(raw[4:])
        elif raw.startswith("+++ "):
            cur.new_path = _name(raw[4:])
        elif m := _HUNK.match(raw):
            hunk = Hunk(int(m.group(1)), [], [])
            cur.hunks.append(hunk)
            old_left, new_left = int(m.group(2) or 1), int(m.group(4) or 1)
            while i + 1 < len(lines) and (old_left > 0 or new_left > 0 or lines[i + 1].startswith("\\")):
                i += 1
                tag, text = lines[i][:1], lines[i][1:]
                if tag == "\\":  # "\\ No newline at end of file": the line before it has no ending
                    for side in ([hunk.old] if last == "-" else [hunk.new] if last == "+" else [hunk.old, hunk.new]):
                        side[-1] = side[-1][:-1]
                    continue
                if tag not in (" ", "", "-", "+"):
                    i -= 1
                    break
                last = tag or " "  # an empty body line is a context line whose space was stripped
                if last in " -":
                    hunk.old.append(text + "\n")
                    old_left -= 1
                if last in " +":
                    hunk.new.append(text + "\n")
                    new_left -= 1
        i += 1
    return files


def _ending(text: str) -> str:
    return "\r\n" if text.endswith("\r\n") else "\n" if text.endswith("\n") else ""


def _window(hunk: Hunk, lo: int, hi: int) -> tuple[str, str]:
    """The hunk's old and new text from old line `lo` (counted from the top, context only) to
    `hi` lines kept below the change, without the line ending both sides share at the end."""
    lead, trail = common_ends(hunk.old, hunk.new)
    a = hunk.old[lead - lo:len(hunk.old) - trail + hi]
    b = hunk.new[lead - lo:len(hunk.new) - trail + hi]
    old, new = "".join(a), "".join(b)
    end = _ending(old)
    if end and new.endswith(end):
        old, new = old[:-len(end)], new[:-len(end)]
    return old, new


def common_ends(a: list[str], b: list[str]) -> tuple[int, int]:
    """How many leading and trailing items (lines, tokens) two sequences share, not overlapping.

    >>> common_ends(["a", "b", "c"], ["a", "x", "c"]), common_ends(["a"], ["a", "a"])
    ((1, 1), (1, 0))
    """
    lead = 0
    while lead < min(len(a), len(b)) and a[lead] == b[lead]:
        lead += 1
    trail = 0
    while trail < min(len(a), len(b)) - lead and a[-1 - trail] == b[-1 - trail]:
        trail += 1
    return lead, trail


def _lines(text: str) -> list[str]:
    """Lines with their newline kept (only a newline ends a line, as in a diff; str.splitlines would
    also split on a carriage return, form feeds and Unicode separators)."""
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _hunk_call(path: str, hunk: Hunk, content: str | None, shift: int) -> tuple[dict[str, Any], str | None]:
    """One call for one hunk, with the least context that makes `old_str` unique in `content`
    (the file as it stands; without it, unique within the hunk's own old text), and the content
    after the call. Context grows by a line above, then one below, and so on (a line above first,
    as an insertion is anchored on the line it follows; a blank line is passed over for a line with
    text on the other side, as an `old_str` of a blank line is hard to copy); past the hunk's own context, from the
    file around the hunk's line (its header's number moved by `shift`, the lines earlier calls
    added)."""
    lead, trail = common_ends(hunk.old, hunk.new)
    seen = content if content is not None else "".join(hunk.old)
    if not any(line.strip() for line in hunk.old) and content is not None and not content.strip():
        # nothing to anchor on: the file is empty (or blank); insert at its top
        call = {"command": "insert", "path": path, "insert_line": 0, "new_str": "".join(hunk.new)}
        return call, "".join(hunk.new) + content
    lo = hi = 0
    while True:
        old, new = _window(hunk, lo, hi)
        if old.strip() and seen.count(old) == 1:
            break
        side = _next_side(hunk.old[lead - lo - 1] if lo < lead else None,
                          hunk.old[len(hunk.old) - trail + hi] if hi < trail else None, lo <= hi)
        if side == "above":
            lo += 1
        elif side == "below":
            hi += 1
        else:
            old, new = _beyond_hunk(hunk, content, shift) or (old, new)
            break
    call = {"command": "str_replace", "path": path, "old_str": old, "new_str": new}
    return call, content.replace(old, new, 1) if content is not None and seen.count(old) == 1 else content


def _next_side(above: str | None, below: str | None, above_first: bool) -> str | None:
    """Which context line joins the window next: the side that has one; of two, the one with text
    when the other is blank; else by turns.

    >>> _next_side("", "z = 3", True), _next_side("x = 1", "z = 3", True), _next_side(None, None, True)
    ('below', 'above', None)
    """
    if above is None or below is None:
        return "above" if above is not None else "below" if below is not None else None
    if bool(above.strip()) != bool(below.strip()):
        return "above" if above.strip() else "below"
    return "above" if above_first else "below"


def _beyond_hunk(hunk: Hunk, content: str | None, shift: int) -> tuple[str, str] | None:
    """(old, new) widened with the file's own lines around the hunk until `old` is unique in it;
    None without the file, or when the hunk is not where its header says."""
    if content is None:
        return None
    lines = _lines(content)
    at = max(0, hunk.old_start - 1 + shift) if hunk.old else hunk.old_start + shift
    if lines[at:at + len(hunk.old)] != hunk.old:
        return None
    a, b = at, at + len(hunk.old)
    while a > 0 or b < len(lines):
        a, b = max(0, a - 1), min(len(lines), b + 1)
        old = "".join(lines[a:b])
        if content.count(old) == 1:
            new = "".join(lines[a:at]) + "".join(hunk.new) + "".join(lines[at + len(hunk.old):b])
            end = _ending(old)
            return (old[:-len(end)], new[:-len(end)]) if end and new.endswith(end) else (old, new)
    return None


def edit_calls(patch: str, files: Mapping[str, str] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(tool, arguments) of the calls that turn the old files into the patch's new ones, in order.
    `files`: the current text of the files the patch changes, by path, so each `old_str` is unique
    where it is applied; a file missing there is anchored on its hunk alone.

    >>> diff = "diff --git a/m.py b/m.py\\n--- a/m.py\\n+++ b/m.py\\n@@ -1,2 +1,3 @@\\n x = 1\\n+y = 2\\n z = 3\\n"
    >>> edit_calls(diff)
    [('str_replace_editor', {'command': 'str_replace', 'path': 'm.py', 'old_str': 'x = 1', 'new_str': 'x = 1\\ny = 2'})]
    >>> edit_calls(diff, {"m.py": "x = 1\\nx = 1\\nz = 3\\n"})[0][1]["old_str"]  # `x = 1` twice: one line more
    'x = 1\\nz = 3'
    """
    calls: list[tuple[str, dict[str, Any]]] = []
    for fd in file_diffs(patch):
        if fd.binary:
            continue
        if fd.new_path is None:
            calls.append(("bash", {"command": f"rm -- {shlex.quote(fd.old_path or '')}"}))
            continue
        if fd.old_path is None:
            calls.append(("str_replace_editor", {"command": "create", "path": fd.new_path,
                                                 "file_text": "".join("".join(h.new) for h in fd.hunks)}))
            continue
        if fd.old_path != fd.new_path:
            folder = fd.new_path.rsplit("/", 1)[0] if "/" in fd.new_path else ""
            mkdir = f"mkdir -p -- {shlex.quote(folder)} && " if folder else ""
            calls.append(("bash", {"command": f"{mkdir}mv -- {shlex.quote(fd.old_path)} {shlex.quote(fd.new_path)}"}))
        content, shift = (files or {}).get(fd.old_path), 0
        for hunk in fd.hunks:
            call, content = _hunk_call(fd.new_path, hunk, content, shift)
            calls.append(("str_replace_editor", call))
            shift += len(hunk.new) - len(hunk.old)
    return calls


def replay(files: Mapping[str, str], calls: list[tuple[str, dict[str, Any]]]) -> dict[str, str] | str:
    """The files after the calls, applied as the editor applies them (verbatim, unique `old_str`);
    or why a call would be refused.

    >>> diff = "diff --git a/m.py b/m.py\\n--- a/m.py\\n+++ b/m.py\\n@@ -1,2 +1,3 @@\\n x = 1\\n+y = 2\\n z = 3\\n"
    >>> replay({"m.py": "x = 1\\nz = 3\\n"}, edit_calls(diff))
    {'m.py': 'x = 1\\ny = 2\\nz = 3\\n'}
    """
    out = dict(files)
    for tool, args in calls:
        if tool == "bash":
            words = shlex.split(args["command"].split("&&")[-1])
            if words[:2] == ["rm", "--"]:
                out.pop(words[2], None)
            elif words[:2] == ["mv", "--"]:
                out[words[3]] = out.pop(words[2], "")
            continue
        path, command = args["path"], args["command"]
        if command == "create":
            if path in out:
                return f"create: {path} already exists"
            out[path] = args["file_text"]
        elif command == "insert":
            text = out.get(path, "")
            lines = text.split("\n")
            out[path] = "\n".join(lines[:args["insert_line"]] + args["new_str"].rstrip("\n").split("\n")
                                  + lines[args["insert_line"]:])
        else:
            text, old = out.get(path), args["old_str"]
            if text is None:
                return f"str_replace: {path} does not exist"
            if not old or text.count(old) != 1:
                return f"str_replace: old_str occurs {text.count(old) if old else 0} times in {path}"
            out[path] = text.replace(old, args["new_str"], 1)
    return out
