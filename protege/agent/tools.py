"""The agent's tools: OpenAI function schemas, a parser from model output to one action, and
the file editor implemented over an Environment's read_file / write_file.

Accepted output formats, tried in this order:
1. structured ``tool_calls`` returned by an OpenAI-compatible endpoint (`Generation.tool_calls`);
2. Qwen / Hermes text: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``;
3. a fenced ```` ```bash ```` block, taken as a ``bash`` call.
Anything else becomes a `FormatError` whose observation restates the expected format.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from typing import Any

from protege.core.actions import TOOL_NAMES, Action, FormatError
from protege.core.protocols import Generation
from protege.env.base import Environment

EDITOR_COMMANDS = ("view", "create", "str_replace", "insert")
VIEW_CHAR_LIMIT = 20_000  # a file view longer than this is cut; view_range shows the rest


@dataclass(frozen=True)
class EditorOptions:
    """How the editor presents files and matches edits (set from AgentConfig)."""

    view_window: int = -1  # lines a `view` without view_range shows (SWE-agent's window); -1 = whole file
    indent_tolerant: bool = False  # str_replace: if old_str is not verbatim, accept a unique match up to indentation
    edit_context: int = 4  # lines shown around an edit in the snippet that confirms it


def _fn(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": properties, "required": required}}}


BASH = _fn("bash", "Run a bash command in the repository root. Each call starts a fresh shell "
           "(no state is kept between calls); no network; long-running commands are killed.",
           {"command": {"type": "string", "description": "The command to run."}}, ["command"])
EDITOR = _fn(
    "str_replace_editor",
    "View, create and edit files. `view` shows a file with line numbers (or lists a directory "
    "two levels deep); `create` writes a new file; `str_replace` replaces `old_str`, which must "
    "occur exactly once, by `new_str`; `insert` inserts `new_str` after line `insert_line`.",
    {"command": {"type": "string", "enum": list(EDITOR_COMMANDS)},
     "path": {"type": "string", "description": "File or directory, relative to the repository root."},
     "file_text": {"type": "string", "description": "Content of the new file (create)."},
     "old_str": {"type": "string", "description": "Exact text to replace (str_replace)."},
     "new_str": {"type": "string", "description": "Replacement (str_replace) or text to insert (insert)."},
     "insert_line": {"type": "integer", "description": "Insert after this line; 0 = at the top (insert)."},
     "view_range": {"type": "array", "items": {"type": "integer"},
                    "description": "[first, last] lines to view, 1-based; last = -1 for the end."}},
    ["command", "path"])
ASK_EXPERT = _fn("ask_expert", "Ask a senior engineer for advice when you are stuck. They see your "
                 "last few messages and your question, never act on the repository, and answer in "
                 "text. Calls per task are limited: ask specific questions.",
                 {"question": {"type": "string", "description": "A specific question."}}, ["question"])
SUBMIT = _fn("submit", "Finish: your changes to the repository (git diff) are the solution.", {}, [])
# One-line descriptions for a compact system prompt (AgentConfig.tool_text = "short"): a 135M
# protégé reads every prompt token at every step, so the prompt is ~60 tokens, not ~400.
SHORT_DESCRIPTIONS = {
    "bash": "run a shell command in the repository",
    "str_replace_editor": "view (path, view_range) or edit (str_replace: path, old_str, new_str) a file",
    "ask_expert": "ask a senior engineer a question when you are stuck",
    "submit": "finish; your changes are the solution",
}



def tool_schemas(ask_expert: bool = True) -> list[dict[str, Any]]:
    """The schemas offered to the policy; `ask_expert` is left out when no expert is available.

    >>> [t["function"]["name"] for t in tool_schemas(ask_expert=False)]
    ['bash', 'str_replace_editor', 'submit']
    """
    return [BASH, EDITOR, *([ASK_EXPERT] if ask_expert else []), SUBMIT]


def template_schemas(ask_expert: bool, tool_text: str = "full") -> list[dict[str, Any]]:
    """The schemas handed to the chat template (`tools=`): none when the system prompt itself
    describes the tools in one line each (tool_text "short"); SmolLM2's template otherwise adds
    ~700 tokens of JSON schema to every prompt.

    >>> len(template_schemas(True)), template_schemas(True, "short")
    (4, [])
    """
    return [] if tool_text == "short" else tool_schemas(ask_expert)




_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: Any) -> str:
    """Model or tool text made safe to store and tokenize: lone surrogates (invalid Unicode,
    e.g. from an endpoint's JSON escapes) become U+FFFD; None becomes "".

    >>> clean_text("ok " + chr(0xD800) + " x")
    'ok \ufffd x'
    >>> clean_text(None)
    ''
    """
    if not isinstance(text, str):
        return "" if text is None else str(text)
    return _SURROGATE.sub("\ufffd", text)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _json(text: str) -> Any:
    """JSON with NaN / Infinity refused (json.loads accepts them). A raw newline or tab inside a
    string is accepted (strict=False): models write multi-line new_str values that way, and
    the intent is unambiguous.

    >>> _json('{"new_str": "a' + chr(10) + 'b"}')["new_str"].splitlines()
    ['a', 'b']
    """
    return json.loads(text, parse_constant=_reject_constant, strict=False)


def _validate(name: Any, args: Any) -> Action | FormatError:
    """Check a tool name and its arguments.

    >>> _validate("bash", {"command": "ls"})
    Action(name='bash', arguments={'command': 'ls'}, call_id=None, ignored_calls=0)
    >>> _validate("bash", {}).message
    "tool 'bash' needs a non-empty string argument 'command'"
    >>> _validate("str_replace_editor", {"command": "insert", "path": "a", "new_str": "x", "insert_line": "3"}).arguments["insert_line"]
    3
    >>> _validate("rm", {}).message
    "unknown tool 'rm' (tools: bash, str_replace_editor, ask_expert, submit)"
    """
    if not isinstance(name, str):
        return FormatError("the tool name must be a string")
    if isinstance(args, str):
        try:
            args = _json(args) if args.strip() else {}
        except json.JSONDecodeError as exc:
            return FormatError(f"the arguments of {name!r} are not valid JSON ({exc.msg})")
        except (ValueError, RecursionError) as exc:
            return FormatError(f"the arguments of {name!r} are not valid JSON ({type(exc).__name__})")
    if args is None:
        args = {}
    if not isinstance(args, dict):
        return FormatError(f"the arguments of {name!r} must be a JSON object")
    if name not in TOOL_NAMES:
        return FormatError(f"unknown tool {name!r} (tools: {', '.join(TOOL_NAMES)})")
    required = {"bash": ["command"], "ask_expert": ["question"], "str_replace_editor": ["command", "path"],
                "submit": []}[name]
    for key in required:
        if not isinstance(args.get(key), str) or not args[key].strip():
            return FormatError(f"tool {name!r} needs a non-empty string argument {key!r}")
    if name != "str_replace_editor":
        return Action(name, {k: args[k] for k in required})
    # Only the editor's own arguments are kept: anything else the model sent is dropped.
    args = {k: args[k] for k in ("command", "path", "file_text", "old_str", "new_str", "insert_line", "view_range")
            if k in args}
    command = args["command"]
    if command not in EDITOR_COMMANDS:
        return FormatError(f"str_replace_editor command must be one of {', '.join(EDITOR_COMMANDS)}, got {command!r}")
    need = {"create": ["file_text"], "str_replace": ["old_str"], "insert": ["new_str", "insert_line"]}.get(command, [])
    for key in need:
        if key not in args:
            return FormatError(f"str_replace_editor {command} needs the argument {key!r}")
    for key in ("file_text", "old_str", "new_str"):
        if key in args and not isinstance(args[key], str):
            return FormatError(f"argument {key!r} must be a string")
    if "insert_line" in args:
        try:
            args["insert_line"] = int(args["insert_line"])
        except (TypeError, ValueError, OverflowError):
            return FormatError("argument 'insert_line' must be an integer")
    if args.get("view_range") is not None:
        vr = args["view_range"]
        if isinstance(vr, str):
            vr = re.findall(r"-?\d+", vr)
        try:
            vr = [int(v) for v in vr]
        except (TypeError, ValueError, OverflowError):
            vr = []
        if len(vr) != 2:
            return FormatError("argument 'view_range' must be two integers [first, last]")
        args["view_range"] = vr
    return Action(name, args)


_TOOL_CALL_RE = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)
_FENCE_RE = re.compile(r"```(?:bash|sh|shell)[ \t]*\n(.*?)```", re.S)


def _loads_call(blob: str) -> Any:
    """JSON of one call; tolerates a ```json fence and trailing text after the object."""
    blob = re.sub(r"^```(?:json)?\s*|\s*```$", "", blob.strip())
    try:
        return _json(blob)
    except json.JSONDecodeError:
        # raises JSONDecodeError if no object at all
        return json.JSONDecoder(parse_constant=_reject_constant).raw_decode(blob)[0]


def parse_structured(tool_calls: list[dict[str, Any]]) -> Action | FormatError:
    """The first of an endpoint's structured tool calls (OpenAI shape or flat name/arguments).

    >>> parse_structured([{"id": "c1", "type": "function",
    ...                    "function": {"name": "bash", "arguments": '{"command": "ls"}'}}]).call_id
    'c1'
    """
    call = tool_calls[0] if isinstance(tool_calls, list) and tool_calls else None
    fn = call.get("function", call) if isinstance(call, dict) else None
    if not isinstance(fn, dict):
        return FormatError("the structured tool call is malformed (expected {'function': {'name', 'arguments'}})")
    parsed = _validate(fn.get("name"), fn.get("arguments"))
    if isinstance(parsed, Action):
        parsed.call_id = call.get("id") if isinstance(call.get("id"), str) else None
        parsed.ignored_calls = len(tool_calls) - 1
    return parsed


def parse_text(text: str) -> Action | FormatError:
    """One action from model text.

    >>> parse_text('Let me look.\\n<tool_call>\\n{"name": "bash", "arguments": {"command": "ls"}}\\n</tool_call>').arguments
    {'command': 'ls'}
    >>> parse_text('<tool_call>{"name": "submit"}').name
    'submit'
    >>> parse_text("```bash\\ngrep -rn foo .\\n```").arguments
    {'command': 'grep -rn foo .'}
    >>> print(parse_text('<tool_call>{"name": "bash", "arguments": {"command": "ls"</tool_call>').message)
    the <tool_call> block is not valid JSON (Expecting ',' delimiter)
    >>> parse_text("I think the bug is in foo.").message
    'no tool call found'
    """
    blocks = _TOOL_CALL_RE.findall(text)
    if blocks:
        try:
            call = _loads_call(blocks[0])
        except json.JSONDecodeError as exc:
            return FormatError(f"the <tool_call> block is not valid JSON ({exc.msg})")
        except (ValueError, RecursionError) as exc:  # NaN / Infinity, or nesting too deep to parse
            return FormatError(f"the <tool_call> block is not valid JSON ({type(exc).__name__}: {str(exc)[:80]})")
        if not isinstance(call, dict) or "name" not in call:
            return FormatError('the <tool_call> block must be an object {"name": ..., "arguments": {...}}')
        parsed = _validate(call["name"], call.get("arguments", call.get("parameters")))
        if isinstance(parsed, Action):
            parsed.ignored_calls = len(blocks) - 1
        return parsed
    fences = _FENCE_RE.findall(text)
    if fences:
        parsed = _validate("bash", {"command": fences[0].strip()})
        if isinstance(parsed, Action):
            parsed.ignored_calls = len(fences) - 1
        return parsed
    return FormatError("no tool call found")


def parse_generation(gen: Generation) -> Action | FormatError:
    """Structured calls when the endpoint returned them, else the text. Whatever the model
    produced, the answer is an Action or a FormatError: a model output never raises here."""
    try:
        if gen.tool_calls:
            return parse_structured(gen.tool_calls)
        return parse_text(clean_text(gen.text))
    except (RecursionError, ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
        return FormatError(f"the tool call could not be read ({type(exc).__name__})")


def format_tool_call(name: str, arguments: dict[str, Any]) -> str:
    """The text form the parser accepts (what Qwen chat templates produce).

    >>> parse_text(format_tool_call("ask_expert", {"question": "why?"})).arguments
    {'question': 'why?'}
    """
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}) + "\n</tool_call>"


# ---- the editor -------------------------------------------------------------------------

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
        if _is_dir(env, path):
            result = env.run(f"find {shlex.quote(path)} -maxdepth 2 -not -path '*/.*' | sort", timeout_s=30)
            return f"Files and directories in {path}, two levels deep (hidden ones left out):\n{result.observation()}"
        content = _read(env, path)
        start, lines = 1, content.split("\n")
        if args.get("view_range"):
            first, last = args["view_range"]
            if not 1 <= first <= len(lines) or (last != -1 and not first <= last):
                raise EditorError(f"invalid view_range {[first, last]}: the file has {len(lines)} lines; "
                                  "use 1 <= first <= last, or last = -1 for the end.")
            start, lines = first, lines[first - 1:None if last == -1 else last]
        more = ""
        if not args.get("view_range") and 0 < options.view_window < len(lines):
            more = (f"\n[lines 1-{options.view_window} of {len(lines)}: "
                    "use view_range [first, last] to see the rest]")
            lines = lines[:options.view_window]
        text = numbered("\n".join(lines), start)
        if len(text) > VIEW_CHAR_LIMIT:
            text = text[:VIEW_CHAR_LIMIT] + "\n[file view truncated: use view_range to see the rest]"
        return f"Here is {path} (with line numbers):\n{text}{more}"
    if command == "create":
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
        _write(env, path, args["file_text"])
        return f"File created at {path}."
    content = _read(env, path)
    if command == "str_replace":
        old, new = args["old_str"], args.get("new_str", "")
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
    # insert
    lines = content.split("\n")
    n = args["insert_line"]
    n_lines = len(lines) - (1 if content.endswith("\n") else 0)
    if not 0 <= n <= n_lines:
        raise EditorError(f"invalid insert_line {n}: the file has {n_lines} lines; use 0..{n_lines}.")
    new_lines = args["new_str"].rstrip("\n").split("\n")
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


def trim_observation(text: str, max_chars: int) -> str:
    """An observation cut to max_chars (-1 = unchanged), keeping its head and its tail, where
    pytest puts the failures and the summary.

    >>> trim_observation("a" * 10 + "b" * 10, 12)
    'aaaa\\n[... 8 characters left out ...]\\nbbbbbbbb'
    """
    if max_chars < 0 or len(text) <= max_chars:
        return text
    head = max_chars // 3
    tail = max_chars - head
    return f"{text[:head]}\n[... {len(text) - head - tail} characters left out ...]\n{text[-tail:]}"


def _write(env: Environment, path: str, content: str) -> None:
    try:
        env.write_file(path, content)
    except OSError as exc:
        raise EditorError(f"cannot write {path}: {_os_message(exc, path)}") from None


# pytest's summary duration ("3 passed in 0.40s", "in 12.31s (0:00:12)"): the one part of an
# observation that changes from run to run; with it, two runs of a seed train different models.
_PYTEST_DURATION = re.compile(r"(\b\d+ (?:passed|failed|errors?|skipped|deselected|xfailed|xpassed|warnings?)\b[^\n]*?)"
                              r" in \d+(?:\.\d+)?s(?: \(\d+:\d\d:\d\d\))?")


def stable_output(text: str) -> str:
    """Command output with pytest's run-time durations replaced, so runs replay byte for byte.

    >>> stable_output("==== 1 failed, 2 passed in 0.40s ====\\n3 passed, 1 warning in 12.31s (0:00:12)")
    '==== 1 failed, 2 passed in [time]s ====\\n3 passed, 1 warning in [time]s'
    >>> stable_output("took 0.40s")
    'took 0.40s'
    """
    return _PYTEST_DURATION.sub(r"\1 in [time]s", text)


# Programs that wait for a terminal the sandbox does not have (stdin is /dev/null): run, they
# hold the whole batch's turn until the command timeout (a `view` in the recorded small run's
# evaluation: 60 s at each of 6 turns, then junk escape codes). Refused at once instead, with
# the tool to use, as SWE-agent's blocklist does: a convenience, not a boundary (what it misses,
# e.g. `bash -c vim`, still ends at the sandbox's command timeout).
INTERACTIVE_PROGRAMS = frozenset({"vi", "vim", "view", "vimdiff", "nvim", "nano", "pico", "emacs", "joe", "mcedit",
                                  "top", "htop", "watch"})
_COMMAND_WRAPPERS = frozenset({"sudo", "env", "command", "exec", "nohup", "nice", "time", "builtin"})
_SHELL_SEPARATORS = frozenset({";", "&&", "||", "|", "&", "(", ")", "{", "}", "|&", ";;"})


def interactive_program(command: str) -> str | None:
    """The interactive program a bash command would start (an editor, a pager that follows a
    file, a screen refresher), or None. Only command positions count, not arguments.

    >>> interactive_program("cd src && TERM=dumb vim a.py"), interactive_program("grep -n vim notes.txt")
    ('vim', None)
    >>> interactive_program("tail -f log.txt"), interactive_program("tail -n 5 log.txt | /usr/bin/view -")
    ('tail -f', 'view')
    """
    for line in command.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|(){}")
        lexer.whitespace_split = True
        try:
            tokens = list(lexer)
        except ValueError:  # unbalanced quotes: bash will say so
            return None
        at_start = True
        for i, token in enumerate(tokens):
            if token in _SHELL_SEPARATORS:
                at_start = True
            elif at_start and not (re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", token) or token in _COMMAND_WRAPPERS):
                # (VAR=value prefixes and wrappers are skipped: the program is the next word)
                program = token.rsplit("/", 1)[-1]
                if program in INTERACTIVE_PROGRAMS:
                    return program
                if program == "tail" and any(t in ("-f", "-F", "--follow") or t.startswith("--follow=")
                                             for t in tokens[i + 1:i + 4]):
                    return "tail -f"
                at_start = False
    return None


def execute(env: Environment, action: Action, timeout_s: float | None = None,
            options: EditorOptions = EditorOptions()) -> str:
    """Observation for a bash or editor action (ask_expert and submit are the loop's business)."""
    if action.name == "bash":
        if program := interactive_program(action.arguments["command"]):
            return (f"[`{program}` needs an interactive terminal, which this shell does not have; not run. "
                    "View files with str_replace_editor view and edit them with str_replace_editor str_replace.]")
        return stable_output(env.run(action.arguments["command"], timeout_s=timeout_s).observation()) or "[no output]"
    if action.name == "str_replace_editor":
        return editor(env, action.arguments, options)
    raise ValueError(f"execute() handles bash and str_replace_editor, not {action.name!r}")
