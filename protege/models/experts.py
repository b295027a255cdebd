"""Experts the protégé may consult: an OpenAI-compatible model, an offline oracle built from
the gold patch (always labelled as such), and a wrapper that sometimes misleads."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from protege.core.protocols import ExpertReply, ExpertRequest, Message

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


def estimate_tokens(text: str) -> int:
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


