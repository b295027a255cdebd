"""Baseline invocation policies for the ablation (paper Fig. 7): who decides when to ask.

Each baseline has one method, `should_force_ask(episode) -> str | None`: a question to inject
as an `ask_expert` action this step, or None. "learned" means no baseline (`None`): the
policy decides. With a baseline active the policy's own asks are still honoured unless
`block_policy_asks` is set. The loop never forces an ask once the expert-call cap is spent.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from protege.agent.loop import Episode
from protege.core.loop_detection import loop_heuristic_fires

QUESTION = ("I am working on this issue. Given my recent steps, what is the most likely cause "
            "of the bug and what should I do next?")
LOOP_QUESTION = ("I seem to be repeating myself without progress. Given my recent steps, what "
                 "should I try instead?")


@dataclass
class Never:
    block_policy_asks: bool = False

    def should_force_ask(self, episode: Episode) -> str | None:
        return None


@dataclass
class EveryN:
    """Ask at steps n, 2n, 3n, ... (0-based step index of the injected ask)."""

    n: int = 10
    question: str = QUESTION
    block_policy_asks: bool = False

    def should_force_ask(self, episode: Episode) -> str | None:
        step = episode.n_steps
        return self.question if step > 0 and step % self.n == 0 else None


@dataclass
class Random:
    """Ask with probability p at each step; the draw depends only on (seed, instance, step),
    so it does not change with batch composition or order."""

    p: float = 0.1
    seed: int = 0
    question: str = QUESTION
    block_policy_asks: bool = False

    def should_force_ask(self, episode: Episode) -> str | None:
        rng = random.Random(f"{self.seed}:{episode.task.instance_id}:{episode.n_steps}")
        return self.question if episode.n_steps > 0 and rng.random() < self.p else None


@dataclass
class OnLoop:
    """Ask when `protege.core.loop_detection.loop_heuristic_fires`, at most once every `cooldown` steps."""

    run_length: int = 4
    window: int = 5
    cooldown: int = 5
    question: str = LOOP_QUESTION
    block_policy_asks: bool = False

    def should_force_ask(self, episode: Episode) -> str | None:
        last = episode.last_ask_step
        if last is not None and episode.n_steps - last <= self.cooldown:
            return None
        fires = loop_heuristic_fires(episode.actions, self.run_length, self.window)
        return self.question if fires else None


def parse_invocation(spec: str, seed: int = 0, block_policy_asks: bool = False):
    """A baseline from a short spec: learned | never | every:N | random:P | on_loop.

    >>> parse_invocation("every:8")
    EveryN(n=8, question='I am working on this issue. Given my recent steps, what is the most likely cause of the bug and what should I do next?', block_policy_asks=False)
    >>> parse_invocation("learned") is None
    True
    """
    name, _, arg = spec.partition(":")
    if name == "learned":
        return None
    if name == "never":
        return Never(block_policy_asks)
    if name == "every":
        return EveryN(int(arg or 10), block_policy_asks=block_policy_asks)
    if name == "random":
        return Random(float(arg or 0.1), seed, block_policy_asks=block_policy_asks)
    if name == "on_loop":
        return OnLoop(block_policy_asks=block_policy_asks)
    raise ValueError(f"unknown invocation {spec!r} (use learned, never, every:N, random:P or on_loop)")
