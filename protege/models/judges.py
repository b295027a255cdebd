"""Judges of expert calls (the paper's hidden call): was the call warranted, was its advice
followed? Behind the small `Judge` protocol: `HeuristicJudge` (offline, deterministic, a
documented heuristic for smoke/small runs) and `OpenAIJudge` (the expert model through an
OpenAI-compatible endpoint, for full scale; it falls back to the heuristic for any call it cannot
score). The reward terms that use their scores are pure functions in `protege.stages.rewards`."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from protege.core.actions import Action
from protege.core.loop_detection import loop_heuristic_fires
from protege.core.protocols import ExpertRequest
from protege.models.experts import OpenAIExpert

ASK = "ask_expert"  # the action summary of an ask_expert call (protege.agent.tools.Action.summary)


@dataclass
class JudgeScore:
    """The judge's view of one answered expert call."""

    warranted: float  # u in [0, 1]: was asking justified at that point?
    followed: float  # f in [0, 1]: did the agent act on the advice?
    source: str = "heuristic"  # which judge scored it ("...-fallback" when the judge failed)


@dataclass
class CallView:
    """What a judge sees of one answered call: the actions before and after it, the last
    observation before it, the question and the reply. Built by `call_views`."""

    question: str
    reply: str
    actions_before: list[str]  # action summaries before the ask
    last_observation: str  # the observation just before the ask
    after: list[dict[str, Any]]  # the next actions as {"name", "arguments"} (format errors left out)


@runtime_checkable
class Judge(Protocol):
    name: str

    def score(self, views: list[CallView], problem_statement: str = "") -> list[JudgeScore]: ...


_STALL = re.compile(r"Traceback|FAILED|\bError\b|error:|No replacement was performed|Format error|"
                    r"AssertionError|not found|No such file", re.IGNORECASE)
_PATHISH = re.compile(r"[\w./-]+\.(?:py|cfg|toml|txt|md|json|ya?ml)\b")
_BACKTICKED = re.compile(r"`([A-Za-z_][\w.]*)`")


@dataclass
class HeuristicJudge:
    """A deterministic HEURISTIC stand-in for the paper's expert judge (offline; smoke/small).

    warranted u: 0 for an ask right after an ask; 1 when the agent was stalled (the loop
    heuristic fires on the actions before the ask, or the last observation reports a failure);
    0.5 after at least `min_explore` actions otherwise; 0 for an ask before exploring.
    followed f (the next `follow_window` actions): 1 when an action names a file or a
    backticked identifier of the reply; 0.5 when the agent at least does something new (not
    an ask, not the action it was repeating); 0 otherwise, or when nothing follows.
    """

    min_explore: int = 3
    follow_window: int = 3
    name: str = "heuristic-judge"

    def score(self, views: list[CallView], problem_statement: str = "") -> list[JudgeScore]:
        return [JudgeScore(self.warranted(v), self.followed(v), "heuristic") for v in views]

    def warranted(self, view: CallView) -> float:
        """
        >>> j = HeuristicJudge()
        >>> j.warranted(CallView("q", "r", ["ls", "cat a", "cat b", "cat c", "cat d"], "", []))
        1.0
        >>> j.warranted(CallView("q", "r", ["ls"], "", []))
        0.0
        >>> j.warranted(CallView("q", "r", ["ls", "cat a", "pytest", "ask_expert"], "", []))
        0.0
        >>> j.warranted(CallView("q", "r", ["ls", "cat a", "pytest"], "", []))
        0.5
        >>> j.warranted(CallView("q", "r", ["ls"], "FAILED tests/test_a.py::t", []))
        1.0
        """
        before = view.actions_before
        if before and before[-1] == ASK:
            return 0.0
        if loop_heuristic_fires(before) or _STALL.search(view.last_observation or ""):
            return 1.0
        return 0.5 if len(before) >= self.min_explore else 0.0

    def followed(self, view: CallView) -> float:
        """
        >>> j = HeuristicJudge()
        >>> edit = {"name": "str_replace_editor", "arguments": {"command": "view", "path": "src/m.py"}}
        >>> j.followed(CallView("q", "Look at `parse` in `src/m.py`.", ["ls"], "", [edit]))
        1.0
        >>> pwd = {"name": "bash", "arguments": {"command": "pwd"}}
        >>> ls = {"name": "bash", "arguments": {"command": "ls"}}
        >>> j.followed(CallView("q", "Look at `parse`.", ["ls"], "", [pwd]))
        0.5
        >>> j.followed(CallView("q", "Look at `parse`.", ["ls"], "", []))
        0.0
        >>> j.followed(CallView("q", "x", ["ls"], "", [ls]))
        0.0
        """
        after = view.after[: self.follow_window]
        if not after:
            return 0.0
        targets = set(_PATHISH.findall(view.reply)) | set(_BACKTICKED.findall(view.reply))
        targets |= {t.rsplit("/", 1)[-1] for t in targets if "/" in t}
        text = " ".join(json.dumps(a.get("arguments", {})) for a in after)
        if any(len(t) >= 3 and t in text for t in targets):  # short names match anything
            return 1.0
        first = _summary(after[0])
        repeating = view.actions_before[-1] if view.actions_before else None
        return 0.5 if first != ASK and first != repeating else 0.0


JUDGE_SYSTEM_PROMPT = """\
You review one moment of an AI software-engineering agent's work: it asked a senior engineer \
for advice. Score two things from 0 to 1. "warranted": was asking justified at that point (the \
agent was stuck, looping or facing an error it could not resolve) rather than premature or \
repetitive? "followed": did the agent's next actions act on the advice? Answer with JSON only: \
{"warranted": <0..1>, "followed": <0..1>}"""


def parse_judge_reply(text: str) -> tuple[float, float] | None:
    """(warranted, followed) from a judge's JSON reply, clamped to [0, 1]; None if unreadable.

    >>> parse_judge_reply('Sure. {"warranted": 0.8, "followed": 1.4}')
    (0.8, 1.0)
    >>> parse_judge_reply("no idea") is None
    True
    """
    match = re.search(r"\{.*?\}", text or "", re.DOTALL)
    if not match:
        return None
    try:
        data = json.loads(match.group(0))
        u, f = float(data["warranted"]), float(data["followed"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    return min(1.0, max(0.0, u)), min(1.0, max(0.0, f))


@dataclass
class OpenAIJudge:
    """The expert model as judge, through an OpenAI-compatible endpoint (full scale). It uses
    `protege.models.experts.OpenAIExpert` for the client, retries and cost accounting; a call that
    fails or returns no readable JSON is scored by `fallback` (source "heuristic-fallback")."""

    model: str = "gpt-4o-mini"
    base_url: str | None = None  # None = api.openai.com
    api_key_env: str = "OPENAI_API_KEY"  # the key is read from this variable only
    timeout_s: float = 60.0
    max_retries: int = 4
    max_tokens: int = 64
    follow_window: int = 3  # actions after the call that the judge sees
    fallback: Judge = field(default_factory=HeuristicJudge)
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or f"openai-judge:{self.model}"
        self.client = OpenAIExpert(base_url=self.base_url, model=self.model, api_key_env=self.api_key_env,
                                   timeout_s=self.timeout_s, max_retries=self.max_retries, max_tokens=self.max_tokens,
                                   temperature=0.0, context_messages=0, system_prompt=JUDGE_SYSTEM_PROMPT)
        self.cost_usd = 0.0

    def prompt(self, view: CallView) -> str:
        after = "\n".join(f"- {_summary(a)}" for a in view.after[: self.follow_window])
        after = after or "- (nothing: the episode ended)"
        before = "\n".join(f"- {a}" for a in view.actions_before[-8:]) or "- (nothing yet)"
        return (f"The agent's actions before asking:\n{before}\n\nThe last observation before asking:\n"
                f"{(view.last_observation or '')[-1500:]}\n\nThe agent asked:\n{view.question}\n\n"
                f"The advice:\n{view.reply[:3000]}\n\nThe agent's next actions:\n{after}\n\n"
                'Reply with JSON only: {"warranted": <0..1>, "followed": <0..1>}')

    def score(self, views: list[CallView], problem_statement: str = "") -> list[JudgeScore]:
        scores = []
        for view in views:
            reply = self.client.advise(ExpertRequest(self.prompt(view), [], "judge", problem_statement))
            self.cost_usd += reply.cost_usd
            parsed = None if reply.failed else parse_judge_reply(reply.text)
            if parsed is None:
                fb = self.fallback.score([view], problem_statement)[0]
                scores.append(JudgeScore(fb.warranted, fb.followed, "heuristic-fallback"))
            else:
                scores.append(JudgeScore(*parsed, source="openai"))
        return scores


def _summary(action: dict[str, Any]) -> str:
    return Action(action.get("name", ""), action.get("arguments") or {}).summary()


def call_views(traj: Any) -> list[CallView]:
    """One `CallView` per answered (not failed) expert call of a `protege.core.trajectory.Trajectory`."""
    views = []
    for call in traj.expert_calls:
        if call.failed:
            continue
        before = [s for s in traj.steps[: call.step] if s.action]
        after = [s.action for s in traj.steps[call.step + 1:] if s.action]
        last_obs = traj.steps[call.step - 1].observation if call.step > 0 else ""
        views.append(CallView(call.question, call.reply, [_summary(s.action) for s in before], last_obs, after))
    return views
