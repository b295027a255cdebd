"""What the model does, as data: one parsed tool call (`Action`) or a reply with none
(`FormatError`), and the format the model is told to use. The parser and the tools themselves
are `protege.agent.tools`; trajectories (`protege.core.trajectory`) store these."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

TOOL_NAMES = ("bash", "str_replace_editor", "ask_expert", "submit")

# The two ways a protégé asks (AgentConfig.interface): "tool", the paper's ask_expert tool call; "token",
# the blog write-up's design (docs/METHOD.md), where the protégé writes COLLABORATE, the loop sends the
# history to the expert and appends its reply after EXPERT_REPLY_PREFIX. The token is one added token of
# the tokenizer (protege.models.engine.add_collaborate_token); generation stops at it.
INTERFACES = ("tool", "token")
COLLABORATE = "<<collaborate>>"
EXPERT_REPLY_PREFIX = "[Expert]:"

def _format_help(tools: tuple[str, ...]) -> str:
    asks = ' {"name": "ask_expert", "arguments": {"question": "..."}},' if "ask_expert" in tools else ""
    return ("Reply with exactly one tool call per turn, in this format:\n"
            '<tool_call>\n{"name": "bash", "arguments": {"command": "ls"}}\n</tool_call>\n'
            f"Tools: {', '.join(tools)}. For example: "
            '{"name": "str_replace_editor", "arguments": {"command": "view", "path": "src/module.py"}},'
            f'{asks} {{"name": "submit", "arguments": {{}}}}.')


FORMAT_HELP = _format_help(TOOL_NAMES)
TOKEN_FORMAT_HELP = _format_help(tuple(t for t in TOOL_NAMES if t != "ask_expert"))  # the token interface's
# The compact prompt's format line (AgentConfig.tool_text = "short"), repeated after a format error:
# no example path, which a small protégé would copy into its next call (docs/LOG.md 2026-12-02).
SHORT_FORMAT_HELP = 'One tool call per turn: <tool_call>{"name": ..., "arguments": {...}}</tool_call>'


@dataclass
class Action:
    """One parsed tool call."""

    name: str  # one of TOOL_NAMES
    arguments: dict[str, Any] = field(default_factory=dict)
    call_id: str | None = None  # the endpoint's tool-call id, echoed in the tool message
    ignored_calls: int = 0  # further calls in the same turn, not executed

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments}

    def summary(self) -> str:
        """A one-line string for loop detection and logs.

        >>> Action("str_replace_editor", {"command": "view", "path": "a.py"}).summary()
        'str_replace_editor view a.py'
        >>> Action("bash", {"command": "ls  -la"}).summary()
        'ls -la'
        """
        if self.name == "bash":
            return " ".join(str(self.arguments.get("command", "")).split())
        if self.name == "str_replace_editor":
            return f"str_replace_editor {self.arguments.get('command')} {self.arguments.get('path')}"
        return self.name

    def key(self) -> str:
        """The action with every argument, whitespace-normalised: what "the same action again" means
        for repeats (two different edits of one file are two actions; the same refused edit sent
        twice is one).

        >>> Action("str_replace_editor", {"command": "str_replace", "path": "a.py", "old_str": "x  = 1"}).key()
        'str_replace_editor {"command": "str_replace", "old_str": "x = 1", "path": "a.py"}'
        >>> Action("bash", {"command": "ls  -la"}).key(), Action("submit").key()
        ('ls -la', 'submit')
        """
        if self.name == "bash":
            return self.summary()
        args = {k: " ".join(v.split()) if isinstance(v, str) else v for k, v in self.arguments.items()}
        return f"{self.name} {json.dumps(args, sort_keys=True, default=str)}" if args else self.name


@dataclass
class FormatError:
    """The model's output held no valid tool call."""

    message: str

    def observation(self, short: bool = False, token: bool = False) -> str:
        """What the model is told; `short` (the compact prompt) repeats the one-line format, `token`
        (the token interface) the full format without the ask_expert tool.

        >>> FormatError("no <tool_call> block").observation(short=True).splitlines()[1].startswith("One tool call")
        True
        """
        return f"Format error: {self.message}\n{SHORT_FORMAT_HELP if short else TOKEN_FORMAT_HELP if token else FORMAT_HELP}"
