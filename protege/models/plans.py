"""What the ORACLE reference demonstrator will do on a task: its plan of steps, built from the gold
patch (`full`: look around, maybe a wrong first edit, ask, fix, test; `compact`: ask only when the
issue does not pinpoint the bug), and the words it says before an edit. Pure functions."""

from __future__ import annotations

import random
import re
import shlex
from dataclasses import dataclass
from typing import Any

from protege.core.protocols import Message
from protege.models.exact_edits import common_ends
from protege.models.patch_reading import LineDiff, one_line_change, parse_patch
from protege.models.scripted import FilePatch, git_apply, split_patch
from protege.tasks.bundled import PINPOINTED
from protege.tasks.schema import Task

STEP_RE = re.compile(r"^Step (\d+):", re.MULTILINE)


NAME_RE = re.compile(r"`([A-Za-z_]\w*)`")


GREP_HIT_RE = re.compile(r"^(?:\./)?(\S+?\.py):(\d+):(.*)$", re.MULTILINE)


# Operator flips for a plausible wrong first edit (near or on the buggy line, never the gold fix).
_FLIPS = [(" + ", " - "), (" - ", " + "), (" < ", " <= "), (" > ", " >= "), (" <= ", " < "), (" >= ", " > "),
          (" and ", " or "), (" or ", " and "), (" == ", " != "), (" != ", " == ")]


TEST_PREFIX = "python -m pytest -q -p no:cacheprovider"


@dataclass
class PlanStep:
    thought: str
    tool: str
    args: dict[str, Any]
    tag: str = ""  # "edit:<path>" | "wrong" | "wrong_test" | "revert" | "ask" | "fix_intro" | ""


def message_text(message: Message) -> str:
    return str(message.get("content") or "")


def _test_cmd(ids: list[str], tail: int = 30) -> str:
    return f"{TEST_PREFIX} {' '.join(map(shlex.quote, ids)) or '.'} 2>&1 | tail -n {tail}"


def task_package(task: Task) -> str:
    return str(task.extra.get("package") or task.repo.rsplit("/", 1)[-1])


def _called_function(task: Task) -> str | None:
    """The first backticked identifier of the issue that is not the package name."""
    pkg = task_package(task)
    return next((n for n in NAME_RE.findall(task.problem_statement) if n != pkg), None)


def _gold_function(task: Task, files: list[FilePatch]) -> str | None:
    fn = (task.extra.get("mutation") or {}).get("function")
    if fn:
        return fn
    for m in re.finditer(r"^@@ [^@]*@@.*?def (\w+)", task.patch, re.MULTILINE):
        return m.group(1)
    for fp in files:
        for old, _ in fp.hunks:
            if m := re.search(r"def (\w+)", old):
                return m.group(1)
    return None


def _wrong_edit(fp: FilePatch, rng: random.Random) -> tuple[str, str, str] | None:
    """(old hunk text, hunk text with one context line's operator flipped, that line) or None."""
    if fp.kind != "modify" or not fp.hunks:
        return None
    old, new = fp.hunks[0]
    new_lines = set(new.splitlines(keepends=True))
    lines = old.splitlines(keepends=True)
    options = []
    for i, line in enumerate(lines):
        s = line.strip()
        if (not s or s.startswith(("#", "def ", "class ", "while ", "for "))
                or any(q in line for q in ("'", '"')) or "range(" in line):
            continue
        for a, b in _FLIPS:
            # Never the gold change itself: the flipped line must not be a line of the fix.
            if a in line and line.replace(a, b, 1) not in new_lines:
                options.append((i, a, b))
    if not options:
        return None
    i, a, b = rng.choice(options)
    flipped = lines[i].replace(a, b, 1)
    wrong = "".join(lines[:i] + [flipped] + lines[i + 1:])
    return old, wrong, lines[i].strip()


def _trim(old: str, new: str, rng: random.Random) -> tuple[str, str]:
    """Drop some leading/trailing context lines common to both sides (at least one kept each side)."""
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    lead, trail = common_ends(a, b)
    cut_l = rng.randint(0, max(0, lead - 1))
    cut_t = rng.randint(0, max(0, trail - 1))
    a, b = a[cut_l:len(a) - cut_t], b[cut_l:len(b) - cut_t]
    if not "".join(a).strip():
        return old, new
    return "".join(a), "".join(b)


def build_plan(task: Task, seed: int, ask_expert: bool = True, p_wrong: float = 0.5) -> list[PlanStep]:
    """The seeded plan for one task; deterministic given (seed, instance_id): explore, perhaps a
    wrong edit tested and reverted, ask the expert, fix (from the gold patch), test and submit."""
    rng = random.Random(f"demonstrator|{seed}|{task.instance_id}")
    files = split_patch(task.patch)
    gold = files[0].path if files else "."
    called = _called_function(task)
    f2p = task.FAIL_TO_PASS or []
    repro = rng.choice(f2p[:5]) if f2p else None
    steps = _explore_steps(task, rng, gold, called, _gold_function(task, files), repro)
    wrong = _wrong_edit(files[0], rng) if files and rng.random() < p_wrong else None
    if wrong:
        old, bad, line = wrong
        steps.append(PlanStep(f"Maybe `{line}` is the culprit; try flipping it.", "str_replace_editor",
                              {"command": "str_replace", "path": gold, "old_str": old, "new_str": bad}, "wrong"))
        steps.append(PlanStep("Re-run the failing test.", "bash", {"command": _test_cmd([repro] if repro else [])},
                              "wrong_test"))
        steps.append(PlanStep("", "str_replace_editor",
                              {"command": "str_replace", "path": gold, "old_str": bad, "new_str": old}, "revert"))
    if ask_expert:  # stalled
        tried = (f"I tried changing `{wrong[2]}` in {gold}, but the test still failed, so I reverted it."
                 if wrong else f"I read {gold}{f' and the code of `{called}`' if called else ''} but cannot see the bug.")
        question = rng.choice([
            "The test {t} fails. {tried} Where exactly is the bug, and what is the smallest correct fix?",
            "I am stuck on {t}, which fails. {tried} Which function is wrong and what should change?",
            "{t} still fails. {tried} Can you point me to the faulty line?",
        ]).format(t=repro or "the failing test", tried=tried)
        steps.append(PlanStep("I am stuck; ask the expert.", "ask_expert", {"question": question}, "ask"))
    steps += _fix_steps(files, gold, rng)
    check = rng.choice([
        ("Re-run the failing tests.", f2p[:10]),
        ("Re-run the failing and some passing tests.", f2p[:8] + task.PASS_TO_PASS[:8]),
        ("Run the whole test suite.", ["tests"]),
    ])
    steps.append(PlanStep(check[0], "bash", {"command": _test_cmd(check[1])}))
    steps.append(PlanStep(rng.choice(["The tests pass: submit.", "All green; submit the fix.", "Fixed. Submitting."]),
                          "submit", {}))
    return steps


def _explore_steps(task: Task, rng: random.Random, gold: str, called: str | None, gold_fn: str | None,
                   repro: str | None) -> list[PlanStep]:
    """Look around (layout, the called function, its helpers) and reproduce the failure, in a seeded order."""
    pkg = task_package(task)
    steps: list[PlanStep] = []
    layout = rng.choice([
        ("Look at the layout of the repository first.", "bash",
         {"command": "find . -name '*.py' -not -path './.git/*' | sort"}),
        ("See which files the package has.", "str_replace_editor", {"command": "view", "path": "."}),
        ("List the package's modules.", "bash", {"command": f"ls {shlex.quote(pkg)} tests 2>/dev/null"}),
        None,
    ])
    if layout:
        steps.append(PlanStep(*layout))
    if called:
        steps.append(PlanStep(f"The issue is about `{called}`; find where it is defined.", "bash",
                              {"command": f"grep -rn 'def {called}\\b' --include='*.py' . | grep -v '^./tests/'"},
                              "grep_called"))
        steps.append(PlanStep(f"Read `{called}`.", "str_replace_editor", {"command": "view", "path": gold},
                              "view_called"))
    reproduce = PlanStep("Reproduce the problem by running a failing test.", "bash",
                         {"command": _test_cmd([repro] if repro else [], rng.choice([20, 30, 40]))}, "repro")
    if rng.random() < 0.5:
        steps.insert(0 if not layout else 1, reproduce)
    else:
        steps.append(reproduce)
    if gold_fn and gold_fn != called:
        steps.append(PlanStep(f"`{called or 'It'}` relies on helpers; look at `{gold_fn}` too.", "bash",
                              {"command": f"grep -rn '{gold_fn}' --include='*.py' {shlex.quote(pkg)} | head -n 20"},
                              "grep_gold"))
        steps.append(PlanStep(f"Read the definition of `{gold_fn}`.", "str_replace_editor",
                              {"command": "view", "path": gold}, "view_gold"))
    elif not called:
        steps.append(PlanStep("Read the module the failing behaviour comes from.", "str_replace_editor",
                              {"command": "view", "path": gold}))
    return steps


def _fix_steps(files: list, gold: str, rng: random.Random) -> list[PlanStep]:
    """The gold patch as editor calls (hunks with seeded context trimming), git apply for other file kinds."""
    steps: list[PlanStep] = []
    if rng.random() < 0.5:
        steps.append(PlanStep("", "str_replace_editor", {"command": "view", "path": gold}, "fix_intro"))
    first_edit = True
    for fp in files:
        if fp.kind == "new":
            steps.append(PlanStep(f"Create {fp.path}.", "str_replace_editor",
                                  {"command": "create", "path": fp.path, "file_text": fp.new_content}, f"edit:{fp.path}"))
        elif fp.kind == "modify":
            for n, (old, new) in enumerate(fp.hunks, 1):
                old, new = _trim(old, new, rng)
                thought = "" if first_edit else f"Next change in {fp.path} ({n} of {len(fp.hunks)})."
                steps.append(PlanStep(thought, "str_replace_editor",
                                      {"command": "str_replace", "path": fp.path, "old_str": old, "new_str": new},
                                      f"edit:{fp.path}" + (":first" if first_edit else "")))
                first_edit = False
        else:
            steps.append(PlanStep(f"Apply the change to {fp.path} with git.", "bash", {"command": git_apply(fp)},
                                  f"edit:{fp.path}"))
        first_edit = False
    return steps


def compact_plan(task: Task, seed: int, ask_expert: bool = True,
                 edits: list[dict[str, Any]] | None = None) -> list[PlanStep]:
    """The short plan of the compact demonstrations (CollectConfig.plan = "compact"): when the
    issue pinpoints the bug (tier "pinpointed"), fix the line it quotes, alone; otherwise ask the
    expert first, view the line it names unless its guidance holds the exact edit or quotes the
    line, fix, submit. `edits`: the str_replace arguments an exact-edit reply spells out
    (`experts.guidance_edits`); when they cover every change of the patch the demonstration makes
    exactly those calls, so what the protégé learns is to copy the expert's call.
    No exploration and no test runs: each conversation stays a few hundred tokens, so a 135M
    protégé can be trained on whole episodes in minutes (docs/LOG.md 2026-12-02).

    >>> from protege.tasks.bundled import load_bundled
    >>> t = next(t for t in load_bundled("train") if t.difficulty == "pinpointed")
    >>> [(s.tool, s.args.get("command")) for s in compact_plan(t, 0)]
    [('str_replace_editor', 'str_replace'), ('submit', None)]
    >>> t = next(t for t in load_bundled("train") if t.difficulty == "hard")
    >>> [s.tag for s in compact_plan(t, 0)]
    ['ask', 'view_if_needed', 'edit:...', '']
    """

    rng = random.Random(f"demonstrator|{seed}|{task.instance_id}")
    files = split_patch(task.patch)
    changes = parse_patch(task.patch)
    first = changes[0] if changes else None
    called = _called_function(task)
    steps: list[PlanStep] = []
    alone = task.difficulty == PINPOINTED or not ask_expert
    if not alone:
        question = rng.choice(["Where is the bug{c}, and what is the fix?", "I cannot find the bug{c}. Where is it?",
                               "Which line is wrong{c}?"]).format(c=f" in `{called}`" if called else "")
        steps.append(PlanStep(rng.choice(["I cannot locate the bug myself; ask the expert.",
                                          "The issue does not say where the bug is; ask."]),
                              "ask_expert", {"question": question}, "ask"))
    quoted = quoted_line(task)
    if alone and quoted and task.difficulty == PINPOINTED:
        # The issue quotes the wrong line: edit it as quoted (the editor matches it whatever its
        # indentation), no line numbers to copy. A line that is not unique fails and is applied with git.
        # Viewing it first instead taught the protégé to edit a neighbouring line: the SFT protégé
        # alone fixed 0 of 14 pinpointed held-out tasks that way, 5 of 14 this way (docs/LOG.md 2026-12-02).
        return [PlanStep(f"The issue quotes the wrong line. {change_thought(*quoted)}".rstrip(), "str_replace_editor",
                         {"command": "str_replace", "path": first.path, "old_str": quoted[0], "new_str": quoted[1]},
                         f"edit:{first.path}"),
                PlanStep("Done.", "submit", {})]
    if first:
        view = {"command": "view", "path": first.path, "view_range": [max(1, first.line - 2), first.line + 2]}
        thought = "The issue names the line; look at it." if alone else "Look at the line the expert names."
        steps.append(PlanStep(thought, "str_replace_editor", view, "view" if alone else "view_if_needed"))
    if edits and len(edits) == len(changes):
        files = []  # the expert's calls below replace the plan's own edits
        steps += [PlanStep("Make the edit the expert gives.", "str_replace_editor", dict(e), "edit:" + str(e["path"]))
                  for e in edits]
    steps += _minimal_edits(files)
    steps.append(PlanStep("Done.", "submit", {}))
    return steps


def _minimal_edits(files: list) -> list[PlanStep]:
    """The patch's changes as the smallest editor calls (git apply for other file kinds), tagged by file."""
    steps = []
    for fp in files:
        if fp.kind == "modify":
            for old, new in fp.hunks:
                old, new = _minimal(old, new)
                steps.append(PlanStep(change_thought(old, new) or "Fix it.", "str_replace_editor",
                                      {"command": "str_replace", "path": fp.path, "old_str": old, "new_str": new},
                                      f"edit:{fp.path}"))
        elif fp.kind == "new":
            steps.append(PlanStep(f"Create {fp.path}.", "str_replace_editor",
                                  {"command": "create", "path": fp.path, "file_text": fp.new_content},
                                  f"edit:{fp.path}"))
        else:
            steps.append(PlanStep(f"Apply the change to {fp.path} with git.", "bash", {"command": git_apply(fp)},
                                  f"edit:{fp.path}"))
    return steps


def change_thought(old: str, new: str) -> str:
    """The demonstrator's thought before a one-line edit: the tokens that change, said before the
    line is written. It splits the step a 135M protégé got wrong at the description level (the
    right line, the wrong change: docs/LOG.md 2026-12-02) in two: from the advice's words ("the fix
    makes it an addition") to the tokens, then the line with them. "" when it is not one line.

    >>> change_thought("return a - b", "return a + b")
    'In that line, `-` becomes `+`.'
    >>> change_thought("y = g(a, b)", "y = g(b, a)"), change_thought("range(n - 1)", "range(n)")
    ('In that line, `a` and `b` swap places.', 'In that line, `- 1` goes away.')
    >>> change_thought("if x:", "if x and y:"), change_thought("a\\nb", "a\\nc")
    ('In that line, `and y` is added after `x`.', '')
    """

    if "\n" in old.strip() or "\n" in new.strip():
        return ""
    d = LineDiff.of(old, new)
    if not d.ops:
        return ""
    if d.swapped:
        moved = [x for x, y in zip(d.old_tokens, d.new_tokens) if x != y]
        return f"In that line, {' and '.join(f'`{t}`' for t in dict.fromkeys(moved))} swap places."
    gone, came, before = d.stretch()
    if gone and not came:
        return f"In that line, `{gone}` goes away."
    if came and not gone:
        return f"In that line, `{came}` is added" + (f" after `{before}`." if before else ".")
    return f"In that line, `{gone}` becomes `{came}`."


def quoted_line(task: Task) -> tuple[str, str] | None:
    """(wrong line, fixed line), both stripped, when the gold patch changes exactly one line:
    the line a pinpointed issue or a description-level expert quotes.

    >>> from protege.tasks.bundled import load_bundled
    >>> t = next(t for t in load_bundled("train") if t.difficulty == "pinpointed")
    >>> old, new = quoted_line(t); f"`{old}`" in t.problem_statement and old != new
    True
    """

    one = one_line_change(task.patch)
    return (one[1].strip(), one[2].strip()) if one else None


def _minimal(old: str, new: str) -> tuple[str, str]:
    """A hunk reduced to its changed lines (one context line kept when it only inserts), without
    the final newline: the smallest edit a model has to copy.

    >>> _minimal("a\\nb\\nc\\n", "a\\nB\\nc\\n")
    ('b', 'B')
    >>> _minimal("a\\nc\\n", "a\\nb\\nc\\n")
    ('a', 'a\\nb')
    """
    a, b = old.splitlines(), new.splitlines()
    lead, trail = common_ends(a, b)
    lo = lead if lead < len(a) - trail else max(0, lead - 1)  # pure insertion: keep the line above
    a, b = a[lo:len(a) - trail], b[lo:len(b) - trail]
    if not "\n".join(a).strip():
        return old.rstrip("\n"), new.rstrip("\n")
    return "\n".join(a), "\n".join(b)
