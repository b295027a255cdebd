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
from typing import Any

from protege.agent.editor import EDITOR_COMMANDS, EditorOptions, editor
from protege.core.actions import COLLABORATE, TOOL_NAMES, Action, FormatError
from protege.core.protocols import Generation
from protege.env.base import Environment


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
    return _validate_editor(args)


def _validate_editor(args: dict[str, Any]) -> Action | FormatError:
    """The editor's arguments: its command's required ones present, strings and integers as such."""
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
    return Action("str_replace_editor", args)


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


def parse_collaboration(text: str) -> Action | None:
    """The token interface's ask: an `ask_expert` action whose question is what the protégé wrote
    before `COLLABORATE`; None when the text holds no such token.

    >>> parse_collaboration("The test still fails and I do not see why. <<collaborate>>").arguments
    {'question': 'The test still fails and I do not see why.'}
    >>> parse_collaboration("<<collaborate>>").arguments["question"]
    '(no question: the protégé asked for help)'
    >>> parse_collaboration('<tool_call>{"name": "submit"}</tool_call>') is None
    True
    """
    if COLLABORATE not in text:
        return None
    before = text.split(COLLABORATE, 1)[0].strip()
    return Action("ask_expert", {"question": before or "(no question: the protégé asked for help)"})


def format_tool_call(name: str, arguments: dict[str, Any]) -> str:
    """The text form the parser accepts (what Qwen chat templates produce).

    >>> parse_text(format_tool_call("ask_expert", {"question": "why?"})).arguments
    {'question': 'why?'}
    """
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}) + "\n</tool_call>"


# ---- the editor -------------------------------------------------------------------------


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
