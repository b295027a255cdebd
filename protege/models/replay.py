"""A policy that plays recorded episodes back: each episode's generations, in order, from its
trajectory record. Run through the same loop, expert and sandbox, a record replays to the same
messages, observations, expert calls and patch; where it does not, something outside the model
changed (the environment, the expert, the loop), which is what a replay is for.

The protégé's own outputs are all the record needs: the loop derives everything else again (the
tool runs, the expert's reply, forced asks of an invocation baseline, the token interface's cut at
`<<collaborate>>`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protege.agent.tools import parse_text
from protege.core.actions import Action
from protege.core.protocols import Generation, Message
from protege.core.trajectory import Trajectory, load_trajectory


def recorded_generations(traj: Trajectory) -> list[Generation]:
    """The policy's generations of one recorded episode (forced steps were the loop's, not the
    policy's). A call an endpoint returned structured, not in its text, comes back structured (under a
    call id of its own)."""
    out = []
    for step in traj.steps:
        if step.forced:
            continue
        gen = Generation(step.text, step.prompt_tokens, step.completion_tokens)
        if step.error == "policy":
            gen.error = step.observation.removeprefix("[policy error: ").removesuffix("]")
        elif step.action and step.action["name"] != "ask_expert":
            parsed = parse_text(step.text)
            recorded = Action(step.action["name"], step.action["arguments"])
            if not isinstance(parsed, Action) or parsed.key() != recorded.key():
                gen.tool_calls = [{"id": f"replay-{step.index}", "type": "function", "function": {
                    "name": recorded.name, "arguments": recorded.arguments}}]
        out.append(gen)
    return out


def record_files(run_dir: Path) -> list[Path]:
    """The trajectory files of a run folder (its `trajectories/`, or the folder itself)."""
    folder = run_dir / "trajectories" if (run_dir / "trajectories").is_dir() else run_dir
    files = sorted(folder.glob("*.json"))
    if not files:
        raise ValueError(f"replay: no trajectory files (*.json) in {folder}")
    return files


def _first_user(conversation: list[Message]) -> Message:
    # the first user message carries the issue: it names the episode
    return next((m for m in conversation if m.get("role") == "user"), {})


def _episode_key(conversation: list[Message]) -> str:
    return str(_first_user(conversation).get("content") or "")


@dataclass
class ReplayPolicy:
    """Recorded trajectories (objects or trajectory JSON files) played back, matched to each conversation by
    its first user message (the issue). Records that share an issue text (two tasks with one issue
    template) are claimed in record order, one per episode, the first time an episode with that text
    asks; the episode keeps its claim through the loop's message objects (the loop's context views
    reuse them), so run the tasks in record order (`protege agent run` does). Past the end of a record
    it fails the turn with an error, so a replay that diverges ends visibly instead of inventing
    actions."""

    records: Iterable[Trajectory | str | Path]
    name: str = "replay"
    # unclaimed records by issue text, in record order: (instance id, generations)
    _pending: dict[str, list[tuple[str, list[Generation]]]] = field(default_factory=dict, init=False, repr=False)
    # claimed records by the id of the episode's first user message (the message is held, so the id stays its own)
    _claims: dict[int, tuple[Message, str, list[Generation]]] = field(default_factory=dict, init=False, repr=False)
    # what the records ran under and on: a replay runs the same (protege agent run)
    agent_config: dict[str, Any] = field(default_factory=dict, init=False)
    instance_ids: list[str] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        for record in self.records:
            traj = record if isinstance(record, Trajectory) else load_trajectory(record)
            self.agent_config = self.agent_config or traj.config
            self.instance_ids.append(traj.instance_id)
            self._pending.setdefault(_episode_key(traj.messages), []).append(
                (traj.instance_id, recorded_generations(traj)))

    def _claim(self, conv: list[Message]) -> tuple[Message, str, list[Generation]] | None:
        first = _first_user(conv)
        if not first:
            return None
        if id(first) not in self._claims:
            pending = self._pending.get(str(first.get("content") or ""))
            if not pending:
                return None
            self._claims[id(first)] = (first, *pending.pop(0))
        return self._claims[id(first)]

    def generate(self, conversations: list[list[Message]], tools: list[dict[str, Any]]) -> list[Generation]:
        out = []
        for conv in conversations:
            claim = self._claim(conv)
            if claim is None:
                out.append(Generation("", error="replay: no recorded episode (left) has this issue text"))
            elif not claim[2]:
                out.append(Generation("", error=f"replay: the record of {claim[1]!r} has no more generations"))
            else:
                out.append(claim[2].pop(0))
        return out
