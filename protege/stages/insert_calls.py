"""Stage 02: insert `ask_expert` turns post hoc into expert-only trajectories.

Input: resolved trajectories collected with the tool switched off (`collect(..., ask_expert=
False)`). Output: the same trajectories with ask / guidance turn pairs inserted at chosen step
boundaries, the system prompt and tool list of a run that offers `ask_expert`, and every
inserted call recorded in `expert_calls` with ``"inserted": true``.

Strategies (where a call goes, before the action at step p):
    stall     where the trajectory is stuck: a test run failing again after an edit, an edit
              that did not apply, or the loop heuristic firing (`protege.core.loop_detection`); a trajectory
              with none of these gets one call before its first source edit when it explored
              for at least `min_explore_steps` steps first (a trajectory with neither gets none)
    every_n   before steps n, 2n, ...
    random    before each step with probability p (seeded)
Every strategy keeps at most `max_calls` calls, at least `min_gap` steps apart, and never
inserts before step 0 or before `submit`.

Consistency with the trajectory's own later actions (hindsight): the guidance is written by an
expert that is shown, as its "gold patch", the trajectory's own final diff restricted to the
files the trajectory edits *after* the insertion point, and the question is written from what
the trajectory did before it. So the advice points where the trajectory goes next. When every
edit is already done, the guidance says to check the change with the tests and submit, which is
what the trajectory does. Offline the expert is `ReferenceExpert` (an ORACLE: it reads that
diff); at full scale any `Expert`, e.g. `OpenAIExpert(show_gold_patch=True)`.

METHOD.md reports inserted calls as weaker than live collaboration; `protege.stages.dataset` keeps
the two sources apart so that SFT can be run on either (the data ablation).
"""

from __future__ import annotations

import copy
import random
import re
from dataclasses import dataclass
from typing import Any

from protege.agent.config import AgentConfig, system_message
from protege.agent.loop import render_ask, render_guidance
from protege.core.actions import Action
from protege.core.loop_detection import loop_heuristic_fires
from protege.core.protocols import Expert, ExpertRequest, Message
from protege.models.reference_expert import ReferenceExpert
from protege.models.scripted import EDIT_FAILED, split_patch

STRATEGIES = ("stall", "every_n", "random")
_TEST_RE = re.compile(r"\bpytest\b|\btox\b|\bunittest\b|runtests|\bmake test")
_FAILED_RE = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)
_TEST_ID_RE = re.compile(r"(tests?/\S+?\.py(?:::\S+)?)")
_SUMMARY_FAIL_RE = re.compile(r"\b\d+ (?:failed|errors?)\b")


@dataclass
class InsertConfig:
    """How calls are inserted."""

    strategy: str = "stall"  # stall | every_n | random
    every_n: int = 4  # every_n: a call before steps n, 2n, ...
    p: float = 0.2  # random: probability of a call before each eligible step
    max_calls: int = 2  # calls per trajectory at most; -1 = no cap
    min_explore_steps: int = 3  # stall: fallback call before the first edit after this many steps
    min_gap: int = 3  # steps between two inserted calls at least (no back-to-back asks)
    seed: int = 0  # random strategy and the expert's phrasing
    context_k: int = 5  # messages before the ask that the expert sees (as in the live loop)

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, not {self.strategy!r}")


def _actions(traj: dict[str, Any]) -> list[dict[str, Any] | None]:
    return [s.get("action") for s in traj.get("steps", [])]


def action_summary(action: dict[str, Any] | None) -> str:
    return Action(action["name"], action.get("arguments") or {}).summary() if action else ""


def is_test_run(action: dict[str, Any] | None) -> bool:
    """A bash action that runs tests.

    >>> is_test_run({"name": "bash", "arguments": {"command": "python -m pytest -q tests/t.py"}})
    True
    >>> is_test_run({"name": "bash", "arguments": {"command": "grep -rn pytest ."}})
    False
    """
    if not action or action["name"] != "bash":
        return False
    cmd = str(action["arguments"].get("command", ""))
    return bool(_TEST_RE.search(cmd)) and not cmd.lstrip().startswith(("grep", "rg ", "find ", "cat "))


def run_reports_failure(observation: str) -> bool:
    """Did a test run's output report a failure?

    >>> run_reports_failure("FAILED tests/t.py::test_a - assert 1 == 2\\n1 failed, 3 passed in 0.1s")
    True
    >>> run_reports_failure("4 passed in 0.02s")
    False
    """
    return bool(_FAILED_RE.search(observation) or _SUMMARY_FAIL_RE.search(observation))


def is_edit(action: dict[str, Any] | None) -> bool:
    """A source edit: an editor create/str_replace/insert, or a bash `git apply` / `patch`."""
    if not action:
        return False
    if action["name"] == "str_replace_editor":
        return action["arguments"].get("command") in ("create", "str_replace", "insert")
    cmd = str(action["arguments"].get("command", "")) if action["name"] == "bash" else ""
    return "git apply" in cmd or cmd.lstrip().startswith("patch ")


def _edit_paths(action: dict[str, Any] | None) -> set[str]:
    if not action:
        return set()
    if action["name"] == "str_replace_editor":
        return {str(action["arguments"].get("path", "")).lstrip("./")}
    cmd = str(action["arguments"].get("command", ""))
    return set(re.findall(r"^\+\+\+ b/(\S+)", cmd, re.MULTILINE)) | set(re.findall(r"--include=(\S+)", cmd))


def stall_points(traj: dict[str, Any], min_explore_steps: int = 3) -> list[int]:
    """Step indices p such that the trajectory is stuck just before step p (see module doc)."""
    steps = traj.get("steps", [])
    actions = _actions(traj)
    points: list[int] = []
    edited_since_test, failing_runs = False, 0
    for i, step in enumerate(steps[:-1]):
        action, obs = step.get("action"), str(step.get("observation") or "")
        if is_edit(action):
            if obs.startswith(EDIT_FAILED):
                points.append(i + 1)
            edited_since_test = True
        elif is_test_run(action):
            failed = run_reports_failure(obs)
            if failed and (edited_since_test or failing_runs >= 1):
                points.append(i + 1)
            failing_runs = failing_runs + 1 if failed else 0
            edited_since_test = False
        if loop_heuristic_fires([action_summary(a) for a in actions[: i + 1]]):
            points.append(i + 1)
    if not points:
        first_edit = next((i for i, a in enumerate(actions) if is_edit(a)), None)
        if first_edit is not None and first_edit >= min_explore_steps:
            points.append(first_edit)
    return sorted(set(points))


def choose_points(traj: dict[str, Any], config: InsertConfig) -> list[int]:
    """Where `config.strategy` inserts calls in `traj` (step indices; a call goes before that step)."""
    n = len(traj.get("steps", []))
    eligible = [p for p in range(1, n) if (_actions(traj)[p] or {}).get("name") != "submit"]
    if config.strategy == "stall":
        points = [p for p in stall_points(traj, config.min_explore_steps) if p in eligible]
    elif config.strategy == "every_n":
        points = [p for p in eligible if p % max(1, config.every_n) == 0]
    else:
        rng = random.Random(f"insert|{config.seed}|{traj.get('instance_id')}")
        points = [p for p in eligible if rng.random() < config.p]
    spaced: list[int] = []
    for p in points:
        if not spaced or p - spaced[-1] >= config.min_gap:
            spaced.append(p)
    return spaced[: config.max_calls] if config.max_calls >= 0 else spaced


def _failing_test(traj: dict[str, Any], upto: int) -> str | None:
    for step in reversed(traj.get("steps", [])[:upto]):
        if is_test_run(step.get("action")):
            if m := _FAILED_RE.search(str(step.get("observation") or "")):
                return m.group(1)
            if m := _TEST_ID_RE.search(str(step["action"]["arguments"].get("command", ""))):
                return m.group(1)
    return None


def question_at(traj: dict[str, Any], p: int, rng: random.Random) -> str:
    """A specific question from what the trajectory did before step p (never from what comes after)."""
    steps = traj.get("steps", [])[:p]
    test = _failing_test(traj, p) or "the failing test"
    last_edit = next((s for s in reversed(steps) if is_edit(s.get("action"))), None)
    files = [str(s["action"]["arguments"].get("path")) for s in steps
             if s.get("action") and s["action"]["name"] == "str_replace_editor"
             and s["action"]["arguments"].get("command") == "view"]
    if last_edit:
        path = sorted(_edit_paths(last_edit["action"])) or ["the code"]
        tried = f"I changed {path[0]}, but {test} still does not pass."
    elif files:
        tried = f"I read {files[-1]} but I cannot see what makes {test} fail."
    else:
        tried = f"I have not found where {test} goes wrong yet."
    return rng.choice([
        "{tried} Where exactly is the bug, and what should change?",
        "{tried} Which function is wrong, and what is the smallest fix?",
        "I am stuck. {tried} Can you point me to the faulty code?",
    ]).format(tried=tried)


def hindsight_patch(traj: dict[str, Any], p: int) -> str:
    """The trajectory's final diff restricted to the files it edits at or after step p."""
    later: set[str] = set()
    for action in _actions(traj)[p:]:
        if is_edit(action):
            later |= _edit_paths(action)
    files = split_patch(traj.get("patch") or "")
    keep = [fp for fp in files if fp.path.lstrip("./") in later or any(fp.path.endswith(x) for x in later)]
    if not keep:
        return ""
    blocks = re.split(r"(?=^diff --git )", traj.get("patch") or "", flags=re.MULTILINE)
    return "".join(b for b in blocks if any(f" b/{fp.path}\n" in b.split("\n", 1)[0] + "\n" for fp in keep))


def _done_guidance(traj: dict[str, Any], p: int, rng: random.Random) -> str:
    edited = sorted({x for a in _actions(traj)[:p] if is_edit(a) for x in _edit_paths(a)}) or ["the code"]
    return rng.choice([
        f"Your change to `{edited[0]}` addresses the issue. Run the tests to confirm, then submit.",
        f"That edit in `{edited[0]}` is the right fix. Check it with the failing test and the rest of the suite, then submit.",
    ])


def insert_calls(traj: dict[str, Any], config: InsertConfig, expert: Expert | None = None,
                 agent_config: AgentConfig | None = None) -> dict[str, Any]:
    """A copy of `traj` with ask_expert turns inserted by `config.strategy` (see module doc).

    The returned trajectory's messages and steps are renumbered, its system prompt offers
    ask_expert, and it carries ``inserted_strategy`` and ``n_inserted``."""
    expert = expert if expert is not None else ReferenceExpert(seed=config.seed)
    if agent_config is None:
        agent_config = AgentConfig.from_dict(traj["config"]) if traj.get("config") else AgentConfig()
    iid = traj.get("instance_id")
    _check_aligned(traj)
    points = set(choose_points(traj, config))
    rng = random.Random(f"question|{config.seed}|{iid}")
    messages: list[Message] = [{"role": "system", "content": system_message(agent_config, True)},
                               copy.deepcopy(traj["messages"][1])]
    steps_out, calls = [], []
    problem = str(traj["messages"][1].get("content") or "")
    for p, step in enumerate(traj["steps"]):
        assistant = copy.deepcopy(traj["messages"][2 + 2 * p])
        observation = traj["messages"][3 + 2 * p] if 3 + 2 * p < len(traj["messages"]) else None
        if p in points:
            question = question_at(traj, p, rng)
            context = messages[-config.context_k:] if config.context_k > 0 else []
            patch = hindsight_patch(traj, p)
            if patch:
                reply = expert.advise(ExpertRequest(question, context, iid, problem, gold_patch=patch))
                text, failed = reply.text, reply.failed
                tokens = (reply.input_tokens, reply.output_tokens)
            else:
                text, failed, tokens = _done_guidance(traj, p, rng), False, (0, 0)
            if not failed:
                idx = len(steps_out)
                messages.append({"role": "assistant", "content": render_ask(question, agent_config.interface)})
                guidance = render_guidance(text, agent_config.interface)
                messages.append({"role": "user", "content": guidance})
                steps_out.append({"index": idx, "action": {"name": "ask_expert", "arguments": {"question": question}},
                                  "observation": guidance, "text": messages[-2]["content"], "forced": False,
                                  "error": None, "inserted": True})
                calls.append({"step": idx, "question": question, "reply": text.strip(), "oracle": bool(expert.oracle),
                              "failed": False, "error": None, "input_tokens": tokens[0], "output_tokens": tokens[1],
                              "cost_usd": 0.0, "forced": False, "duration_s": 0.0, "inserted": True,
                              "hindsight": bool(patch)})
        new_step = {**copy.deepcopy(step), "index": len(steps_out)}
        steps_out.append(new_step)
        messages.append(assistant)
        if observation is not None:
            messages.append(copy.deepcopy(observation))
    out = copy.deepcopy({k: v for k, v in traj.items() if k not in ("messages", "steps", "expert_calls")})
    out.update(messages=messages, steps=steps_out, expert_calls=calls, inserted_strategy=config.strategy,
               n_inserted=len(calls), expert=getattr(expert, "name", ""), ask_expert=True)
    return _recounted(out)


def _check_aligned(traj: dict[str, Any]) -> None:
    """One assistant message and one observation per step (none after a final submit), no policy errors."""
    steps = traj.get("steps") or []
    ended = bool(steps) and (steps[-1].get("action") or {}).get("name") == "submit"
    if not steps or any(s.get("error") == "policy" for s in steps) or \
            len(traj.get("messages", [])) != 2 + 2 * len(steps) - ended:
        raise ValueError(f"trajectory {traj.get('instance_id')!r}: fields 'steps' and 'messages' do not line up "
                         "(one assistant message and one observation per step expected)")


def _recounted(out: dict[str, Any]) -> dict[str, Any]:
    """Step, call and expert-token counts of a trajectory after insertion."""
    calls = out["expert_calls"]
    counts = dict(out.get("counts") or {})
    counts.update(steps=len(out["steps"]), expert_calls=len(calls))
    tokens = dict(out.get("tokens") or {})
    tokens["expert_input"] = sum(c["input_tokens"] for c in calls)
    tokens["expert_output"] = sum(c["output_tokens"] for c in calls)
    out.update(counts=counts, tokens=tokens)
    return out


