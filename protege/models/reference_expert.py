"""The reference expert (ORACLE: it builds its guidance from the gold patch) at three hint levels,
location / description / exact edit, and the patch reading it rests on."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from protege.core.protocols import Expert, ExpertReply, ExpertRequest
from protege.models.exact_edits import edit_calls
from protege.models.experts import estimate_tokens, render_context
from protege.models.line_words import describe, q
from protege.models.patch_reading import (
    Change,
    context_functions,
    context_paths,
    names_in,
    parse_patch,
    same_file,
)


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


def _what(change: Change, rng: random.Random) -> str:
    """The idea of the change without its code: what is wrong now and what the fix adds."""
    removed_code = [ln for ln in change.removed if ln.strip()]
    added_code = [ln for ln in change.added if ln.strip()]
    if len(removed_code) == 1 and len(added_code) == 1 and (words := describe(removed_code[0], added_code[0])):
        return f"The line {q(removed_code[0].strip())} is the culprit. {words}"
    new_names = sorted(names_in(change.added) - names_in(change.removed))[:3]
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


def _edits(request: ExpertRequest) -> str:
    """The gold patch as the calls that rebuild it (`exact_edits.edit_calls`: one per hunk, each
    anchored on text unique in the file as it stands, insertions on a neighbouring line), grouped
    by file. Written in the protégé's own tool-call JSON, so following it is a copy: fenced code
    blocks made a 135M protégé re-escape quotes and newlines itself, and 6 of its 29 exact-edit
    failures were unreadable calls (docs/LOG.md 2026-12-02)."""
    groups: dict[str, list[str]] = {}
    for tool, args in edit_calls(request.gold_patch or "", request.files):
        where = args.get("path") or "the repository"
        groups.setdefault(where, []).append(json.dumps({"name": tool, "arguments": args}))
    return "\n\n".join(f"In `{path}` make this call:\n{calls[0]}" if len(calls) == 1 else
                       f"In `{path}` make these {len(calls)} calls, in this order:\n" + "\n".join(calls)
                       for path, calls in groups.items())


def _opening(request: ExpertRequest, gold_files: list[str], rng: random.Random) -> str:
    seen = context_paths(request.context)
    if any(same_file(p, g) for p in seen for g in gold_files):
        return rng.choice(["You are in the right file.", "Good, you already have the right file.", "You are close."])
    if seen:
        return rng.choice([f"`{seen[-1]}` is not where the problem is.", f"I would stop looking at `{seen[-1]}`.",
                           f"`{seen[-1]}` is a detour."])
    return rng.choice(["Here is where to look.", "Short answer:", "Let me point you in the right direction.", ""])


_CLOSINGS = ["Then rerun the failing test to confirm.", "After the edit, run the tests and submit if they pass.",
             "Verify with a quick reproduction before you submit.", ""]


def _reply(text: str, request: ExpertRequest, oracle: bool, meta: dict[str, Any]) -> ExpertReply:
    asked = request.question + render_context(request.context) + request.problem_statement
    return ExpertReply(text=text, input_tokens=estimate_tokens(asked), output_tokens=estimate_tokens(text),
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
            text += "\n\n" + _edits(request) + "\n\n" + closing
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
        files = [p for p in context_paths(request.context) if not any(same_file(p, g) for g in gold_files)]
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
