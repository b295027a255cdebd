"""`ScriptedPolicy`: a deterministic ORACLE policy for tests and the smoke preset.

It reads the task's gold patch (so its results say nothing about a model: it is labelled an
oracle by its name and `oracle = True`). For each task it explores, runs the failing tests,
optionally asks the expert, applies the gold patch hunk by hunk with `str_replace_editor`,
re-runs the tests and submits. It writes its actions as ``<tool_call>`` text, so every run
exercises the same parser a model's output goes through.

It keeps no state: the plan position is read back from the "Step k:" prefix of its last
message in the conversation, so it works for any number of concurrent episodes.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field, replace
from typing import Any

from protege.agent.tools import format_tool_call, parse_text
from protege.core.actions import COLLABORATE, Action
from protege.core.protocols import Generation, Message
from protege.tasks.schema import Task

_STEP_RE = re.compile(r"^Step (\d+):", re.M)
_HUNK_RE = re.compile(r"^@@ -\d+(?:,\d+)? \+\d+(?:,\d+)? @@.*$", re.M)
EDIT_FAILED = ("Error: No replacement was performed", "Error: The path")


@dataclass
class FilePatch:
    path: str
    text: str  # this file's section of the diff, headers included
    kind: str  # "modify" | "new" | "other" (deleted, renamed, binary, no-newline: applied with git)
    hunks: list[tuple[str, str]] = field(default_factory=list)  # (old text, new text)
    new_content: str = ""  # for kind == "new"


def split_patch(patch: str) -> list[FilePatch]:
    """Per-file sections of a unified git diff with their hunks as (old, new) text.

    >>> diff = ("diff --git a/m.py b/m.py\\n--- a/m.py\\n+++ b/m.py\\n@@ -1,2 +1,2 @@\\n"
    ...         " def f(x):\\n-    return x + 1\\n+    return x\\n")
    >>> [(f.path, f.kind, f.hunks) for f in split_patch(diff)]
    [('m.py', 'modify', [('def f(x):\\n    return x + 1\\n', 'def f(x):\\n    return x\\n')])]
    """
    files = []
    for section in re.split(r"^(?=diff --git )", patch, flags=re.M):
        match = re.match(r"diff --git a/(\S+) b/(\S+)", section)
        if not match:
            continue
        header = section.split("\n@@", 1)[0]
        fp = FilePatch(match.group(2), section if section.endswith("\n") else section + "\n", "modify")
        if "new file mode" in header:
            fp.kind = "new"
        if any(k in header for k in ("deleted file mode", "rename from", "Binary files", "GIT binary patch")) \
                or "\\ No newline at end of file" in section:
            fp.kind = "other"
        bodies = _HUNK_RE.split(section)[1:]
        for body in bodies:
            old, new = [], []
            lines = body.split("\n")[1:]
            if lines and lines[-1] == "":
                lines.pop()
            for line in lines:  # an empty line is a context line whose space was stripped
                tag, text = line[:1], line[1:]
                if tag in (" ", ""):
                    old.append(text)
                    new.append(text)
                elif tag == "-":
                    old.append(text)
                elif tag == "+":
                    new.append(text)
            fp.hunks.append(("".join(line + "\n" for line in old), "".join(line + "\n" for line in new)))
        if fp.kind == "new":
            fp.new_content = "".join(h[1] for h in fp.hunks)
        elif fp.kind == "modify" and (not fp.hunks or any(not old.strip() for old, _ in fp.hunks)):
            fp.kind = "other"  # no anchor text to replace: let git place it
        files.append(fp)
    return files


def git_apply(fp: FilePatch) -> str:
    return f"git checkout -q -- {shlex.quote(fp.path)} 2>/dev/null; git apply - <<'PROTEGE_PATCH'\n{fp.text}PROTEGE_PATCH"


def plan(task: Task, ask_expert: bool = True) -> list[tuple[str, str, dict[str, Any], str | None]]:
    """(thought, tool, arguments, file) per step; `file` marks edit steps for recovery."""
    files = split_patch(task.patch)
    first = files[0].path if files else "."

    def test_cmd(ids: list[str]) -> str:
        return f"python -m pytest -q -p no:cacheprovider {' '.join(map(shlex.quote, ids)) or '.'} 2>&1 | tail -n 30"

    steps: list[tuple[str, str, dict[str, Any], str | None]] = [
        ("Find the definitions in the file the issue is about.", "bash",
         {"command": f"grep -n 'def \\|class ' {shlex.quote(first)}"}, None),
        ("Read the file.", "str_replace_editor", {"command": "view", "path": first}, None),
        ("Run the failing tests to see the problem.", "bash", {"command": test_cmd(task.FAIL_TO_PASS[:10])}, None),
    ]
    if ask_expert:
        steps.append(("Ask the expert where the fix belongs.", "ask_expert",
                      {"question": f"The tests {', '.join(task.FAIL_TO_PASS[:3])} fail. Where is the bug "
                                   "and what is the smallest correct fix?"}, None))
    for fp in files:
        if fp.kind == "new":
            steps.append((f"Create {fp.path}.", "str_replace_editor",
                          {"command": "create", "path": fp.path, "file_text": fp.new_content}, fp.path))
        elif fp.kind == "modify":
            for n, (old, new) in enumerate(fp.hunks, 1):
                steps.append((f"Edit {fp.path} (change {n} of {len(fp.hunks)}).", "str_replace_editor",
                              {"command": "str_replace", "path": fp.path, "old_str": old, "new_str": new}, fp.path))
        else:
            steps.append((f"Apply the change to {fp.path} with git.", "bash", {"command": git_apply(fp)}, fp.path))
    steps += [("Re-run the failing and the passing tests.", "bash",
               {"command": test_cmd(task.FAIL_TO_PASS[:10] + task.PASS_TO_PASS[:10])}, None),
              ("The tests pass: submit.", "submit", {}, None)]
    return steps


def _content(message: Message) -> str:
    return str(message.get("content") or "")


def task_for(conversation: list[Message], tasks: list[Task]) -> Task | None:
    """The task whose issue text is in the conversation's first user message (oracle policies
    are stateless: everything they need is derived from the conversation)."""
    prompt = _content(conversation[1]) if len(conversation) > 1 else ""
    return next((t for t in tasks if t.problem_statement and t.problem_statement in prompt), None)


def offered_tools(conversation: list[Message], tools: list[dict[str, Any]]) -> set[str]:
    """The tools a policy was offered: the schemas when the template got them, else those the
    system prompt lists ("- name: ..." lines, the compact prompt), as a model would read them.

    >>> sorted(offered_tools([{"role": "system", "content": "Tools:\\n- bash: run\\n- submit: finish"}], []))
    ['bash', 'submit']
    """
    if tools:
        return {t["function"]["name"] for t in tools}
    system = str(conversation[0].get("content") or "") if conversation else ""
    return set(re.findall(r"^- (\w+):", system, re.M))


def uses_token(conversation: list[Message]) -> bool:
    """Whether the conversation's system prompt offers the token interface (AgentConfig.interface)."""
    return bool(conversation) and COLLABORATE in _content(conversation[0])


def as_token_ask(gen: Generation) -> Generation:
    """An ask_expert tool call rewritten in the token interface's form: the text before the call,
    the question, then the token.

    >>> as_token_ask(Generation('Step 3: stuck.\\n<tool_call>{"name": "ask_expert", "arguments": '
    ...                         '{"question": "Where?"}}</tool_call>', 0)).text
    'Step 3: stuck.\\nWhere? <<collaborate>>'
    """
    parsed = parse_text(gen.text)
    if not isinstance(parsed, Action) or parsed.name != "ask_expert":
        return gen
    before = gen.text.split("<tool_call>", 1)[0]
    text = f"{before}{parsed.arguments.get('question', '').strip()} {COLLABORATE}"
    return replace(gen, text=text, completion_tokens=len(text) // 4)


class StatelessOraclePolicy:
    """Shared by the oracle policies: each conversation is answered on its own, from the task
    it names (subclasses give `tasks` and `_one(conversation, ask_offered)`)."""

    tasks: list[Task]

    def generate(self, conversations: list[list[Message]], tools: list[dict[str, Any]]) -> list[Generation]:
        out = []
        for conv in conversations:
            token = uses_token(conv)
            gen = self._one(conv, token or "ask_expert" in offered_tools(conv, tools))
            out.append(as_token_ask(gen) if token else gen)
        return out

    def _task(self, conversation: list[Message]) -> Task | None:
        return task_for(conversation, self.tasks)


@dataclass
class ScriptedPolicy(StatelessOraclePolicy):
    """Deterministic oracle policy over a known task list (matched by problem statement)."""

    tasks: list[Task]
    ask_expert: bool = True  # include one ask_expert step (skipped when the tool is not offered)
    name: str = "scripted-oracle"
    oracle: bool = True

    def _one(self, conversation: list[Message], ask_offered: bool) -> Generation:
        prompt_tokens = sum(len(_content(m)) for m in conversation) // 4
        task = self._task(conversation)
        if task is None:
            return Generation("", prompt_tokens, error="scripted policy: the conversation matches no known task")
        steps = plan(task, self.ask_expert and ask_offered)
        k, observation = 0, ""
        for i in range(len(conversation) - 1, 1, -1):
            msg = conversation[i]
            if msg.get("role") == "assistant" and (m := _STEP_RE.match(_content(msg))):
                k = int(m.group(1)) + 1
                observation = _content(conversation[i + 1]) if i + 1 < len(conversation) else ""
                edited = steps[k - 1][3] if k - 1 < len(steps) else None
                if edited and observation.startswith(EDIT_FAILED):
                    # A hunk did not match (context not unique): redo the whole file with git.
                    fp = next(f for f in split_patch(task.patch) if f.path == edited)
                    last = max(j for j, s in enumerate(steps) if s[3] == edited)
                    return self._emit(last, f"That edit failed; apply the change to {edited} with git.",
                                      "bash", {"command": git_apply(fp)}, prompt_tokens)
                break
        if k >= len(steps):
            k = len(steps) - 1  # already past the plan: submit
        thought, tool, args, _ = steps[k]
        return self._emit(k, thought, tool, args, prompt_tokens)

    @staticmethod
    def _emit(k: int, thought: str, tool: str, args: dict[str, Any], prompt_tokens: int) -> Generation:
        text = f"Step {k}: {thought}\n{format_tool_call(tool, args)}"
        return Generation(text, prompt_tokens, len(text) // 4, finish_reason="stop")
