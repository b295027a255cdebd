"""The ORACLE reference demonstrator of collection (stage 01): a scripted agent that reads the
gold patch and plays a plausible episode -- look around, maybe a wrong first edit, ask the expert
where the issue leaves the bug unknown, follow its guidance, test, submit -- so that the kept,
resolved trajectories teach the protégé when to ask and how to follow advice. `plan` "full"
explores; "compact" asks only when the issue does not pinpoint the bug. Every trajectory it
makes is labelled ORACLE."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from protege.agent.loop import is_guidance
from protege.agent.tools import format_tool_call
from protege.core.protocols import Generation, Message
from protege.models.patch_reading import guidance_edits
from protege.models.plans import (
    GREP_HIT_RE,
    NAME_RE,
    STEP_RE,
    build_plan,
    change_thought,
    compact_plan,
    message_text,
    quoted_line,
)
from protege.models.scripted import EDIT_FAILED, StatelessOraclePolicy, git_apply, split_patch
from protege.tasks.schema import Task


def _latest_guidance(conversation: list[Message]) -> str | None:
    return next((message_text(m) for m in reversed(conversation) if is_guidance({"content": message_text(m)})), None)


def _guidance_target(conversation: list[Message]) -> str | None:
    for msg in reversed(conversation):
        text = message_text(msg)
        if is_guidance({"content": text}):
            names = NAME_RE.findall(text)
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
        prompt_tokens = sum(len(message_text(m)) for m in conversation) // 4
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
            if msg.get("role") == "assistant" and (m := STEP_RE.match(message_text(msg))):
                k = int(m.group(1)) + 1
                observation = message_text(conversation[i + 1]) if i + 1 < len(conversation) else ""
                prev = steps[k - 1] if k - 1 < len(steps) else None
                failed = observation.startswith(EDIT_FAILED)
                if prev and prev.tag == "wrong" and failed:  # the wrong edit did not apply: skip its revert
                    k = next(j for j, s in enumerate(steps) if s.tag == "revert") + 1
                elif prev and prev.tag.startswith("edit:") and failed:
                    path = prev.tag.split(":")[1]
                    fp = next(f for f in split_patch(task.patch) if f.path == path)
                    last = max(j for j, s in enumerate(steps) if s.tag.startswith(f"edit:{path}"))
                    return self._emit(last, f"That edit did not apply; apply the change to {path} with git.",
                                      "bash", {"command": git_apply(fp)}, prompt_tokens)
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
            hits = list(GREP_HIT_RE.finditer(observation))
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
