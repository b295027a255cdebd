"""Stage 04's rollouts: TRL's `rollout_func` runs our agent loop G times per task, grades every
patch, scores the reward terms and returns one training sequence per episode."""

from __future__ import annotations

import json
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

from protege.agent.loop import run_episodes
from protege.agent.tools import template_schemas
from protege.core.metrics import LIMIT_EXITS, loop_rate
from protege.core.paths import safe_name
from protege.core.trajectory import Trajectory, atomic_write, to_json
from protege.env.base import EnvConfig
from protege.env.factory import make_environment
from protege.env.grading import grade
from protege.models.policies import TransformersPolicy
from protege.models.remote_policies import VLLMEnginePolicy
from protege.stages.reward_terms_paper import curriculum_stage
from protege.stages.rewards import episode_facts, reward_terms
from protege.stages.rl_config import RLRunConfig
from protege.stages.rl_sequences import EpisodeSequence, episode_sequence
from protege.tasks.bundled import load_source
from protege.tasks.schema import Task

PROMPT_PREFIX = "protege-task:"


def task_prompt(task: Task) -> str:
    return f"{PROMPT_PREFIX}{task.instance_id}"


def select_tasks(source: str, limit: int, seed: int) -> list[Task]:
    """Tasks of a source (file or bundled[:split]); `limit` > 0 draws that many, seeded.

    >>> ids = [t.instance_id for t in select_tasks("bundled:train", 2, seed=0)]
    >>> len(ids), ids == [t.instance_id for t in select_tasks("bundled:train", 2, seed=0)]
    (2, True)
    """

    tasks = load_source(source)
    if 0 < limit < len(tasks):
        tasks = random.Random(seed).sample(tasks, limit)
    return sorted(tasks, key=lambda t: t.instance_id)


class _TimedPolicy:
    """Wraps a policy to count generation time and generated tokens."""

    def __init__(self, policy: Any):
        self.policy, self.name = policy, policy.name
        self.seconds, self.tokens = 0.0, 0

    def generate(self, conversations, tools):
        start = time.monotonic()
        out = self.policy.generate(conversations, tools)
        self.seconds += time.monotonic() - start
        self.tokens += sum(g.completion_tokens for g in out)
        return out


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


class AgentRollout:
    """TRL's ``rollout_func``: ``(prompts, trainer) -> dict``. Runs our agent loop once per prompt
    (TRL repeats each task's prompt G times), grades, scores and returns one sequence per episode
    plus every reward term as extra columns for the reward functions."""

    def __init__(self, config: RLRunConfig, tasks: list[Task], tokenizer: Any, model_dir: str, out_dir: Path,
                 expert: Any = None, judge: Any = None, env_config: EnvConfig | None = None, verbose: bool = True):
        self.config, self.tokenizer, self.model_dir, self.out_dir = config, tokenizer, model_dir, Path(out_dir)
        self.tasks = {t.instance_id: t for t in tasks}
        self.expert, self.judge = expert, judge
        self.env_config = env_config or EnvConfig(backend=config.backend)
        self.reward_config = config.reward_config()
        self.agent_config = config.agent_config()
        self.verbose = verbose
        self.pending: dict[int, dict[str, Any]] = {}  # step -> rollout statistics, until StepLogger writes them

    def task_of(self, prompt: Any) -> Task:
        text = prompt if isinstance(prompt, str) else str(prompt[-1]["content"])
        iid = text.removeprefix(PROMPT_PREFIX).strip()
        if iid not in self.tasks:
            raise KeyError(f"rollout prompt {text[:80]!r} names no training task")
        return self.tasks[iid]

    def decode(self, ids: list[int], skip_special: bool) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=skip_special, clean_up_tokenization_spaces=False)

    def __call__(self, prompts: list[Any], trainer: Any) -> dict[str, list]:
        from trl.models import unwrap_model_for_generation

        step = int(trainer.state.global_step) + 1
        max_steps = int(trainer.state.max_steps or self.config.max_steps)
        tasks = [self.task_of(p) for p in prompts]
        start = time.monotonic()
        if getattr(trainer, "use_vllm", False):  # TRL synced the weights into its engine before this call
            trajs, timed = self.run(None, tasks, seed=self.config.seed * 100_003 + step,
                                    llm=trainer.vllm_generation.llm)
            return self.score(tasks, trajs, step, max_steps, time.monotonic() - start, timed)
        unwrap = unwrap_model_for_generation(trainer.model_wrapped, trainer.accelerator,
                                             gradient_checkpointing_kwargs=trainer.args.gradient_checkpointing_kwargs)
        with unwrap as model:
            was_training = model.training
            merged = self.config.merge_lora_for_rollouts and hasattr(model, "merge_adapter")
            if merged:  # a PeftModel: generate with the adapters folded into the weights
                model.merge_adapter()
            try:
                trajs, timed = self.run(model, tasks, seed=self.config.seed * 100_003 + step)
            finally:
                if merged:
                    model.unmerge_adapter()
                model.train(was_training)
        rollout_s = time.monotonic() - start
        return self.score(tasks, trajs, step, max_steps, rollout_s, timed)

    def run(self, model: Any, tasks: list[Task], seed: int, llm: Any = None) -> tuple[list[Trajectory], _TimedPolicy]:
        """Episodes for `tasks` (duplicates allowed) with a policy sharing `model`, or generating
        with the vLLM engine `llm`."""

        batch = self.config.gen_batch_size if self.config.gen_batch_size > 0 else len(tasks)
        name = f"rl:{Path(str(self.model_dir)).name}"
        if llm is not None:
            policy: Any = VLLMEnginePolicy(llm, self.tokenizer, max_new_tokens=self.config.max_new_tokens,
                                           temperature=self.config.temperature, top_p=1.0, seed=seed,
                                           context_len=self.config.max_seq_tokens, name=name + "(vllm)")
        else:
            policy = TransformersPolicy(self.model_dir, max_new_tokens=self.config.max_new_tokens,
                                        temperature=self.config.temperature, top_p=1.0, seed=seed, batch_size=batch,
                                        return_logprobs=True, model=model, tokenizer=self.tokenizer, name=name)
        timed = _TimedPolicy(policy)
        env_factory = partial(make_environment, config=self.env_config)
        return run_episodes(tasks, timed, self.expert, env_factory, self.agent_config), timed

    def _grade_and_judge(self, task: Task, traj: Trajectory, log_dir: Path, stage: int) -> tuple[dict, dict]:
        if traj.patch.strip():
            report = grade(task, traj.patch, self.env_config, log_dir)
            graded = {"resolved": report.resolved, "grade_status": report.status, "grade_error": report.error,
                      "reverted_test_infra": report.reverted_files}
        else:  # an empty patch never resolves a task (the bundled benchmark validates this)
            graded = {"resolved": False, "grade_status": "EMPTY_PATCH", "grade_error": None}
        judge = self.judge if self.reward_config.preset_name == "paper" else None
        facts = episode_facts(traj, graded["resolved"], task.patch, judge, task.problem_statement)
        terms = reward_terms(facts, self.reward_config, stage)
        graded["judge"] = [asdict(s) for s in facts.judge]
        return graded, terms

    def _sequence(self, traj: Trajectory) -> EpisodeSequence:
        fallback = None
        if not any(g.completion_ids for g in traj.generations):

            tools = template_schemas(self.expert is not None, self.config.agent_config().tool_text)
            text = self.tokenizer.apply_chat_template(traj.messages[:2], tools=tools or None,
                                                      tokenize=False, add_generation_prompt=True)
            fallback = self.tokenizer(text, add_special_tokens=False).input_ids
        end = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else 0
        return episode_sequence(traj.generations, self.decode, self.config.max_seq_tokens, fallback, end)

    def score(self, tasks: list[Task], trajs: list[Trajectory], step: int, max_steps: int, rollout_s: float,
              timed: _TimedPolicy) -> dict[str, list]:
        stage = curriculum_stage(step, max_steps, self.reward_config)
        start = time.monotonic()
        logs = [self.out_dir / "grade_logs" / f"step-{step:06d}" / f"{k:03d}" for k in range(len(tasks))]
        with ThreadPoolExecutor(max_workers=2) as pool:
            scored = list(pool.map(self._grade_and_judge, tasks, trajs, logs, [stage] * len(tasks)))
        score_s = time.monotonic() - start
        seqs = [self._sequence(t) for t in trajs]
        terms = [t for _, t in scored]
        self._record(step, tasks, trajs, scored, seqs)
        stats = self._step_stats(step, stage, trajs, terms, seqs, rollout_s, score_s, timed)
        self.pending[step] = stats
        if self.verbose:
            print(f"[rl] step {step}: {stats['episodes']} episodes in {rollout_s:.1f} s = "
                  f"{stats['episodes_per_s']:.3f} episodes/s, {stats['gen_tokens']} generated tokens = "
                  f"{stats['gen_tokens_per_s']:.1f} tok/s (generation only: "
                  f"{stats['gen_only_tokens_per_s']:.1f} tok/s); "
                  f"grading+judging {score_s:.1f} s; resolve {stats['resolve_rate']:.2f}, "
                  f"reward {stats['reward_total']:+.3f}", flush=True)
        keys = sorted({k for t in terms for k in t})
        out: dict[str, list] = {
            "prompt_ids": [s.prompt_ids for s in seqs],
            "completion_ids": [s.completion_ids for s in seqs],
            "logprobs": [s.logprobs for s in seqs],
            "env_mask": [s.env_mask for s in seqs],
            "exit_status": [t.exit_status or "" for t in trajs],
            "n_steps": [float(t.counts.steps) for t in trajs],
        }
        out.update({k: [float(t.get(k, 0.0)) for t in terms] for k in keys})
        return out

    def _record(self, step: int, tasks: list[Task], trajs: list[Trajectory], scored: list, seqs: list) -> None:
        rows = []
        for k, (task, traj, (graded, terms), seq) in enumerate(zip(tasks, trajs, scored, seqs)):
            seq_stats = {key: v for key, v in asdict(seq).items() if key not in ("prompt_ids", "completion_ids",
                                                                               "logprobs", "env_mask")}
            rows.append({"step": step, "k": k, "instance_id": task.instance_id, "exit_status": traj.exit_status,
                         "steps": traj.counts.steps, "format_errors": traj.counts.format_errors,
                         "expert_calls": traj.counts.expert_calls, "actions": traj.actions[:200],
                         "patch_chars": len(traj.patch), **graded, "terms": terms,
                         "sequence": {**seq_stats, "prompt_tokens": len(seq.prompt_ids),
                                      "completion_tokens": len(seq.completion_ids),
                                      "trained_tokens": seq.trained_tokens}})
            if self.config.save_trajectories:
                path = self.out_dir / "trajectories" / f"step-{step:06d}" / f"{k:03d}-{safe_name(task.instance_id)}.json"
                atomic_write(path, to_json(traj.to_dict()))
        with (self.out_dir / "rollouts.jsonl").open("a", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)

    def _step_stats(self, step: int, stage: int, trajs: list[Trajectory], terms: list[dict], seqs: list,
                    rollout_s: float, score_s: float, timed: _TimedPolicy) -> dict[str, Any]:
        n = len(trajs)
        stats: dict[str, Any] = {"step": step, "stage": stage, "episodes": n}
        stats["groups_with_spread"] = groups_with_spread([t.instance_id for t in trajs],
                                                         [t.get("reward_total", 0.0) for t in terms])
        for key in sorted({k for t in terms for k in t}):
            stats[key] = _mean([t.get(key, 0.0) for t in terms])
        stats["resolve_rate"] = stats.get("resolved", 0.0)
        stats["loop_rate"] = loop_rate([t.actions for t in trajs], self.config.loop_run_threshold)
        stats["repeat_rate"] = _mean([float(t.get("c_loop", 0) > 0) for t in terms])
        stats["expert_calls"] = _mean([float(t.counts.expert_calls) for t in trajs])
        stats["steps"] = _mean([float(t.counts.steps) for t in trajs])
        stats["format_errors"] = _mean([float(t.counts.format_errors) for t in trajs])
        stats["submitted_rate"] = _mean([float(t.exit_status == "submitted") for t in trajs])
        stats["step_limit_rate"] = _mean([float(t.exit_status in LIMIT_EXITS) for t in trajs])
        stats["rollout_s"], stats["score_s"] = rollout_s, score_s
        stats["gen_tokens"] = timed.tokens
        stats["episodes_per_s"] = n / rollout_s if rollout_s > 0 else 0.0
        stats["gen_tokens_per_s"] = timed.tokens / rollout_s if rollout_s > 0 else 0.0
        stats["gen_only_tokens_per_s"] = timed.tokens / timed.seconds if timed.seconds > 0 else 0.0
        total = sum(len(s.completion_ids) for s in seqs)
        stats["seq_tokens"] = _mean([float(len(s.prompt_ids) + len(s.completion_ids)) for s in seqs])
        stats["trained_frac"] = sum(s.trained_tokens for s in seqs) / total if total else 0.0
        stats["turns_dropped"] = _mean([float(s.turns_total - s.turns) for s in seqs])
        stats["turns_retokenized"] = _mean([float(s.retokenized) for s in seqs])
        stats["turns_approximate"] = _mean([float(s.approximate) for s in seqs])
        return stats


def groups_with_spread(instance_ids: list[str], rewards: list[float], tol: float = 1e-6) -> float:
    """The fraction of groups (the G episodes of one task) whose rewards differ by more than `tol`:
    the groups that give any token a non-zero group-relative advantage. Counted here because TRL's
    `frac_reward_zero_std` took float noise for variance: a group of equal rewards, summed from
    float components, had std 6e-8 and counted as non-zero while the step's gradient was exactly 0
    (docs/LOG.md session 10).

    >>> groups_with_spread(["a", "a", "b", "b"], [1.0, 0.9, 0.9, 0.9000000000000001])
    0.5
    """
    groups: dict[str, list[float]] = {}
    for i, r in zip(instance_ids, rewards):
        groups.setdefault(i, []).append(r)
    return _mean([float(max(g) - min(g) > tol) for g in groups.values()])
