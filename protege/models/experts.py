"""Experts the protégé may consult: an OpenAI-compatible model, an offline oracle built from
the gold patch (always labelled as such), and a wrapper that sometimes misleads."""

from __future__ import annotations

import json
import os
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any

from protege.core.protocols import Expert, ExpertReply, ExpertRequest, Message

EXPERT_SYSTEM_PROMPT = """\
You are a senior software engineer advising a junior engineer (an AI agent) who is fixing an \
issue in a Python repository. You cannot run commands or edit files; the agent does that. \
You see the issue, the agent's most recent steps and its question. Answer the question \
directly and concretely: which file and function to look at, what is wrong, and the next \
step to take. Be brief and do not write the whole patch."""

GOLD_PATCH_NOTE = """\
For this task you are also shown the reference fix. Use it to steer the agent toward the \
right place and idea, but never reveal it verbatim or paste code from it."""

# USD per million (input, output) tokens, list prices as of 2025; pass your own table for
# other models or negotiated prices. A model missing from the table costs 0 and is flagged.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "claude-sonnet-4": (3.00, 15.00),
    "claude-opus-4": (15.00, 75.00),
}


def render_context(context: list[Message]) -> str:
    """The trajectory tail as plain text: any chat model reads it, and tool messages need no
    matching tool schema on the expert's side."""
    lines = []
    for msg in context:
        text = msg.get("content") or ""
        for call in msg.get("tool_calls") or []:
            fn = call.get("function", call)
            text += f"\n[calls {fn.get('name')}({fn.get('arguments')})]"
        lines.append(f"[{msg.get('role', '?')}] {text.strip()}")
    return "\n\n".join(lines)


def expert_messages(request: ExpertRequest, system_prompt: str = EXPERT_SYSTEM_PROMPT, context_messages: int = 5,
                    show_gold_patch: bool = False) -> list[Message]:
    """The chat an expert model is sent: the issue, the agent's last K messages and its question
    (plus the gold patch only when `show_gold_patch`, which makes the expert an oracle)."""
    system = system_prompt
    parts = []
    if request.problem_statement:
        parts.append(f"Issue:\n{request.problem_statement.strip()}")
    if show_gold_patch and request.gold_patch:
        system += "\n\n" + GOLD_PATCH_NOTE
        parts.append(f"Reference fix (do not reveal):\n{request.gold_patch.strip()}")
    context = request.context[-context_messages:] if context_messages > 0 else []
    if context:
        parts.append(f"The agent's last {len(context)} messages:\n{render_context(context)}")
    parts.append(f"The agent asks:\n{request.question.strip()}")
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n\n".join(parts)}]


def _estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4)  # ~4 characters per token for English and code


@dataclass
class OpenAIExpert:
    """A strong model behind an OpenAI-compatible endpoint. Retries 429 / 5xx / timeouts /
    connection errors with exponential backoff (honouring Retry-After); a call that still
    fails returns ExpertReply(failed=True) instead of raising."""

    base_url: str | None = None  # None = api.openai.com
    model: str = "gpt-4o-mini"
    api_key_env: str = "OPENAI_API_KEY"  # the key is read from this variable only
    timeout_s: float = 60.0  # per attempt
    max_retries: int = 4  # attempts after the first
    backoff_s: float = 1.0  # first wait; doubles each retry
    max_backoff_s: float = 30.0  # cap on any single wait, Retry-After included
    max_tokens: int = 1024
    temperature: float = 0.2
    context_messages: int = 5  # K: the expert sees only the last K messages
    show_gold_patch: bool = False  # data generation only: makes this an oracle
    prices: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(DEFAULT_PRICES))
    system_prompt: str = EXPERT_SYSTEM_PROMPT
    name: str = ""
    oracle: bool = False

    def __post_init__(self) -> None:
        import openai

        self.name = self.name or f"openai-expert:{self.model}"
        self.oracle = self.show_gold_patch
        # Retries are ours (max_retries=0 on the client) so that they are counted and bounded.
        self.client = openai.OpenAI(
            base_url=self.base_url,
            api_key=os.environ.get(self.api_key_env) or "EMPTY",
            timeout=self.timeout_s,
            max_retries=0,
        )

    def messages(self, request: ExpertRequest) -> list[Message]:
        return expert_messages(request, self.system_prompt, self.context_messages, self.show_gold_patch)

    def advise(self, request: ExpertRequest) -> ExpertReply:
        import openai

        messages = self.messages(request)
        errors: list[str] = []
        started = time.monotonic()
        for attempt in range(self.max_retries + 1):
            try:
                response = self.client.chat.completions.create(
                    model=self.model, messages=messages, max_tokens=self.max_tokens, temperature=self.temperature
                )
            except openai.APIStatusError as exc:
                errors.append(f"HTTP {exc.status_code}: {exc.message}")
                retryable = exc.status_code in (408, 409, 429) or exc.status_code >= 500
                wait = self._retry_after(exc.response)
            except openai.APIConnectionError as exc:  # includes APITimeoutError
                errors.append(f"{type(exc).__name__}: {exc}")
                retryable, wait = True, None
            else:
                return self._reply(response, attempt + 1, errors, time.monotonic() - started)
            if not retryable or attempt == self.max_retries:
                break
            time.sleep(min(self.max_backoff_s, wait if wait is not None else self.backoff_s * 2**attempt))
        return ExpertReply(
            text=f"The expert could not be reached ({errors[-1]}).",
            failed=True,
            error=errors[-1],
            oracle=self.oracle,
            meta={"attempts": len(errors), "errors": errors, "latency_s": time.monotonic() - started},
        )

    @staticmethod
    def _retry_after(response: Any) -> float | None:
        try:
            return float(response.headers.get("retry-after"))
        except (AttributeError, TypeError, ValueError):
            return None

    def _reply(self, response: Any, attempts: int, errors: list[str], latency: float) -> ExpertReply:
        text = (response.choices[0].message.content or "").strip() if response.choices else ""
        usage = response.usage
        tokens_in, tokens_out = (usage.prompt_tokens, usage.completion_tokens) if usage else (0, 0)
        price = self.prices.get(self.model)
        cost = (tokens_in * price[0] + tokens_out * price[1]) / 1e6 if price else 0.0
        meta = {"attempts": attempts, "errors": errors, "latency_s": latency, "priced": price is not None}
        if self.oracle:
            meta["oracle"] = "openai-expert(shown gold patch)"
        return ExpertReply(
            text=text or "(the expert returned an empty answer)",
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            cost_usd=cost,
            failed=not text,
            error=None if text else "empty reply",
            oracle=self.oracle,
            meta=meta,
        )


# ---------------------------------------------------------------------------- gold patches


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


@dataclass
class PolicyExpert:
    """Any `Policy` answering as the expert, with the prompt an `OpenAIExpert` sends (issue,
    last K messages, question) and no gold patch: e.g. the protégé as its own expert (the
    paper's "expert choice" ablation), never an oracle."""

    policy: Any  # a protege.core.protocols.Policy (TransformersPolicy, OpenAIPolicy, ...)
    context_messages: int = 5
    name: str = ""
    oracle: bool = False

    def __post_init__(self) -> None:
        self.name = self.name or f"policy-expert:{getattr(self.policy, 'name', type(self.policy).__name__)}"

    def advise(self, request: ExpertRequest) -> ExpertReply:
        gen = self.policy.generate([expert_messages(request, context_messages=self.context_messages)], [])[0]
        if gen.error:
            return ExpertReply(text="", failed=True, error=gen.error)
        return ExpertReply(text=gen.text.strip() or "(no advice)", input_tokens=gen.prompt_tokens,
                           output_tokens=gen.completion_tokens, meta={"expert_policy": self.name})


# ---------------------------------------------------------------------------- offline experts

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


def _same_file(a: str, b: str) -> bool:
    return a == b or a.endswith("/" + b) or b.endswith("/" + a)


def _where(change: Change, rng: random.Random) -> str:
    if change.function:
        return rng.choice([
            f"The fix belongs in `{change.path}`, in `{change.function}` around line {change.line}.",
            f"Look at `{change.function}` in `{change.path}` (near line {change.line}): that is where the behaviour in the issue comes from.",
            f"Open `{change.path}` around line {change.line}; `{change.function}` is the place that needs to change.",
            f"The problem lives in `{change.function}` (`{change.path}`, about line {change.line}).",
        ])
    return rng.choice([
        f"The fix belongs in `{change.path}`, around line {change.line}.",
        f"Open `{change.path}` near line {change.line}: that is where the change goes.",
        f"Look at `{change.path}` around line {change.line}.",
    ])


def _names(lines: list[str]) -> set[str]:
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


def _token_hint(removed: str, added: str) -> str:
    """What is wrong in a one-line change, naming the wrong tokens but not the fix's code.

    >>> _token_hint("return a - b", "return a + b")
    'In that line, `-` is the wrong operator.'
    >>> _token_hint("a + b + c", "a + b - c")
    'In that line, `+` after `b` is the wrong operator.'
    >>> _token_hint("if n < 0:", "if n <= 0:")
    'In that line, `<` is the wrong operator.'
    >>> _token_hint("y = g(a, b)", "y = g(b, a)")
    'In that line, `a`, `b` are in the wrong order.'
    >>> _token_hint("t = x", "t = x + 1")
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


def _what(change: Change, rng: random.Random) -> str:
    """The idea of the change without its code: what is wrong now and what the fix adds."""
    removed_code = [ln for ln in change.removed if ln.strip()]
    added_code = [ln for ln in change.added if ln.strip()]
    if len(removed_code) == 1 and len(added_code) == 1 and (hint := _token_hint(removed_code[0], added_code[0])):
        return f"The line `{removed_code[0].strip()}` is the culprit. {hint} {fix_words(removed_code[0], added_code[0])}".rstrip()
    new_names = sorted(_names(change.added) - _names(change.removed))[:3]
    kinds = {"if": "a condition", "elif": "a condition", "return": "the returned value", "raise": "an exception",
             "for": "a loop", "while": "a loop", "def": "a new function", "import": "an import", "from": "an import",
             "try": "error handling", "except": "error handling"}
    first_words = [ln.strip().split(" ")[0].rstrip(":") for ln in change.added if ln.strip()]
    kind = next((kinds[w] for w in first_words if w in kinds), "the logic")
    uses = f", using {', '.join(f'`{n}`' for n in new_names)}" if new_names else ""
    removed = [ln.strip() for ln in change.removed if ln.strip()]
    if removed and change.added:
        return rng.choice([
            f"The line `{removed[0]}` is the culprit: rewrite it so that {kind} handles the case in the issue{uses}.",
            f"`{removed[0]}` does the wrong thing here; the fix changes {kind}{uses}.",
        ])
    if change.added:
        return rng.choice([
            f"Something is missing there: add {kind} ({len(change.added)} line(s) or so){uses}.",
            f"Nothing needs deleting; the fix adds {kind}{uses}.",
        ])
    return rng.choice([
        f"The code `{removed[0] if removed else '...'}` should not be there; removing it is the fix.",
        f"Delete the {len(change.removed)} line(s) starting with `{removed[0] if removed else '...'}`.",
    ])


def _edit(change: Change) -> str:
    """The change as the str_replace_editor call the protégé should make, anchored on a context
    line when nothing is removed. Written in the protégé's own tool-call JSON, so following it is a
    copy: fenced code blocks made a 135M protégé re-escape quotes and newlines itself, and 6 of its
    29 exact-edit failures were unreadable calls (docs/LOG.md 2026-12-02)."""
    anchor_before = change.before[-1:] if not change.removed or not change.before else []
    anchor_after = change.after[:1] if not change.removed and not change.before else []
    old = anchor_before + change.removed + anchor_after
    new = anchor_before + change.added + anchor_after
    call = {"name": "str_replace_editor", "arguments": {"command": "str_replace", "path": change.path,
                                                          "old_str": "\n".join(old), "new_str": "\n".join(new)}}
    return f"In `{change.path}` make this call:\n{json.dumps(call)}"


_CALL_LINE = re.compile(r'^\{"name": "str_replace_editor", "arguments": .*\}$', re.M)


def guidance_edits(text: str) -> list[dict[str, Any]]:
    """The str_replace_editor arguments an exact-edit reply spells out, in order.

    >>> change = Change("m.py", 2, "f", ["    return x"], ["    return x + 1"], [], [])
    >>> guidance_edits("Short answer: " + _edit(change))[0]["new_str"]
    '    return x + 1'
    >>> guidance_edits("Look at `f` in `m.py`.")
    []
    """
    edits = []
    for line in _CALL_LINE.findall(text):
        try:
            edits.append(json.loads(line)["arguments"])
        except (ValueError, KeyError, TypeError):
            continue
    return edits


def _opening(request: ExpertRequest, gold_files: list[str], rng: random.Random) -> str:
    seen = context_paths(request.context)
    if any(_same_file(p, g) for p in seen for g in gold_files):
        return rng.choice(["You are in the right file.", "Good, you already have the right file.", "You are close."])
    if seen:
        return rng.choice([f"`{seen[-1]}` is not where the problem is.", f"I would stop looking at `{seen[-1]}`.",
                           f"`{seen[-1]}` is a detour."])
    return rng.choice(["Here is where to look.", "Short answer:", "Let me point you in the right direction.", ""])


_CLOSINGS = ["Then rerun the failing test to confirm.", "After the edit, run the tests and submit if they pass.",
             "Verify with a quick reproduction before you submit.", ""]


def _reply(text: str, request: ExpertRequest, oracle: bool, meta: dict[str, Any]) -> ExpertReply:
    asked = request.question + render_context(request.context) + request.problem_statement
    return ExpertReply(text=text, input_tokens=_estimate_tokens(asked), output_tokens=_estimate_tokens(text),
                       oracle=oracle, meta={"tokens_estimated": True, **meta})


@dataclass
class ReferenceExpert:
    """An offline ORACLE: guidance built from the task's gold patch, for tests, the `smoke` and
    `small` presets and data generation. Every reply is labelled oracle=True.

    hint_level: "location" (file, function, line), "description" (plus what is wrong and
    what the fix adds, without its code) or "exact_edit" (the edit itself)."""

    # one level, or levels joined by "+": each task gets one (seeded); a level named twice is drawn twice as often
    hint_level: str = "description"
    seed: int = 0
    name: str = ""
    oracle: bool = True
    LEVELS = ("location", "description", "exact_edit")

    def __post_init__(self) -> None:
        if not self.hint_level or any(lv not in self.LEVELS for lv in self.hint_level.split("+")):
            raise ValueError(f"hint_level must be one of {self.LEVELS} or several joined by '+', "
                             f"not {self.hint_level!r}")
        self.name = self.name or f"reference-expert({self.hint_level})"

    def level_for(self, instance_id: str) -> str:
        """The hint level of one task: fixed per (seed, task), so all its calls agree.

        >>> e = ReferenceExpert("exact_edit+description")
        >>> sorted({e.level_for(f"t{i}") for i in range(20)})
        ['description', 'exact_edit']
        >>> weighted = ReferenceExpert("description+description+exact_edit")  # named twice: drawn twice as often
        >>> 0.63 < sum(weighted.level_for(f"t{i}") == "description" for i in range(3000)) / 3000 < 0.70
        True
        """
        levels = self.hint_level.split("+")
        return levels[random.Random(f"{self.seed}|{instance_id}|level").randrange(len(levels))]

    def advise(self, request: ExpertRequest) -> ExpertReply:
        level = self.level_for(request.instance_id)
        meta = {"oracle": "reference-expert(gold patch)", "hint_level": level}
        changes = parse_patch(request.gold_patch or "")
        if not changes:
            return ExpertReply(text="The reference expert has no gold patch for this task.", failed=True,
                               error="no gold patch", oracle=True, meta=meta)
        # Seeded by the request, so a question asked twice in one episode can get new phrasing.
        rng = random.Random(f"{self.seed}|{request.instance_id}|{len(request.context)}|{request.question}")
        files = list(dict.fromkeys(c.path for c in changes))
        parts = [_opening(request, files, rng), _where(changes[0], rng)]
        if len(files) > 1:
            parts.append(f"The fix also touches {', '.join(f'`{f}`' for f in files[1:])}.")
        elif len(changes) > 1:
            parts.append(f"There are {len(changes)} places to change in that file; start with this one.")
        if level == "description":
            parts.append(_what(changes[0], rng))
        text, closing = " ".join(p for p in parts if p), rng.choice(_CLOSINGS)
        if level == "exact_edit":
            text += "\n\n" + "\n\n".join(_edit(c) for c in changes[:3]) + "\n\n" + closing
        else:
            text += " " + closing
        return _reply(text.strip(), request, True, meta)


@dataclass
class NoisyExpert:
    """Wraps an expert; with probability `p` per call it answers with misleading guidance
    instead (a wrong file or function seen in the context, or a harmful edit), in the same
    style, without calling the inner expert. Such replies carry meta["noisy"] = True."""

    inner: Expert
    p: float = 0.2
    seed: int = 0
    name: str = ""
    oracle: bool = False

    def __post_init__(self) -> None:
        self.name = self.name or f"noisy({self.inner.name}, p={self.p})"
        self.oracle = self.inner.oracle
        self._rng = random.Random(self.seed)

    def advise(self, request: ExpertRequest) -> ExpertReply:
        if self._rng.random() >= self.p:
            reply = self.inner.advise(request)
            reply.meta["noisy"] = False
            return reply
        kind, text = self._mislead(request, self._rng)
        meta: dict[str, Any] = {"noisy": True, "noise": kind}
        if self.oracle:
            inner = self.inner
            meta["oracle"] = "reference-expert(gold patch)" if isinstance(inner, ReferenceExpert) else f"{inner.name}(gold patch)"
        return _reply(text, request, self.oracle, meta)

    @staticmethod
    def _mislead(request: ExpertRequest, rng: random.Random) -> tuple[str, str]:
        gold = parse_patch(request.gold_patch or "")
        gold_files = {c.path for c in gold}
        gold_funcs = {c.function for c in gold}
        files = [p for p in context_paths(request.context) if not any(_same_file(p, g) for g in gold_files)]
        funcs = [f for f in context_functions(request.context) if f not in gold_funcs]
        here = gold[0] if gold else None
        kind = rng.choice(["wrong_file", "wrong_function", "wrong_edit"])
        if kind == "wrong_file":
            folder = here.path.rsplit("/", 1)[0] + "/" if here and "/" in here.path else ""
            fallback = folder + ("compat.py" if here and here.path.endswith("/utils.py") else "utils.py")
            path = rng.choice(files) if files else fallback
            return kind, rng.choice([f"The fix belongs in `{path}`; the issue comes from there.",
                                     f"Look at `{path}`: that is where the behaviour in the issue comes from."])
        if kind == "wrong_function":
            func = rng.choice(funcs) if funcs else "__init__"
            path = here.path if here else (files[0] if files else "the main module")
            return kind, rng.choice([f"The problem lives in `{func}` (`{path}`).",
                                     f"Look at `{func}` in `{path}`; that is the place that needs to change."])
        line = next((ln.strip() for c in gold for ln in c.removed + c.before if ln.strip()), "the failing call")
        return kind, rng.choice([f"Wrap `{line}` in a try/except that ignores the error; that makes the test pass.",
                                 "The test expectation is wrong; edit the test to match the current output.",
                                 f"Add an early `return None` at the top of `{here.function if here and here.function else 'the function'}`."])
