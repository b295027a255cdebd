"""The file editor (`str_replace_editor`: view, create, str_replace, insert) over an Environment's
read_file / write_file: every refusal is an observation the model can act on, never an exception."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

from protege.env.base import Environment

EDITOR_COMMANDS = ("view", "create", "str_replace", "insert")


VIEW_CHAR_LIMIT = 20_000  # a file view longer than this is cut; view_range shows the rest


@dataclass(frozen=True)
class EditorOptions:
    """How the editor presents files and matches edits (set from AgentConfig)."""

    view_window: int = -1  # lines a `view` without view_range shows (SWE-agent's window); -1 = whole file
    indent_tolerant: bool = False  # str_replace: if old_str is not verbatim, accept a unique match up to indentation
    edit_context: int = 4  # lines shown around an edit in the snippet that confirms it


def numbered(text: str, start: int = 1) -> str:
    """Lines with right-aligned numbers, as `cat -n` prints them.

    >>> numbered("a\\nb", start=9).split("\\n")
    ['     9\\ta', '    10\\tb']
    """
    return "\n".join(f"{i:6}\t{line}" for i, line in enumerate(text.split("\n"), start))


def _snippet(content: str, first_line: int, n_lines: int, path: str, context: int = 4) -> str:
    lines = content.split("\n")
    lo = max(0, first_line - 1 - context)
    hi = min(len(lines), first_line - 1 + n_lines + context)
    return (f"The file {path} has been edited. Here is a snippet of the result:\n"
            f"{numbered(chr(10).join(lines[lo:hi]), lo + 1)}\nReview the change and edit again if needed.")


def _read(env: Environment, path: str) -> str:
    try:
        return env.read_file(path)
    except FileNotFoundError:
        raise EditorError(f"The path {path} does not exist.{_similar_paths(env, path)}") from None
    except IsADirectoryError:
        raise EditorError(f"The path {path} is a directory; only `view` works on directories.") from None
    except UnicodeDecodeError:
        raise EditorError(f"The file {path} is not text.") from None
    except OSError as exc:  # a link, a FIFO, a loop, a name too long...: the model's mistake, said as such
        raise EditorError(_os_message(exc, path)) from None


def _os_message(exc: OSError, path: str) -> str:
    return exc.strerror and f"{path}: {exc.strerror}" or str(exc) or f"{path}: {type(exc).__name__}"


def _similar_paths(env: Environment, path: str) -> str:
    """' Similar files: a.py, b.py.' for a path that does not exist (from `git ls-files` in the
    sandbox), or ''. A wrong guess is then corrected by the tool, as a shell's `ls` would."""
    import difflib

    listed = env.run("git ls-files", timeout_s=30)
    files = listed.output.split("\n") if listed.exit_code == 0 else []
    name = path.rstrip("/").rsplit("/", 1)[-1]
    close = difflib.get_close_matches(path, files, n=3, cutoff=0.5)
    close += [f for f in files if name and f.rsplit("/", 1)[-1] == name and f not in close]
    return f" Similar files: {', '.join(close[:3])}." if close else ""


class EditorError(Exception):
    """A editor command that cannot be carried out; its message is the observation."""


def _is_dir(env: Environment, path: str) -> bool:
    return env.run(f"test -d {shlex.quote(path)}", timeout_s=30).exit_code == 0


def editor(env: Environment, args: dict[str, Any], options: EditorOptions = EditorOptions()) -> str:
    """Run one validated str_replace_editor call; returns the observation (never raises for
    bad input: errors become the observation text)."""
    try:
        return _editor(env, args, options)
    except EditorError as exc:
        return f"Error: {exc}"


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def match_modulo_indent(content: str, old: str) -> tuple[int, int, str] | None:
    """Where `old` occurs in `content` when leading whitespace is ignored line by line: the
    (start, end) character span of the unique match and the indentation to add to each line
    of a replacement; None when there is no match or more than one.

    >>> match_modulo_indent("def f(x):\\n    return x + 1\\n", "return x + 1")
    (10, 26, '    ')
    >>> match_modulo_indent("a = 1\\n  a = 1\\n", "a = 1") is None  # two matches: ambiguous
    True
    """
    want = [ln.strip() for ln in old.strip("\n").split("\n")]
    if not any(want):
        return None
    lines = content.split("\n")
    hits = [i for i in range(len(lines) - len(want) + 1)
            if all(lines[i + j].strip() == w for j, w in enumerate(want))]
    if len(hits) != 1:
        return None
    i = hits[0]
    start = sum(len(ln) + 1 for ln in lines[:i])
    end = start + sum(len(ln) + 1 for ln in lines[i:i + len(want)]) - 1
    return start, end, _indent(lines[i])


def _reindent(new: str, old_first: str, base: str) -> str:
    """`new` moved from the indentation of old_str's first line to `base` (relative indents kept).

    >>> _reindent("if x:\\n  y = 1", "if x:", "    ")
    '    if x:\\n      y = 1'
    """
    drop = _indent(old_first)
    out = []
    for ln in new.strip("\n").split("\n"):
        body = ln[len(drop):] if ln.startswith(drop) else ln.lstrip()
        out.append(base + body if body.strip() else "")
    return "\n".join(out)


def _editor(env: Environment, args: dict[str, Any], options: EditorOptions = EditorOptions()) -> str:
    command, path = args["command"], args["path"]
    if command == "view":
        return _view(env, path, args.get("view_range"), options)
    if command == "create":
        return _create(env, path, args["file_text"])
    content = _read(env, path)
    if command == "str_replace":
        return _str_replace(env, path, content, args["old_str"], args.get("new_str", ""), options)
    return _insert(env, path, content, args["insert_line"], args["new_str"], options)


def _view(env: Environment, path: str, view_range: list[int] | None, options: EditorOptions) -> str:
    if _is_dir(env, path):
        result = env.run(f"find {shlex.quote(path)} -maxdepth 2 -not -path '*/.*' | sort", timeout_s=30)
        return f"Files and directories in {path}, two levels deep (hidden ones left out):\n{result.observation()}"
    content = _read(env, path)
    start, lines = 1, content.split("\n")
    if view_range:
        first, last = view_range
        if not 1 <= first <= len(lines) or (last != -1 and not first <= last):
            raise EditorError(f"invalid view_range {[first, last]}: the file has {len(lines)} lines; "
                              "use 1 <= first <= last, or last = -1 for the end.")
        start, lines = first, lines[first - 1:None if last == -1 else last]
    more = ""
    if not view_range and 0 < options.view_window < len(lines):
        more = (f"\n[lines 1-{options.view_window} of {len(lines)}: "
                "use view_range [first, last] to see the rest]")
        lines = lines[:options.view_window]
    text = numbered("\n".join(lines), start)
    if len(text) > VIEW_CHAR_LIMIT:
        text = text[:VIEW_CHAR_LIMIT] + "\n[file view truncated: use view_range to see the rest]"
    return f"Here is {path} (with line numbers):\n{text}{more}"


def _create(env: Environment, path: str, file_text: str) -> str:
    try:
        env.read_file(path)
        exists = True
    except (FileNotFoundError, IsADirectoryError):
        exists = _is_dir(env, path)
    except UnicodeDecodeError:
        exists = True
    except OSError as exc:
        raise EditorError(_os_message(exc, path)) from None
    if exists:
        raise EditorError(f"{path} already exists; `create` does not overwrite. "
                          "Use `str_replace` or `insert` to edit it.")
    _write(env, path, file_text)
    return f"File created at {path}."


def _str_replace(env: Environment, path: str, content: str, old: str, new: str, options: EditorOptions) -> str:
    if not old:
        raise EditorError("old_str is empty; give the exact text to replace.")
    if old == new:
        raise EditorError("No replacement was performed: new_str is the same as old_str; "
                          "put the corrected text in new_str.")
    count = content.count(old)
    if count == 0:
        loose = match_modulo_indent(content, old) if options.indent_tolerant else None
        if loose is None:
            raise EditorError(f"No replacement was performed: old_str did not appear verbatim in {path}"
                              f"{_why_no_match(content, old)}")
        lo, hi, base = loose
        old_first = old.strip("\n").split("\n")[0]
        updated = content[:lo] + _reindent(new, old_first, base) + content[hi:]
        _write(env, path, updated)
        note = ("[old_str matched only when indentation is ignored (the file's indentation was kept); "
                "copy lines exactly as `view` shows them]\n")
        return note + _snippet(updated, content.count("\n", 0, lo) + 1, new.count("\n") + 1, path,
                               options.edit_context)
    if count > 1:
        starts = [m.start() for m in re.finditer(re.escape(old), content)]
        lines = [content.count("\n", 0, s) + 1 for s in starts]
        raise EditorError(f"No replacement was performed: old_str occurs {count} times in {path} "
                          f"(lines {lines}). Include more surrounding lines to make it unique.")
    at = content.index(old)
    updated = content.replace(old, new, 1)
    _write(env, path, updated)
    return _snippet(updated, content.count("\n", 0, at) + 1, new.count("\n") + 1, path, options.edit_context)


def _insert(env: Environment, path: str, content: str, n: int, new_str: str, options: EditorOptions) -> str:
    lines = content.split("\n")
    n_lines = len(lines) - (1 if content.endswith("\n") else 0)
    if not 0 <= n <= n_lines:
        raise EditorError(f"invalid insert_line {n}: the file has {n_lines} lines; use 0..{n_lines}.")
    new_lines = new_str.rstrip("\n").split("\n")
    updated = "\n".join(lines[:n] + new_lines + lines[n:])
    _write(env, path, updated)
    return _snippet(updated, n + 1, len(new_lines), path, options.edit_context)


def _why_no_match(content: str, old: str) -> str:
    """Why old_str did not match: the closest line of the file, so the model can see the difference."""
    import difflib

    first = next((ln.strip() for ln in old.split("\n") if ln.strip()), "")
    lines = content.split("\n")
    close = difflib.get_close_matches(first, [ln.strip() for ln in lines], n=1, cutoff=0.6)
    if not close:
        return ". No line of the file is close to its first line: view the file and copy the text exactly."
    n = next(i for i, ln in enumerate(lines, 1) if ln.strip() == close[0])
    if len(old.strip().split("\n")) == 1 and close[0] == first:
        return f". Its text is on line {n} but the whitespace differs: copy the line exactly as `view` shows it."
    return f". The closest line is {n}: `{close[0]}`. Copy the text exactly as `view` shows it."


def _write(env: Environment, path: str, content: str) -> None:
    try:
        env.write_file(path, content)
    except OSError as exc:
        raise EditorError(f"cannot write {path}: {_os_message(exc, path)}") from None
