"""What SFT trains on, without any training framework: the windows of a long conversation and
the tokens (with the loss mask) of each window. Pure functions of messages and a tokenizer; stage 03
(`protege.stages.sft`) hands their output to TRL.

What the model is trained on
    Every row is rendered exactly as the agent loop shows it to the policy at inference:
    `protege.stages.dataset.agent_messages(row["messages"])` through the tokenizer's chat template with
    `tools=json.loads(row["tools"])` (`TransformersPolicy.generate` does the same). Rows are
    tokenised here, not by TRL, into `input_ids` + `assistant_masks`: the loss falls only on the
    protégé's own turns (its reasoning, its ``<tool_call>`` and the end-of-turn token, so that it
    learns to stop); the system prompt, the task, tool observations, expert guidance and the
    context note are masked. Turn boundaries come from rendering prefixes of the conversation
    with the chat template and diffing them, so any template works, including ones without
    ``{% generation %}`` markers (SmolLM2's, ours). Each segment is tokenised on its own, so the
    context of a window's first trained turn has exactly the inference prompt's tokens and every
    turn is tokenised as a standalone completion (later turns' contexts join segment tokens).

Long conversations (`SFTRunConfig.long_policy`)
    "window" (default): a conversation longer than `max_length` tokens is split into windows. A
        window looks exactly like what `protege.agent.loop.context_view` shows at inference when the
        history is too long: system prompt + task, the note "[N earlier messages left out to fit
        the context]", every expert-guidance message given so far, then the most recent messages.
        Each assistant turn is trained in exactly one window; a window also carries at least the
        latest exchange before its first trained turn (as `context_view` always keeps it) and
        as much earlier history as still fits. A turn that cannot fit even with that minimal
        context is never silently lost: it is counted in `dropped_turns`.
    "drop": a conversation longer than `max_length` is left out whole (`dropped_conversations`).
    "error": a conversation longer than `max_length` raises ValueError.
    Every sequence handed to TRL is at most `max_length` tokens, and `train` checks that TRL's own
    truncation / filtering changed nothing (it would otherwise cut or drop examples silently).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from protege.agent.loop import is_guidance
from protege.core.protocols import Message
from protege.stages.dataset import agent_messages

LONG_POLICIES = ("window", "drop", "error")
NOTE = "[{n} earlier messages left out to fit the context]"  # protege.agent.loop.context_view's note
HEAD = 2  # system prompt + task: always shown, never trained


# ----------------------------------------------------------------------------------------------
# Windows: pure planning over per-message token lengths, then the messages of each window.


@dataclass(frozen=True)
class Window:
    """Messages [start, end] of a conversation shown after its head (+ note + earlier guidance);
    `trained` are the assistant message indices whose loss this window carries."""

    start: int
    end: int
    trained: tuple[int, ...]


def plan_windows(lengths: list[int], kinds: list[str], max_length: int,
                 note_length: int) -> tuple[list[Window], list[int]]:
    """Split one conversation into windows of at most `max_length` (estimated) tokens.

    lengths[i]: tokens message i adds to the rendered conversation (lengths[0] + lengths[1]: the
    system prompt with its tools and the task); kinds[i]: "assistant" | "guidance" | "other";
    note_length: tokens of the "[N earlier messages left out ...]" note. Returns (windows,
    dropped assistant indices). Windows are greedy: as many turns as fit, then as much earlier
    history as still fits.

    >>> kinds = ["other", "other"] + ["assistant", "other"] * 4
    >>> plan_windows([50, 10] + [5, 20] * 4, kinds, 200, 3)  # fits whole (the last observation is not needed)
    ([Window(start=2, end=8, trained=(2, 4, 6, 8))], [])
    >>> windows, dropped = plan_windows([50, 10] + [5, 20] * 4, kinds, 100, 3)
    >>> windows
    [Window(start=2, end=4, trained=(2, 4)), Window(start=4, end=6, trained=(6,)), Window(start=6, end=8, trained=(8,))]
    >>> plan_windows([50, 10, 5, 90, 5, 5], ["other", "other", "assistant", "other", "assistant", "other"], 100, 3)
    ([Window(start=2, end=2, trained=(2,))], [4])
    """
    n = len(lengths)
    head = sum(lengths[:HEAD])
    assistants = [i for i in range(HEAD, n) if kinds[i] == "assistant"]

    def size(start: int, end: int) -> int:
        skipped = [k for k in range(HEAD, start) if kinds[k] != "guidance"]
        guidance = sum(lengths[k] for k in range(HEAD, start) if kinds[k] == "guidance")
        return head + (note_length if skipped else 0) + guidance + sum(lengths[start:end + 1])

    windows: list[Window] = []
    dropped: list[int] = []
    k = 0
    while k < len(assistants):
        first = assistants[k]
        start = max(HEAD, first - 2)  # the latest exchange always stays (as in context_view)
        if size(start, first) > max_length:
            dropped.append(first)
            k += 1
            continue
        last = k
        while last + 1 < len(assistants) and size(start, assistants[last + 1]) <= max_length:
            last += 1
        end = assistants[last]
        while start > HEAD and size(start - 1, end) <= max_length:
            start -= 1
        windows.append(Window(start, end, tuple(assistants[k:last + 1])))
        k = last + 1
    return windows, dropped


def window_view(messages: list[Message], window: Window) -> tuple[list[Message], list[int]]:
    """The messages of one window, in the form `context_view` gives them, and the positions of
    its trained turns in that list.

    >>> msgs = [{"role": "system", "content": "s"}, {"role": "user", "content": "t"},
    ...         {"role": "assistant", "content": "a0"}, {"role": "user", "content": "<expert_guidance>g"},
    ...         {"role": "assistant", "content": "a1"}, {"role": "user", "content": "o1"},
    ...         {"role": "assistant", "content": "a2"}]
    >>> view, trained = window_view(msgs, Window(start=5, end=6, trained=(6,)))
    >>> [m["content"] for m in view], trained
    (['s', 't', '[2 earlier messages left out to fit the context]', '<expert_guidance>g', 'o1', 'a2'], [5])
    """
    skipped = [k for k in range(HEAD, window.start) if not is_guidance(messages[k])]
    guidance = [messages[k] for k in range(HEAD, window.start) if is_guidance(messages[k])]
    note = [{"role": "user", "content": NOTE.format(n=len(skipped))}] if skipped else []
    view = [*messages[:HEAD], *note, *guidance, *messages[window.start:window.end + 1]]
    offset = len(view) - (window.end + 1 - window.start) - window.start
    return view, [offset + i for i in window.trained]


# ----------------------------------------------------------------------------------------------
# Tokenisation: loss on the protégé's turns only.


def render(tokenizer, messages: list[Message], tools: list[dict] | None, generation_prompt: bool = False) -> str:
    """The chat-template text, as `TransformersPolicy.generate` renders its prompts."""
    return tokenizer.apply_chat_template(messages, tools=tools or None, tokenize=False,
                                         add_generation_prompt=generation_prompt)


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False).input_ids if text else []


def tokenize_view(tokenizer, messages: list[Message], tools: list[dict] | None,
                  trained: list[int]) -> tuple[list[int], list[int]]:
    """(input_ids, assistant_masks) of a conversation rendered with the chat template; mask 1 on
    the turns in `trained` (their text and end-of-turn token, not the whitespace after it).

    The text before each trained turn is the rendering of the messages before it with the
    generation prompt; the turn is what the rendering including it adds. Each segment is
    tokenised on its own, so a turn's context tokens equal the inference prompt's."""
    full = render(tokenizer, messages, tools)
    ids: list[int] = []
    mask: list[int] = []
    pos = 0
    for i in trained:
        if messages[i].get("role") != "assistant":
            raise ValueError(f"message {i} is {messages[i].get('role')!r}: only assistant turns are trained")
        before = render(tokenizer, messages[:i], tools, generation_prompt=True)
        through = render(tokenizer, messages[:i + 1], tools)
        if not (through.startswith(before) and full.startswith(through) and len(before) >= pos):
            raise ValueError("the chat template does not render conversations prefix-consistently, so assistant "
                             f"turns cannot be located by rendering prefixes (at message {i})")
        end = len(through.rstrip())
        if end <= len(before):
            raise ValueError(f"assistant message {i} renders to no text")
        for text, bit in ((full[pos:len(before)], 0), (full[len(before):end], 1)):
            piece = _ids(tokenizer, text)
            ids += piece
            mask += [bit] * len(piece)
        pos = end
    tail = _ids(tokenizer, full[pos:])
    return ids + tail, mask + [0] * len(tail)


@dataclass
class TokenStats:
    """What tokenisation made of one split (all counts, tokens are the model's tokens)."""

    conversations: int = 0  # rows read
    windows: int = 0  # training sequences written
    split_conversations: int = 0  # conversations that became more than one window
    dropped_conversations: int = 0  # conversations with no trained turn left (long_policy or too long turns)
    assistant_turns: int = 0  # protégé turns in the rows
    trained_turns: int = 0  # protégé turns carrying loss (each in exactly one window)
    dropped_turns: int = 0  # protégé turns that fit in no window, or of dropped conversations
    conversation_tokens: int = 0  # tokens of the conversations rendered whole (up to their last turn)
    tokens: int = 0  # tokens of all windows (context repeated across windows counts again)
    trained_tokens: int = 0  # tokens carrying loss
    max_window_tokens: int = 0  # longest sequence
    dropped_instances: list[str] = field(default_factory=list)  # instance ids with dropped turns

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _kind(message: Message) -> str:
    if message.get("role") == "assistant":
        return "assistant"
    return "guidance" if is_guidance(message) else "other"


def tokenize_conversation(tokenizer, messages: list[Message], tools: list[dict] | None, max_length: int,
                          long_policy: str = "window") -> tuple[list[dict[str, list[int]]], list[int], list[Window]]:
    """Windows of one agent-form conversation as {"input_ids", "assistant_masks"} examples, with
    the dropped assistant indices and the windows. Every example has at most `max_length` tokens."""
    kinds = [_kind(m) for m in messages]
    assistants = [i for i in range(HEAD, len(messages)) if kinds[i] == "assistant"]
    if not assistants:
        return [], [], []
    messages = messages[:assistants[-1] + 1]  # what follows the last turn teaches nothing
    whole = Window(HEAD, assistants[-1], tuple(assistants))
    ids, mask = tokenize_view(tokenizer, messages, tools, assistants)
    if len(ids) <= max_length:
        return [{"input_ids": ids, "assistant_masks": mask}], [], [whole]
    if long_policy == "error":
        raise ValueError(f"a conversation of {len(ids)} tokens exceeds max_length = {max_length} "
                         "(long_policy='error'; use 'window' to split it or 'drop' to leave it out)")
    if long_policy == "drop":
        return [], assistants, []
    texts = [render(tokenizer, messages[:k], tools) for k in range(HEAD, len(messages) + 1)]
    lengths = [len(_ids(tokenizer, texts[0])), 0]
    lengths += [len(_ids(tokenizer, texts[k + 1][len(texts[k]):])) for k in range(len(texts) - 1)]
    note_text = render(tokenizer, [*messages[:HEAD], {"role": "user", "content": NOTE.format(n=10**6)}], tools)
    note_length = len(_ids(tokenizer, note_text[len(texts[0]):]))
    budget = max_length
    for _ in range(8):  # the planner's lengths are per-message estimates; tighten until exact sizes fit
        windows, dropped = plan_windows(lengths, kinds, budget, note_length)
        examples, over = [], 0
        for window in windows:
            view, trained = window_view(messages, window)
            ids, mask = tokenize_view(tokenizer, view, tools, trained)
            over = max(over, len(ids) - max_length)
            examples.append({"input_ids": ids, "assistant_masks": mask})
        if over <= 0:
            return examples, dropped, windows
        budget -= over
    raise RuntimeError(f"could not fit windows into max_length = {max_length} (estimates keep overshooting)")


def tokenize_rows(rows: list[dict[str, Any]], tokenizer, max_length: int,
                  long_policy: str = "window") -> tuple[list[dict[str, list[int]]], TokenStats]:
    """Dataset rows (TRL tool-calling form) as pre-tokenised examples for SFTTrainer, with counts."""
    stats = TokenStats()
    examples: list[dict[str, list[int]]] = []
    for row in rows:
        messages = agent_messages(row["messages"])
        tools = json.loads(row["tools"]) if isinstance(row.get("tools"), str) else row.get("tools")
        out, dropped, windows = tokenize_conversation(tokenizer, messages, tools, max_length, long_policy)
        n_turns = sum(1 for m in messages[HEAD:] if m.get("role") == "assistant")
        stats.conversations += 1
        stats.assistant_turns += n_turns
        stats.windows += len(out)
        stats.split_conversations += len(out) > 1
        stats.dropped_conversations += not out
        stats.trained_turns += sum(len(w.trained) for w in windows)
        stats.dropped_turns += len(dropped)
        if dropped:
            stats.dropped_instances.append(str(row.get("instance_id")))
        last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=HEAD - 1)
        stats.conversation_tokens += len(_ids(tokenizer, render(tokenizer, messages[:last + 1], tools)))
        for ex in out:
            stats.tokens += len(ex["input_ids"])
            stats.trained_tokens += sum(ex["assistant_masks"])
            stats.max_window_tokens = max(stats.max_window_tokens, len(ex["input_ids"]))
        examples += out
    return examples, stats
