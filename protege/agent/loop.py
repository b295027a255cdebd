"""The agent loop: one short loop for data collection, RL rollouts and evaluation.

`run_episodes` steps many episodes together. Each step it sends the conversations of all live
episodes to `policy.generate` in ONE call (batched generation is where local models gain
their speed), then carries out every episode's action in its environment, in threads
(commands, edits and expert calls wait on subprocesses and networks, not on Python).
"""

from __future__ import annotations

import json
import re
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from protege.agent.config import AgentConfig, system_message
from protege.agent.editor import EditorOptions
from protege.agent.tools import (
    clean_text,
    execute,
    format_tool_call,
    parse_collaboration,
    parse_generation,
    template_schemas,
    trim_observation,
)
from protege.core.actions import COLLABORATE, EXPERT_REPLY_PREFIX, Action, FormatError
from protege.core.protocols import Expert, ExpertReply, ExpertRequest, Generation, Message, Policy
from protege.core.text import terminal_safe
from protege.core.trajectory import ExpertCall, Step, Trajectory, TrajectoryWriter, completed_ids, load_trajectory
from protege.env.base import Environment, PatchTooLarge
from protege.tasks.schema import Task

GUIDANCE_OPEN, GUIDANCE_CLOSE = "<expert_guidance>", "</expert_guidance>"


def _tokens(message: Message) -> int:
    text = str(message.get("content") or "") + json.dumps(message.get("tool_calls") or "")
    return len(text) // 4 + 4


def is_guidance(message: Message) -> bool:
    """An expert reply, in either interface's form."""
    return str(message.get("content") or "").startswith((GUIDANCE_OPEN, EXPERT_REPLY_PREFIX))


def render_guidance(text: str, interface: str = "tool") -> str:
    """The expert's reply as the protégé reads it: in <expert_guidance> tags after an ask_expert
    call, after "[Expert]:" after the token.

    >>> render_guidance("Edit line 3.", "token")
    '[Expert]: Edit line 3.'
    """
    if interface == "token":
        return f"{EXPERT_REPLY_PREFIX} {text.strip()}"
    return f"{GUIDANCE_OPEN}\n{text.strip()}\n{GUIDANCE_CLOSE}"


def render_ask(question: str, interface: str = "tool") -> str:
    """An ask as the protégé writes it (forced asks, inserted calls, demonstrations).

    >>> render_ask("Where is the bug?", "token")
    'Where is the bug? <<collaborate>>'
    """
    if interface == "token":
        return f"{question.strip()} {COLLABORATE}".lstrip()
    return format_tool_call("ask_expert", {"question": question})


def context_view(messages: list[Message], max_messages: int = -1, max_tokens: int = -1) -> list[Message]:
    """The messages sent to the policy: the system prompt and task, every expert-guidance
    message, and as many recent messages as fit; a note marks what was left out.

    >>> msgs = [{"role": "system", "content": "s"}, {"role": "user", "content": "task"}]
    >>> msgs += [{"role": "assistant", "content": f"a{i}"} for i in range(3)]
    >>> msgs += [{"role": "user", "content": "<expert_guidance>g</expert_guidance>"}]
    >>> msgs += [{"role": "assistant", "content": f"b{i}"} for i in range(3)]
    >>> [m["content"] for m in context_view(msgs, max_messages=6)]
    ['s', 'task', '[4 earlier messages left out to fit the context]', '<expert_guidance>g</expert_guidance>', 'b1', 'b2']
    """
    n = len(messages)
    head = min(2, n)
    keep = set(range(head)) | set(range(max(head, n - 2), n))  # the latest exchange always stays
    for i in range(head, n):
        if is_guidance(messages[i]):
            keep.add(i)
    used_msgs = len(keep)
    used_tok = sum(_tokens(messages[i]) for i in keep)
    for i in range(n - 1, head - 1, -1):
        if i in keep:
            continue
        cost = _tokens(messages[i])
        if (max_messages > 0 and used_msgs + 2 > max_messages) or (max_tokens > 0 and used_tok + cost > max_tokens):
            break
        keep.add(i)
        used_msgs, used_tok = used_msgs + 1, used_tok + cost
    for i in sorted(keep):  # a tool result needs the assistant message that called it
        if messages[i].get("role") == "tool" and i - 1 >= head:
            keep.add(i - 1)
    dropped = n - len(keep)
    if not dropped:
        return list(messages)
    note = {"role": "user", "content": f"[{dropped} earlier messages left out to fit the context]"}
    return [*messages[:head], note, *(messages[i] for i in sorted(keep) if i >= head)]


@dataclass
class Episode:
    """One task in progress."""

    task: Task
    env: Environment | None
    traj: Trajectory
    started: float = field(default_factory=time.monotonic)
    consecutive_format_errors: int = 0
    consecutive_policy_errors: int = 0
    last_ask_step: int | None = None  # step index of the last expert call (answered or failed)
    actions: list[str] = field(default_factory=list)  # action summaries, for loop detection

    @property
    def n_steps(self) -> int:
        return self.traj.counts.steps

    @property
    def answered_expert_calls(self) -> int:
        return self.traj.counts.expert_calls - self.traj.counts.failed_expert_calls


def initial_messages(task: Task, config: AgentConfig, ask_expert: bool) -> list[Message]:
    """An episode's conversation before its first turn: the system prompt and the issue."""
    return [{"role": "system", "content": system_message(config, ask_expert)},
            {"role": "user", "content": config.instance_template.format(
                problem_statement=task.problem_statement, instance_id=task.instance_id, repo=task.repo)}]


def _start(task: Task, env_factory: Callable[[Task], Environment], config: AgentConfig, ask_expert: bool,
           model: str, expert_name: str) -> Episode:
    traj = Trajectory(task.instance_id, model=model, expert=expert_name, config=config.to_dict())
    traj.messages = initial_messages(task, config, ask_expert)
    episode = Episode(task, None, traj)
    try:
        episode.env = env_factory(task)
    except Exception as exc:  # a broken checkout ends this episode, not the batch
        traj.exit_status, traj.error = "env_error", f"{type(exc).__name__}: {exc}"
    traj.environment = environment_record(episode.env)
    return episode


def environment_record(env: Environment | None) -> dict[str, Any]:
    """What a trajectory records of its environment (an unisolated sandbox is always flagged)."""
    config = getattr(env, "config", None)
    sandbox = getattr(config, "sandbox", None)
    if sandbox is None:
        return {}
    record = {"backend": getattr(config, "backend", "?"), "isolation": sandbox.isolation,
              "memory_mb": sandbox.memory_mb, "disk_mb": sandbox.disk_mb, "max_processes": sandbox.max_processes,
              "network": sandbox.network, "uid": getattr(env, "uid", None)}
    if sandbox.isolation == "none" and record["backend"] == "local":
        record["warnings"] = ["isolation='none': model commands ran without bubblewrap (host network and "
                              "filesystem view)"]
    return record


def _observe(episode: Episode, content: str, call_id: str | None) -> None:
    if call_id:
        episode.traj.messages.append({"role": "tool", "tool_call_id": call_id, "content": content})
    else:
        episode.traj.messages.append({"role": "user", "content": content})


_OLD_PATH = re.compile(r"^--- a/(.+?)\t?$", re.M)


def _gold_files(episode: Episode) -> dict[str, str]:
    """For an ORACLE expert: the files the gold patch changes, as they stand now, so that its exact
    edits anchor on text that is unique in them (the model's own edits included)."""
    files: dict[str, str] = {}
    if episode.env is None:
        return files
    for path in dict.fromkeys(_OLD_PATH.findall(episode.task.patch or "")):
        try:  # the boundary-checked read: a link, a swapped folder or a huge file is refused
            files[path] = episode.env.read_file(path)
        except (OSError, ValueError):  # deleted or replaced by the model: its edit anchors on its hunk alone
            continue
    return files


def _ask(episode: Episode, question: str, expert: Expert | None, config: AgentConfig, forced: bool,
         blocked: bool) -> str:
    """Call the expert; returns the observation. Expert failures never escape."""
    if expert is None or blocked or not config.enable_ask_expert:
        return "ask_expert is not available in this run: continue on your own."
    if episode.answered_expert_calls >= config.expert_call_cap >= 0:
        return f"No expert calls left ({config.expert_call_cap} per task): continue on your own."
    traj = episode.traj
    k = config.expert_context_k
    context = traj.messages[-k - 1:-1] if k > 0 else []  # the K messages before the ask itself
    request = ExpertRequest(question, context, episode.task.instance_id, episode.task.problem_statement,
                            gold_patch=episode.task.patch if expert.oracle else None,
                            files=_gold_files(episode) if expert.oracle else None)
    start = time.monotonic()
    try:
        reply = expert.advise(request)
    except Exception as exc:  # an expert bug must cost one observation, not the batch
        reply = ExpertReply(text="", failed=True, error=f"{type(exc).__name__}: {exc}")
    cost = reply.cost_usd or config.prices.expert_cost(reply.input_tokens, reply.output_tokens)
    traj.expert_calls.append(ExpertCall(traj.counts.steps - 1, question, reply.text, bool(reply.oracle or expert.oracle),
                                        reply.failed, reply.error, reply.input_tokens, reply.output_tokens, cost,
                                        forced, time.monotonic() - start))
    traj.counts.expert_calls += 1
    traj.tokens.expert_input += reply.input_tokens
    traj.tokens.expert_output += reply.output_tokens
    episode.last_ask_step = traj.counts.steps - 1
    if reply.failed:
        traj.counts.failed_expert_calls += 1
        return f"The expert could not answer ({reply.error or reply.text or 'unknown error'}): continue on your own."
    return render_guidance(reply.text, config.interface)


def _step(episode: Episode, gen: Generation | None, forced_question: str | None, gen_s: float,
          expert: Expert | None, config: AgentConfig, block_policy_asks: bool) -> None:
    """Carry out one action of one episode; sets traj.exit_status when the episode ends."""
    traj = episode.traj
    index = traj.counts.steps
    traj.counts.steps += 1
    step = Step(index, None, "", generation_s=gen_s, forced=forced_question is not None)
    traj.steps.append(step)
    call_id = None
    if forced_question is not None:
        parsed: Action | FormatError = Action("ask_expert", {"question": forced_question})
        traj.counts.forced_asks += 1
        traj.messages.append({"role": "assistant", "content": render_ask(forced_question, config.interface)})
    else:
        traj.generations.append(gen)
        text = clean_text(gen.text)  # stored and re-tokenized next turn: must be valid Unicode
        step.text, step.prompt_tokens, step.completion_tokens = text, gen.prompt_tokens, gen.completion_tokens
        traj.tokens.protege_prompt += gen.prompt_tokens
        traj.tokens.protege_completion += gen.completion_tokens
        if gen.error:
            traj.counts.policy_errors += 1
            episode.consecutive_policy_errors += 1
            step.error, step.observation = "policy", f"[policy error: {gen.error}]"
            return
        episode.consecutive_policy_errors = 0
        asked = parse_collaboration(text) if config.interface == "token" else None
        parsed = asked or parse_generation(gen)
        if asked is not None:  # what follows the token was never meant to be read
            text = text.split(COLLABORATE, 1)[0] + COLLABORATE
        message: Message = {"role": "assistant", "content": text}
        if isinstance(parsed, Action) and parsed.call_id:  # echo only the call we run: its id needs a tool reply
            message["tool_calls"] = [{"id": parsed.call_id, "type": "function", "function": {
                "name": parsed.name, "arguments": json.dumps(parsed.arguments, ensure_ascii=False)}}]
            call_id = parsed.call_id
        traj.messages.append(message)
    start = time.monotonic()
    if isinstance(parsed, FormatError):
        traj.counts.format_errors += 1
        episode.consecutive_format_errors += 1
        step.error, step.observation = "format", parsed.observation(short=config.tool_text == "short",
                                                                     token=config.interface == "token")
        _observe(episode, step.observation, call_id)
        return
    episode.consecutive_format_errors = 0
    step.action = parsed.to_dict()
    episode.actions.append(parsed.summary())
    if parsed.name == "submit":
        traj.exit_status = "submitted"
        return
    if parsed.name == "ask_expert":
        observation = _ask(episode, parsed.arguments["question"], expert, config, forced_question is not None,
                           block_policy_asks and forced_question is None)
    else:
        observation = _run_tool(episode, parsed, config)
    if parsed.ignored_calls:
        observation += "\n[Only the first tool call was run: make one tool call per turn.]"
    observation = terminal_safe(clean_text(observation))  # stored, shown, and cat-ed by people
    step.observation, step.execution_s = observation, time.monotonic() - start
    _observe(episode, observation, call_id)


def _run_tool(episode: Episode, action: Action, config: AgentConfig) -> str:
    """The tool's observation, trimmed; an environment failure ends the episode (env_error)."""
    try:
        return trim_observation(
            execute(episode.env, action, config.command_timeout_s if config.command_timeout_s > 0 else None,
                    EditorOptions(config.view_window, config.indent_tolerant, config.edit_context)),
            config.max_observation_chars)
    except Exception as exc:  # the environment broke (container gone, disk full): end this episode
        episode.traj.exit_status, episode.traj.error = "env_error", f"{type(exc).__name__}: {exc}"
        return f"[environment error: {episode.traj.error}]"


def _update_cost(traj: Trajectory, config: AgentConfig) -> None:
    traj.cost_usd = config.prices.protege_cost(traj.tokens.protege_prompt, traj.tokens.protege_completion) + sum(
        c.cost_usd for c in traj.expert_calls)


def _limit_reached(episode: Episode, config: AgentConfig) -> str | None:
    traj = episode.traj
    if 0 < config.max_consecutive_format_errors <= episode.consecutive_format_errors:
        return "format_errors"
    if 0 < config.max_consecutive_policy_errors <= episode.consecutive_policy_errors:
        traj.error = traj.steps[-1].observation if traj.steps else None
        return "policy_error"
    if 0 <= config.cost_budget_usd <= traj.cost_usd:
        return "cost_limit"
    if 0 <= config.wall_time_s <= time.monotonic() - episode.started:
        return "wall_time"
    if 0 <= config.step_limit <= traj.counts.steps:
        return "step_limit"
    if config.repeat_limit > 0:
        last = traj.action_keys[-config.repeat_limit:]
        if len(last) == config.repeat_limit and len(set(last)) == 1:
            return "repeat_limit"
    return None


def _finish(episode: Episode) -> Trajectory:
    traj = episode.traj
    if episode.env is not None:
        try:
            traj.patch = episode.env.diff()
        except PatchTooLarge as exc:  # a status of its own: counted, never graded
            traj.exit_status, traj.error, traj.patch = "patch_too_large", str(exc), ""
        except Exception as exc:  # no diff from a broken environment: record why
            traj.exit_status, traj.error = "env_error", f"diff failed: {type(exc).__name__}: {exc}"
        finally:
            episode.env.close()
            episode.env = None
    traj.wall_s = time.monotonic() - episode.started
    return traj


def _forced_asks(live: dict[int, Episode], invocation: Any, config: AgentConfig) -> dict[int, str]:
    """Questions the invocation baseline injects this step, by episode."""
    if invocation is None:
        return {}
    forced = {}
    for i, episode in live.items():
        if episode.answered_expert_calls < config.expert_call_cap and (q := invocation.should_force_ask(episode)):
            forced[i] = q
    return forced


def _generate(policy: Policy, episodes: dict[int, Episode], tools: list[dict[str, Any]],
              config: AgentConfig) -> tuple[dict[int, Generation], float]:
    """One batched generate call for all given episodes; (generations by episode, seconds)."""
    if not episodes:
        return {}, 0.0
    start = time.monotonic()
    views = [context_view(e.traj.messages, config.max_context_messages, config.max_context_tokens)
             for e in episodes.values()]
    outputs = policy.generate(views, tools)
    if len(outputs) != len(views):
        raise RuntimeError(f"policy {policy.name!r} returned {len(outputs)} generations for {len(views)} conversations")
    return dict(zip(episodes, outputs)), time.monotonic() - start


def _resumed(tasks: list[Task], writer: TrajectoryWriter | None) -> tuple[dict[int, Trajectory], deque]:
    """The trajectories a writer's run folder already finished (by task index), and the rest to run."""
    results: dict[int, Trajectory] = {}
    done = completed_ids(writer.run_dir) if writer else set()
    queue: deque = deque()
    for i, task in enumerate(tasks):
        if task.instance_id in done:
            results[i] = load_trajectory(writer.path(task.instance_id))
        else:
            queue.append((i, task))
    return results, queue


def run_episodes(tasks: list[Task], policy: Policy, expert: Expert | None,
                 env_factory: Callable[[Task], Environment], config: AgentConfig | None = None,
                 invocation: Any = None, writer: TrajectoryWriter | None = None,
                 on_finish: Callable[[Trajectory], None] | None = None) -> list[Trajectory]:
    """Run one episode per task, `config.max_parallel` at a time, and return the trajectories
    in task order. With a `writer`, every step is saved, tasks already finished in its run
    folder are loaded instead of re-run, and instance ids must be unique. `invocation` is a
    baseline from protege.agent.invocation (None = the policy decides when to ask).
    Expert and environment objects are called from worker threads."""
    config = config or AgentConfig()
    ask_expert = expert is not None and config.enable_ask_expert
    tools = template_schemas(ask_expert and config.interface == "tool", config.tool_text)
    block = bool(getattr(invocation, "block_policy_asks", False))
    results, queue = _resumed(tasks, writer)
    live: dict[int, Episode] = {}
    model, expert_name = getattr(policy, "name", type(policy).__name__), getattr(expert, "name", "none")

    def end(i: int, status: str | None = None) -> None:
        episode = live.pop(i)
        if status:
            episode.traj.exit_status = status
        results[i] = _finish(episode)
        if writer:
            writer.finish(results[i])
        if on_finish:
            on_finish(results[i])

    def work(i: int, gens: dict[int, Generation], forced: dict[int, str], gen_s: float) -> None:
        traj = live[i].traj
        try:
            _step(live[i], gens.get(i), forced.get(i), gen_s if i in gens else 0.0, expert, config, block)
        except Exception as exc:  # a bug on one episode's step ends that episode, never the batch
            traj.exit_status, traj.error = "agent_error", f"{type(exc).__name__}: {exc}"
        # A finished episode is saved by end(), with its patch: saved here, a kill before
        # end() would leave a "finished" record without one, and resume would trust it.
        if writer and not traj.finished:
            writer.save(traj)

    def start(item: tuple[int, Task]) -> Episode:
        return _start(item[1], env_factory, config, ask_expert, model, expert_name)

    with ThreadPoolExecutor(max_workers=max(1, config.max_parallel)) as pool:
        try:
            while queue or live:
                starting = [queue.popleft() for _ in range(min(len(queue), config.max_parallel - len(live)))]
                for (i, _), episode in zip(starting, pool.map(start, starting)):
                    live[i] = episode
                    if episode.traj.finished:
                        end(i)
                    elif writer:
                        writer.save(episode.traj)
                forced = _forced_asks(live, invocation, config) if ask_expert else {}
                gens, gen_s = _generate(policy, {i: e for i, e in live.items() if i not in forced}, tools, config)
                list(pool.map(partial(work, gens=gens, forced=forced, gen_s=gen_s), list(live)))
                for i in list(live):
                    _update_cost(live[i].traj, config)
                    if live[i].traj.finished:
                        end(i)
                    elif reason := _limit_reached(live[i], config):
                        end(i, reason)
        finally:
            for episode in live.values():  # interrupted: leave no workspace behind
                if episode.env is not None:
                    episode.env.close()
    return [results[i] for i in sorted(results)]
