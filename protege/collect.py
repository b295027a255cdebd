"""Collect demonstration trajectories with an ORACLE demonstrator and keep the resolved ones.

`ReferenceDemonstrator` is an ORACLE policy: it reads the task's gold patch (like
`protege.scripted.ScriptedPolicy`), so its trajectories say nothing about a model's skill. They
are training data, and every row `collect` keeps is labelled ``"oracle_demonstrator": true``.
Unlike the scripted policy it varies with a seed: which exploration commands it runs, which
failing test it reproduces, whether it first makes a plausible wrong edit (and reverts it after
the test still fails), how much context its edits carry and how it checks the fix. It always
asks the expert once, when stalled, with a question naming the failing test and what it tried.

`collect` runs the demonstrator with the (oracle) `ReferenceExpert` in local sandboxes, grades
every patch with `protege.grading.grade` and keeps only resolved trajectories (rejection
sampling). Run folder::

    run_dir/kept.jsonl      one finished, resolved trajectory dict per line
    run_dir/dropped.jsonl   {"instance_id", "reason", ...} per rejected episode
    run_dir/grade_logs/     grader logs

Both .jsonl files are appended as each episode finishes; a later call skips instance ids
already in either file, so an interrupted collection resumes without duplicates.
"""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import threading
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from protege.agent import GUIDANCE_OPEN, AgentConfig, run_episodes
from protege.components import make_expert as expert_from_spec
from protege.environment import EnvConfig, make_environment
from protege.experts import ReferenceExpert, guidance_edits
from protege.grading import grade
from protege.protocols import Expert, Generation, Message, Policy
from protege.scripted import EDIT_FAILED, FilePatch, StatelessOraclePolicy, _git_apply, split_patch
from protege.tasks import Task
from protege.tools import format_tool_call
from protege.trajectory import read_jsonl

_STEP_RE = re.compile(r"^Step (\d+):", re.MULTILINE)
_NAME_RE = re.compile(r"`([A-Za-z_]\w*)`")
_GREP_HIT_RE = re.compile(r"^(?:\./)?(\S+?\.py):(\d+):(.*)$", re.MULTILINE)
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


def _content(message: Message) -> str:
    return str(message.get("content") or "")


def _test_cmd(ids: list[str], tail: int = 30) -> str:
    return f"{TEST_PREFIX} {' '.join(map(shlex.quote, ids)) or '.'} 2>&1 | tail -n {tail}"


def _package(task: Task) -> str:
    return str(task.extra.get("package") or task.repo.rsplit("/", 1)[-1])


def _called_function(task: Task) -> str | None:
    """The first backticked identifier of the issue that is not the package name."""
    pkg = _package(task)
    return next((n for n in _NAME_RE.findall(task.problem_statement) if n != pkg), None)


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


def _common_ends(a: list[str], b: list[str]) -> tuple[int, int]:
    """How many leading and trailing lines two hunk sides share (not overlapping)."""
    lead = 0
    while lead < min(len(a), len(b)) and a[lead] == b[lead]:
        lead += 1
    trail = 0
    while trail < min(len(a), len(b)) - lead and a[-1 - trail] == b[-1 - trail]:
        trail += 1
    return lead, trail


def _trim(old: str, new: str, rng: random.Random) -> tuple[str, str]:
    """Drop some leading/trailing context lines common to both sides (at least one kept each side)."""
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    lead, trail = _common_ends(a, b)
    cut_l = rng.randint(0, max(0, lead - 1))
    cut_t = rng.randint(0, max(0, trail - 1))
    a, b = a[cut_l:len(a) - cut_t], b[cut_l:len(b) - cut_t]
    if not "".join(a).strip():
        return old, new
    return "".join(a), "".join(b)


def build_plan(task: Task, seed: int, ask_expert: bool = True, p_wrong: float = 0.5) -> list[PlanStep]:
    """The seeded plan for one task; deterministic given (seed, instance_id)."""
    rng = random.Random(f"demonstrator|{seed}|{task.instance_id}")
    files = split_patch(task.patch)
    gold = files[0].path if files else "."
    pkg = _package(task)
    called = _called_function(task)
    gold_fn = _gold_function(task, files)
    f2p = task.FAIL_TO_PASS or []
    repro = rng.choice(f2p[:5]) if f2p else None
    steps: list[PlanStep] = []

    # Explore.
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

    # A plausible wrong first edit, tested and reverted.
    wrong = _wrong_edit(files[0], rng) if files and rng.random() < p_wrong else None
    if wrong:
        old, bad, line = wrong
        steps.append(PlanStep(f"Maybe `{line}` is the culprit; try flipping it.", "str_replace_editor",
                              {"command": "str_replace", "path": gold, "old_str": old, "new_str": bad}, "wrong"))
        steps.append(PlanStep("Re-run the failing test.", "bash", {"command": _test_cmd([repro] if repro else [])},
                              "wrong_test"))
        steps.append(PlanStep("", "str_replace_editor",
                              {"command": "str_replace", "path": gold, "old_str": bad, "new_str": old}, "revert"))

    # Ask the expert (stalled).
    if ask_expert:
        tried = (f"I tried changing `{wrong[2]}` in {gold}, but the test still failed, so I reverted it."
                 if wrong else f"I read {gold}{f' and the code of `{called}`' if called else ''} but cannot see the bug.")
        question = rng.choice([
            "The test {t} fails. {tried} Where exactly is the bug, and what is the smallest correct fix?",
            "I am stuck on {t}, which fails. {tried} Which function is wrong and what should change?",
            "{t} still fails. {tried} Can you point me to the faulty line?",
        ]).format(t=repro or "the failing test", tried=tried)
        steps.append(PlanStep("I am stuck; ask the expert.", "ask_expert", {"question": question}, "ask"))

    # Fix, from the gold patch.
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
            steps.append(PlanStep(f"Apply the change to {fp.path} with git.", "bash", {"command": _git_apply(fp)},
                                  f"edit:{fp.path}"))
        first_edit = False

    # Check and submit.
    check = rng.choice([
        ("Re-run the failing tests.", f2p[:10]),
        ("Re-run the failing and some passing tests.", f2p[:8] + task.PASS_TO_PASS[:8]),
        ("Run the whole test suite.", ["tests"]),
    ])
    steps.append(PlanStep(check[0], "bash", {"command": _test_cmd(check[1])}))
    steps.append(PlanStep(rng.choice(["The tests pass: submit.", "All green; submit the fix.", "Fixed. Submitting."]),
                          "submit", {}))
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

    >>> from protege.benchmark.build import load_bundled
    >>> t = next(t for t in load_bundled("train") if t.difficulty == "pinpointed")
    >>> [(s.tool, s.args.get("command")) for s in compact_plan(t, 0)]
    [('str_replace_editor', 'str_replace'), ('submit', None)]
    >>> t = next(t for t in load_bundled("train") if t.difficulty == "hard")
    >>> [s.tag for s in compact_plan(t, 0)]
    ['ask', 'view_if_needed', 'edit:...', '']
    """
    from protege.benchmark.build import PINPOINTED
    from protege.experts import parse_patch

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
    for fp in files:
        if fp.kind == "modify":
            for old, new in fp.hunks:
                old, new = _minimal(old, new)
                steps.append(PlanStep(change_thought(old, new) or "Fix it.", "str_replace_editor",
                                      {"command": "str_replace", "path": fp.path, "old_str": old, "new_str": new},
                                      "edit:..."))
        elif fp.kind == "new":
            steps.append(PlanStep(f"Create {fp.path}.", "str_replace_editor",
                                  {"command": "create", "path": fp.path, "file_text": fp.new_content}, "edit:..."))
        else:
            steps.append(PlanStep(f"Apply the change to {fp.path} with git.", "bash", {"command": _git_apply(fp)},
                                  "edit:..."))
    steps.append(PlanStep("Done.", "submit", {}))
    for st in steps:  # the tag names the file, as build_plan's edit tags do
        if st.tag == "edit:...":
            st.tag = "edit:" + str(st.args.get("path") or files[0].path)
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
    from protege.experts import LineDiff

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

    >>> from protege.benchmark.build import load_bundled
    >>> t = next(t for t in load_bundled("train") if t.difficulty == "pinpointed")
    >>> old, new = quoted_line(t); f"`{old}`" in t.problem_statement and old != new
    True
    """
    from protege.experts import one_line_change

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
    lead, trail = _common_ends(a, b)
    lo = lead if lead < len(a) - trail else max(0, lead - 1)  # pure insertion: keep the line above
    a, b = a[lo:len(a) - trail], b[lo:len(b) - trail]
    if not "\n".join(a).strip():
        return old.rstrip("\n"), new.rstrip("\n")
    return "\n".join(a), "\n".join(b)


def _latest_guidance(conversation: list[Message]) -> str | None:
    return next((_content(m) for m in reversed(conversation) if _content(m).startswith(GUIDANCE_OPEN)), None)


def _guidance_target(conversation: list[Message]) -> str | None:
    for msg in reversed(conversation):
        text = _content(msg)
        if text.startswith(GUIDANCE_OPEN):
            names = _NAME_RE.findall(text)
            return names[0] if names else "the spot it names"
    return None


@dataclass
class ReferenceDemonstrator(StatelessOraclePolicy):
    """ORACLE demonstrator: follows a seeded plan derived from the task's gold patch.

    Stateless per conversation (the plan position is read from the "Step k:" prefix of its
    last message), deterministic given (seed, instance_id). Its trajectories are oracle
    demonstrations, labelled as such by its name and `oracle = True`."""

    tasks: list[Task]
    seed: int = 0
    p_wrong: float = 0.5  # probability of a wrong first edit that is tested and reverted
    plan: str = "full"  # full: explore, reproduce, maybe a wrong edit, ask, fix, test | compact: compact_plan
    name: str = "reference-demonstrator(oracle)"
    oracle: bool = True

    def _one(self, conversation: list[Message], ask_offered: bool) -> Generation:
        prompt_tokens = sum(len(_content(m)) for m in conversation) // 4
        task = self._task(conversation)
        if task is None:
            return Generation("", prompt_tokens, error="demonstrator: the conversation matches no known task")
        guidance = _latest_guidance(conversation) or ""
        edits = guidance_edits(guidance)
        steps = (compact_plan(task, self.seed, ask_offered, edits) if self.plan == "compact" else
                 build_plan(task, self.seed, ask_offered, self.p_wrong))
        k, observation = 0, ""
        for i in range(len(conversation) - 1, 1, -1):
            msg = conversation[i]
            if msg.get("role") == "assistant" and (m := _STEP_RE.match(_content(msg))):
                k = int(m.group(1)) + 1
                observation = _content(conversation[i + 1]) if i + 1 < len(conversation) else ""
                prev = steps[k - 1] if k - 1 < len(steps) else None
                failed = observation.startswith(EDIT_FAILED)
                if prev and prev.tag == "wrong" and failed:  # the wrong edit did not apply: skip its revert
                    k = next(j for j, s in enumerate(steps) if s.tag == "revert") + 1
                elif prev and prev.tag.startswith("edit:") and failed:
                    path = prev.tag.split(":")[1]
                    fp = next(f for f in split_patch(task.patch) if f.path == path)
                    last = max(j for j, s in enumerate(steps) if s.tag.startswith(f"edit:{path}"))
                    return self._emit(last, f"That edit did not apply; apply the change to {path} with git.",
                                      "bash", {"command": _git_apply(fp)}, prompt_tokens)
                break
        k = min(k, len(steps) - 1)  # past the plan: submit
        if steps[k].tag == "view_if_needed":
            quoted = quoted_line(task)
            if edits:
                k += 1  # the guidance holds the exact edit: nothing to look up
            elif quoted and f"`{quoted[0]}`" in guidance and steps[k + 1].tag.startswith("edit:"):
                edit = {**steps[k + 1].args, "old_str": quoted[0], "new_str": quoted[1]}
                return self._emit(k + 1, f"The expert quotes the wrong line. {change_thought(*quoted)}".rstrip(), "str_replace_editor", edit,
                                  prompt_tokens)
        step = steps[k]
        thought = step.thought
        if step.tag == "revert":
            thought = ("The test still fails, so that was not the bug; revert the change."
                       if re.search(r"\b(failed|error)", observation) else
                       "That line is unrelated to the issue even if the test passes; revert it and ask.")
        elif step.tag in ("fix_intro", ) or step.tag.endswith(":first"):
            target = _guidance_target(conversation)
            thought = (f"The expert points at `{target}`; " if target else "") + (
                "look at it again before editing." if step.tag == "fix_intro" else "make that fix.")
        elif step.tag in ("view_called", "view_gold"):
            hits = list(_GREP_HIT_RE.finditer(observation))
            hit = next((h for h in hits if "def " in h.group(3)), hits[0] if hits else None)
            args = dict(step.args)
            if hit:
                args["path"] = hit.group(1)
                line = int(hit.group(2))
                if (k + len(task.instance_id)) % 2:
                    args["view_range"] = [max(1, line - 3), line + 25]
            return self._emit(k, thought, step.tool, args, prompt_tokens)
        return self._emit(k, thought, step.tool, step.args, prompt_tokens)

    @staticmethod
    def _emit(k: int, thought: str, tool: str, args: dict[str, Any], prompt_tokens: int) -> Generation:
        text = f"Step {k}: {thought}\n{format_tool_call(tool, args)}"
        return Generation(text, prompt_tokens, len(text) // 4, finish_reason="stop")


def _append(path: Path, row: dict[str, Any], lock: threading.Lock) -> None:
    with lock, path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def collect(tasks: list[Task], run_dir: str | Path, seed: int = 0, config: AgentConfig | None = None,
            expert: Expert | None = None, env_config: EnvConfig | None = None,
            allow_test_split: bool = False, ask_expert: bool = True, policy: Policy | None = None,
            progress: bool = False) -> dict[str, Any]:
    """Run a demonstrator on `tasks`, grade each patch, keep only resolved trajectories in
    run_dir/kept.jsonl and record the rest in run_dir/dropped.jsonl.

    policy: the demonstrator; default the ORACLE `ReferenceDemonstrator`. At full scale pass
    any `Policy` (e.g. `OpenAIPolicy`), with an expert that sees the gold patch
    (`OpenAIExpert(show_gold_patch=True)`, METHOD.md Phase I).
    ask_expert: False collects expert-only trajectories (the tool is not offered), the input
    of stage 02's post-hoc insertion.

    Returns {"kept": n kept by this call, "dropped": {reason: n}, "skipped": n already done}.
    Refuses bundled test-split tasks (held out from training data) unless allow_test_split."""
    held_out = [t.instance_id for t in tasks if t.extra.get("split") == "test"]
    if held_out and not allow_test_split:
        raise ValueError(f"collect: {len(held_out)} test-split tasks given (e.g. {held_out[0]!r}): "
                         "they are held out from training data")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    kept_path, dropped_path = run_dir / "kept.jsonl", run_dir / "dropped.jsonl"
    done = {r.get("instance_id") for r in read_jsonl(kept_path) + read_jsonl(dropped_path)}
    seen: set[str] = set()
    todo = []
    for t in tasks:
        if t.instance_id not in done and t.instance_id not in seen:
            seen.add(t.instance_id)
            todo.append(t)
    counts: dict[str, Any] = {"kept": 0, "dropped": Counter(), "skipped": len(tasks) - len(todo)}
    if not todo:
        counts["dropped"] = {}
        return counts
    config = replace(config or AgentConfig.preset("small", max_parallel=4), enable_ask_expert=ask_expert)
    expert = expert if expert is not None else ReferenceExpert(seed=seed)
    env_config = env_config or EnvConfig()
    policy = policy if policy is not None else ReferenceDemonstrator(todo, seed=seed)
    oracle = bool(getattr(policy, "oracle", False))
    bar = tqdm(total=len(todo), desc=f"collect ({'live' if ask_expert else 'expert-only'})", disable=not progress)
    by_id = {t.instance_id: t for t in todo}
    lock = threading.Lock()

    def judge(traj) -> tuple[str | None, Any]:
        reason, report = None, None
        if traj.exit_status != "submitted":
            reason = f"exit:{traj.exit_status}"
        elif not traj.patch.strip():
            reason = "empty_patch"
        else:
            report = grade(by_id[traj.instance_id], traj.patch, env_config, log_dir=run_dir / "grade_logs",
                           model_name=policy.name)
            if report.error and not report.resolved:
                reason = "grade_error"
            elif not report.resolved:
                reason = "unresolved"
        return reason, report

    def record(traj, reason: str | None, report: Any) -> None:
        task = by_id[traj.instance_id]
        if reason is None:
            row = {**traj.to_dict(), "oracle_demonstrator": oracle, "demonstrator_seed": seed,
                   "package": _package(task), "split": task.extra.get("split", ""), "ask_expert": ask_expert,
                   "grade_status": report.status if report else None}
            _append(kept_path, row, lock)
            counts["kept"] += 1
        else:
            _append(dropped_path, {"instance_id": traj.instance_id, "reason": reason,
                                   "exit_status": traj.exit_status, "oracle_demonstrator": oracle,
                                   "demonstrator_seed": seed,
                                   "grade": report.to_dict() if report else None}, lock)
            counts["dropped"][reason] += 1
        bar.update(1)

    # Grading (the repository's tests) is most of a scripted collection's time: grade finished
    # episodes on every core while the next ones run, but record them in the order they finished
    # (deterministic), so kept.jsonl, and the SFT data after it, is the same from run to run.
    pending: deque = deque()

    def drain(block: bool) -> None:
        while pending and (block or pending[0][1].done()):
            traj, fut = pending.popleft()
            record(traj, *fut.result())

    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as graders:
        def on_finish(traj) -> None:
            pending.append((traj, graders.submit(judge, traj)))
            drain(block=False)

        try:
            run_episodes(todo, policy, expert, partial(make_environment, config=env_config), config,
                         on_finish=on_finish)
        finally:  # graded episodes are kept even when a later one fails
            drain(block=True)
    bar.close()
    counts["dropped"] = dict(counts["dropped"])
    return counts


@dataclass
class CollectConfig:
    """Stage 01: which tasks, which demonstrator and expert, which seeds."""

    tasks: str = "bundled:train"  # task file or bundled:train (never the test split)
    limit: int = -1  # tasks at most; -1 = all
    live_seed: int = 0  # demonstrator seed of the live-collaboration collection
    expert_only_seed: int = 1  # seed of the expert-only collection (stage 02's input); -1 = skip it
    demonstrator: str = "reference"  # reference (ORACLE, reads the gold patch) | openai:MODEL | transformers:MODEL
    # a transformers:MODEL demonstrator generates in-process ("off") or behind a server launched for the
    # collection (protege.serving): "vllm" | "transformers"; launch line and log in <collection>/server/
    serve: str = "off"
    expert: str = "reference"  # reference[:LEVEL[+LEVEL]] (ORACLE) | openai:MODEL (shown the gold patch: Phase I)
    base_url: str = "https://api.openai.com/v1"  # endpoint of openai: demonstrators and experts
    p_wrong: float = 0.5  # reference demonstrator: probability of a wrong first edit
    plan: str = "full"  # reference demonstrator: full (explores, tests) | compact (collect.compact_plan)
    agent_preset: str = "small"  # AgentConfig preset of the collection episodes
    max_parallel: int = 4  # episodes stepped together

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> CollectConfig:
        """A scale preset (smoke | small | full) with field overrides.

        >>> CollectConfig.preset("smoke").limit, CollectConfig.preset("small").limit
        (6, -1)
        """
        from protege.config import resolve

        return resolve(cls, COLLECT_PRESETS, name, overrides)


COLLECT_PRESETS: dict[str, dict[str, Any]] = {
    "smoke": {"limit": 6, "agent_preset": "smoke"},
    # Compact demonstrations, and an expert whose hint level is drawn per task, so the protégé learns to
    # follow both kinds of advice: description two times in three (the harder one to follow: with one in
    # two, 32.7% Pass@1 at the description level, with two in three 42.3%; exact edits 80.8% both times;
    # docs/LOG.md session 10).
    "small": {"limit": -1, "agent_preset": "small", "plan": "compact",
              "expert": "reference:description+description+exact_edit"},
    # Full scale: an OpenAI-compatible demonstrator on SWE-Gym / SWE-smith style training tasks.
    "full": {"tasks": "swe-gym-train.jsonl", "demonstrator": "openai:gpt-4.1", "expert": "openai:gpt-4.1",
                 "agent_preset": "full", "max_parallel": 16},
}


def _make_demonstrator(config: CollectConfig, tasks: list[Task], seed: int, servers: ExitStack,
                       log_dir: Path) -> Policy:
    from protege.components import make_policy

    try:
        return make_policy(config.demonstrator, tasks, base_url=config.base_url, temperature=0.7,
                           max_new_tokens=1024, seed=seed, batch_size=config.max_parallel, serve=config.serve,
                           servers=servers, log_dir=log_dir, plan=config.plan, p_wrong=config.p_wrong)
    except ValueError as exc:
        raise ValueError(f"collect config: field 'demonstrator' = {config.demonstrator!r}: {exc}") from None


def _make_expert(config: CollectConfig, seed: int) -> Expert:
    try:  # an openai: expert also sees the gold patch and is told not to reveal it verbatim (Phase I)
        expert = expert_from_spec(config.expert, seed, config.base_url, show_gold_patch=True)
    except ValueError as exc:
        raise ValueError(f"collect config: field 'expert' = {config.expert!r}: {exc}") from None
    if expert is None:
        raise ValueError("collect config: field 'expert' = 'none': live collection needs an expert")
    return expert


def load_train_tasks(config: CollectConfig) -> list[Task]:
    from protege.components import load_tasks as load

    tasks = load(config.tasks)
    return tasks[: config.limit] if config.limit >= 0 else tasks


def run_collection(config: CollectConfig, out_dir: str | Path, progress: bool = True) -> list[dict[str, Any]]:
    """Stage 01: live collection into out_dir/live and expert-only collection into
    out_dir/expert_only (both resumable); writes out_dir/config.json. Returns one summary
    row per collection: kept, dropped (by reason), expert calls per kept trajectory."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    from dataclasses import asdict

    from protege.trajectory import atomic_write

    atomic_write(out_dir / "config.json", json.dumps({"collect": asdict(config)}, indent=2) + "\n")
    tasks = load_train_tasks(config)
    agent_config = AgentConfig.preset(config.agent_preset, max_parallel=config.max_parallel)
    runs = [("live", config.live_seed, True)]
    if config.expert_only_seed >= 0:
        runs.append(("expert_only", config.expert_only_seed, False))
    summary = []
    for name, seed, ask in runs:
        sub = out_dir / name
        with ExitStack() as servers:  # a served demonstrator's server stops after its collection
            collect(tasks, sub, seed=seed, config=agent_config, expert=_make_expert(config, seed),
                    ask_expert=ask, policy=_make_demonstrator(config, tasks, seed, servers, sub / "server"),
                    progress=progress)
        kept, dropped = read_jsonl(sub / "kept.jsonl"), read_jsonl(sub / "dropped.jsonl")
        calls = [len(r.get("expert_calls", [])) for r in kept]
        summary.append({"collection": name, "seed": seed, "tasks": len(tasks), "kept": len(kept),
                        "dropped": len(dropped), **{f"dropped:{k}": v for k, v in
                                                    Counter(r["reason"] for r in dropped).items()},
                        "expert_calls_per_kept": round(sum(calls) / len(calls), 2) if calls else 0.0,
                        "oracle_demonstrator": any(r.get("oracle_demonstrator") for r in kept)})
    return summary


def steps_table(kept_path: str | Path, index: int = 0, width: int = 100):
    """The steps of one kept trajectory as a table (tool, action, first line of the result)."""
    import pandas as pd

    from protege.tools import Action

    rows = read_jsonl(Path(kept_path))
    if not rows:
        return pd.DataFrame()
    traj = rows[index]
    return pd.DataFrame([{"step": s["index"], "tool": (s.get("action") or {}).get("name"),
                          "action": Action(s["action"]["name"], s["action"]["arguments"]).summary()[:width]
                          if s.get("action") else "", "result": (s.get("observation") or "").strip()
                          .split("\n", 1)[0][:width]} for s in traj["steps"]]).set_index("step")
