"""The agent loop's settings: limits, prompts, prices and the smoke / small / full presets."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from protege.agent.tools import (
    SHORT_DESCRIPTIONS,
    tool_schemas,
)
from protege.core.actions import (
    COLLABORATE,
    EXPERT_REPLY_PREFIX,
    FORMAT_HELP,
    INTERFACES,
    SHORT_FORMAT_HELP,
    TOKEN_FORMAT_HELP,
)
from protege.core.config import resolve

EXIT_STATUSES = ("submitted", "step_limit", "cost_limit", "wall_time", "format_errors", "repeat_limit", "policy_error",
                 "env_error", "patch_too_large", "agent_error")


SYSTEM_PROMPT = """\
You are a software engineer fixing an issue in a Python repository. You act only through tools.

Tools:
{tool_descriptions}

{format_help}

Work step by step: find the relevant code, reproduce the problem (for example by running the
tests), edit the source (not the tests), check that the fix works, then call submit.{expert_note}"""


EXPERT_NOTE = """
When you are stuck, call ask_expert with a specific question. The expert sees only your last
few messages; its advice comes back inside <expert_guidance> tags. Follow it. Do not repeat
the same command over and over."""


# The compact prompt of the `small` preset (~70 tokens with short tool descriptions): a 135M
# protégé on a CPU pays for every prompt token at every step.
SHORT_SYSTEM_PROMPT = """\
Fix the issue in this Python repository. Tools:
{tool_descriptions}
{format_help}{expert_note}"""


SHORT_EXPERT_NOTE = "\nAsk the expert when you cannot find or fix the bug yourself; follow its <expert_guidance>."

# The token interface (interface="token"): no ask_expert tool; the protégé writes the token instead.
TOKEN_EXPERT_NOTE = f"""
When you are stuck, write your question followed by {COLLABORATE}. The expert sees only your last
few messages; its advice comes back after "{EXPERT_REPLY_PREFIX}". Follow it. Do not repeat the same
command over and over."""
SHORT_TOKEN_EXPERT_NOTE = (f"\nWhen you cannot find or fix the bug yourself, write {COLLABORATE}; "
                           f"follow the {EXPERT_REPLY_PREFIX} reply.")


INSTANCE_TEMPLATE = """\
<issue>
{problem_statement}
</issue>

The repository is checked out in the current directory. Fix the issue, then call submit."""


@dataclass
class PriceTable:
    """Dollars per million tokens, by role. Defaults: a local protégé (free) and a
    Claude-Sonnet-class expert."""

    protege_input: float = 0.0
    protege_output: float = 0.0
    expert_input: float = 3.0
    expert_output: float = 15.0

    def protege_cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.protege_input + completion_tokens * self.protege_output) / 1e6

    def expert_cost(self, input_tokens: int, output_tokens: int) -> float:
        """Dollars for one expert call.

        >>> PriceTable().expert_cost(1_000_000, 100_000)
        4.5
        """
        return (input_tokens * self.expert_input + output_tokens * self.expert_output) / 1e6


@dataclass
class AgentConfig:
    """Limits and prompts of the agent loop. -1 disables a limit."""

    preset_name: str = "smoke"  # the preset these values started from
    step_limit: int = 75  # actions per episode (a generated action or an injected ask)
    expert_call_cap: int = 6  # answered expert calls per episode; later asks get an observation
    expert_context_k: int = 5  # messages before the ask that the expert sees
    cost_budget_usd: float = 2.0  # protégé + expert cost per episode, dollars
    wall_time_s: float = 3600.0  # per episode, seconds
    command_timeout_s: float = -1  # per bash command, seconds; -1 = the environment's default
    max_consecutive_format_errors: int = 3  # malformed outputs in a row that end the episode
    # The same step (action with its arguments, or the same malformed output) this many times in a row ends the
    # episode as "repeat_limit"; -1 = never. A loop is established by then, and its later turns cost time
    # without teaching (RL rollouts: 5) or changing an outcome (evaluation at `small`: 11, where the loop
    # metric has fired; EvalConfig.repeat_limit).
    repeat_limit: int = -1
    max_consecutive_policy_errors: int = 3  # failed generate calls in a row that end the episode
    max_context_messages: int = -1  # messages sent to the policy (system, task and guidance always kept)
    max_context_tokens: int = 32_768  # estimated (chars / 4) tokens sent to the policy
    max_parallel: int = 16  # episodes stepped together = generation batch size
    enable_ask_expert: bool = True  # offer the ask_expert tool (False: the no-expert ablation)
    # How the protégé asks: "tool" (the paper: an ask_expert tool call, replies in <expert_guidance>) or
    # "token" (the blog's design: it writes <<collaborate>>, the reply follows "[Expert]:").
    interface: str = "tool"
    prices: PriceTable = field(default_factory=PriceTable)
    system_prompt: str = SYSTEM_PROMPT  # {tool_descriptions}, {format_help}, {expert_note}
    tool_text: str = "full"  # full: each tool's whole description | short: one line each, short format help
    view_window: int = -1  # lines a file `view` shows without view_range (SWE-agent's window); -1 = all
    indent_tolerant: bool = True  # str_replace accepts a unique match up to indentation (and says so)
    edit_context: int = 4  # lines shown above and below an edit in the editor's confirmation
    max_observation_chars: int = -1  # longer tool output keeps its head and tail; -1 = no limit
    instance_template: str = INSTANCE_TEMPLATE  # {problem_statement}, {instance_id}, {repo}

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> AgentConfig:
        """A scale preset (smoke | small | full) with field overrides.

        >>> AgentConfig.preset("full").step_limit, AgentConfig.preset("smoke", step_limit=5).step_limit
        (75, 5)
        """

        return resolve(cls, PRESETS, name, overrides)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AgentConfig:
        data = dict(data)
        data["prices"] = PriceTable(**data.get("prices", {}))
        return cls(**data)


PRESETS: dict[str, dict[str, Any]] = {
    "smoke": dict(step_limit=20, cost_budget_usd=-1, wall_time_s=300, max_context_tokens=4096, max_parallel=4),
    "small": dict(step_limit=30, cost_budget_usd=-1, wall_time_s=1800, max_context_tokens=6144, max_parallel=8,
                  system_prompt=SHORT_SYSTEM_PROMPT, tool_text="short", view_window=12, max_observation_chars=1200,
                  edit_context=1),
    "full": dict(step_limit=75, cost_budget_usd=2.0, wall_time_s=3600, max_context_tokens=32_768, max_parallel=32),
}


def system_message(config: AgentConfig, ask_expert: bool) -> str:
    """The system prompt: tools described in full or in one line each (config.tool_text).

    >>> print(system_message(AgentConfig.preset("small"), ask_expert=False))  # doctest: +NORMALIZE_WHITESPACE
    Fix the issue in this Python repository. Tools:
    - bash: run a shell command in the repository
    - str_replace_editor: view (path, view_range) or edit (str_replace: path, old_str, new_str) a file
    - submit: finish; your changes are the solution
    One tool call per turn: <tool_call>{"name": ..., "arguments": {...}}</tool_call>
    >>> print(system_message(AgentConfig.preset("small", interface="token"), ask_expert=True).splitlines()[-1])
    When you cannot find or fix the bug yourself, write <<collaborate>>; follow the [Expert]: reply.
    """
    if config.interface not in INTERFACES:
        raise ValueError(f"AgentConfig.interface {config.interface!r}: use one of {', '.join(INTERFACES)}")
    short, token = config.tool_text == "short", config.interface == "token"
    described = "\n".join(f"- {t['function']['name']}: "
                          f"{SHORT_DESCRIPTIONS[t['function']['name']] if short else t['function']['description']}"
                          for t in tool_schemas(ask_expert and not token))
    notes = {(False, False): EXPERT_NOTE, (True, False): SHORT_EXPERT_NOTE, (False, True): TOKEN_EXPERT_NOTE,
             (True, True): SHORT_TOKEN_EXPERT_NOTE}
    note = notes[(short, token)] if ask_expert else ""
    return config.system_prompt.format(tool_descriptions=described,
                                       format_help=SHORT_FORMAT_HELP if short else TOKEN_FORMAT_HELP if token
                                       else FORMAT_HELP, expert_note=note)
