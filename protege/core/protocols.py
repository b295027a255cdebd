"""The small interfaces the agent loop is built from: Policy (the protégé) and Expert.

Messages are OpenAI chat dicts: {"role": "system"|"user"|"assistant"|"tool", "content": str,
optionally "tool_calls" / "tool_call_id" / "name"}. Tools are OpenAI function schemas.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

Message = dict[str, Any]


@dataclass
class Generation:
    """One completion of a policy for one episode."""

    text: str  # raw completion text (tool calls parsed later by protege.agent.tools)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # Filled by local policies for RL: the exact token ids and their log-probs under the
    # sampling policy (empty for remote endpoints).
    prompt_ids: list[int] = field(default_factory=list)
    completion_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] | None = None  # structured calls when the endpoint returns them
    finish_reason: str = ""
    error: str | None = None  # the endpoint failed; the loop records it and goes on


@runtime_checkable
class Policy(Protocol):
    """The protégé: the only actor. Generates for many episodes at once (batched)."""

    name: str

    def generate(self, conversations: list[list[Message]], tools: list[dict[str, Any]]) -> list[Generation]: ...


@dataclass
class ExpertRequest:
    question: str
    context: list[Message]  # the last K messages of the trajectory
    instance_id: str
    problem_statement: str = ""
    gold_patch: str | None = None  # only for oracle experts (reference expert, data generation)
    # Oracle experts only: the current text of the files the gold patch changes, by path, so an
    # exact edit is anchored on text that is unique in the file as it stands (None: not read)
    files: Mapping[str, str] | None = None


@dataclass
class ExpertReply:
    text: str
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    failed: bool = False  # the call failed after retries; `text` says why
    error: str | None = None
    oracle: bool = False  # the guidance was built from the gold patch
    meta: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Expert(Protocol):
    name: str
    oracle: bool  # True when the expert reads the gold patch: always labelled in records

    def advise(self, request: ExpertRequest) -> ExpertReply: ...
