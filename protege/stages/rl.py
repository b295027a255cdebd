"""Stage 04: penalised RL of the protégé, with TRL's GRPOTrainer driving OUR agent loop.

**What "penalised PPO" means here.** TRL 1.16 has no PPOTrainer (it was removed; the last
release that had one, only as experimental and with a reward *model*, is 1.12). This stage
uses `trl.GRPOTrainer`, whose objective is the PPO clipped surrogate with *group-relative*
advantages: every task is rolled out G times, each episode's reward minus its group's mean,
divided by the std of the step's rewards (`scale_rewards="batch"`; "group", GRPO's own choice,
divides by the group's std), is the advantage of every token the model generated in that
episode; the ratio is clipped asymmetrically to [1 - 0.20, 1 + 0.28]; there is no critic; an
optional KL term (beta) pulls toward the reference (SFT) model. That is GRPO-style PPO, which
is what the paper used ("GRPO with trajectory-level rewards"). The penalties (loops, expert
calls...) live in the reward, `protege.stages.rewards`.

**Rollouts.** TRL calls `AgentRollout` (its ``rollout_func``) with the prompts of one
generation batch; each prompt only names a task (``protege-task:<instance_id>``), repeated G
times. The rollout runs `protege.agent.loop.run_episodes` -- the same loop used for collection
and evaluation -- with a `TransformersPolicy` that shares the trainer's model
(``return_logprobs=True``), grades every patch in a fresh environment, lets a judge score the
expert calls (paper preset), computes every reward term, and returns one token sequence per
episode.

**With vLLM (GPU, `use_vllm`, the `full` preset).** Checked against TRL 1.16's source: with
``use_vllm`` and a ``rollout_func``, `GRPOTrainer._generate` syncs the trained weights into its
vLLM engine (`VLLMGeneration.sync_weights`, LoRA merged) and then calls
``rollout_func(prompts, trainer)``; the function must return ``prompt_ids``, ``completion_ids``
and ``logprobs`` (extra keys such as ``env_mask`` and reward columns pass through). We take the
colocated engine, ``trainer.vllm_generation.llm`` (built by TRL with
``logprobs_mode="processed_logprobs"``, so its log-probs are of the tempered distribution), and
run the same agent loop with a `VLLMEnginePolicy` on it; the sampling log-probs go to TRL, whose
importance-sampling correction (``vllm_importance_sampling_correction``) absorbs the remaining
vLLM/trainer mismatch. Why not TRL's ``environment_factory``/``tools`` path: it renders one
conversation per prompt through TRL's own tool-calling loop and chat-template parsing
(``response_schema``), which SmolLM2's and our text tool-call format do not declare, and it
would bypass our sandbox, limits and loop detection. Why not server mode: TRL's server
path gathers prompts from every process at each call (a collective), and multi-turn episodes
make different numbers of calls per process.

**One training sequence per multi-turn episode**: `protege.stages.rl_sequences.episode_sequence` (pure;
how observations are masked and where turns are joined is documented there).

Run folder (``out_dir``)::

    config.json        the resolved RLRunConfig, RewardConfig and AgentConfig
    steps.jsonl        one row per optimizer step: mean of every reward term, resolve rate,
    steps.csv          loop rate, expert calls, steps, rollout throughput, TRL's loss/KL/clip stats
    rollouts.jsonl     one row per episode: step, task, exit status, reward terms, sequence stats
    trajectories/      step-NNNNNN/<k>-<instance_id>.json full trajectories (save_trajectories)
    grade_logs/        grader logs per episode
    checkpoints/       TRL checkpoints (resume from the last one)
    curves.png         training curves (from steps.jsonl only)
    final/             the trained model (LoRA merged), loadable by TransformersPolicy
    eval/              evaluate_before_after: before/, after/, before_after.csv

``protege rl --preset smoke --out DIR [--set key=value ...]`` runs `train`.
"""

from __future__ import annotations

import json
import random
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from protege.agent.loop import AgentConfig, run_episodes
from protege.agent.tools import template_schemas
from protege.core.config import config_hash, resolve
from protege.core.metrics import episode_metrics, loop_rate
from protege.core.paths import safe_name
from protege.core.progress import Progress
from protege.core.trajectory import Trajectory, atomic_write, read_jsonl, to_json
from protege.env.base import EnvConfig
from protege.env.factory import make_environment
from protege.env.grading import grade
from protege.models.engine import dtype_policy
from protege.models.factory import make_expert, make_judge, require_explicit_oracle
from protege.models.policies import TransformersPolicy, VLLMEnginePolicy
from protege.models.registry import resolve_model
from protege.stages.evaluate import Condition, EvalConfig, run_condition
from protege.stages.figures import rl_curves
from protege.stages.rewards import RewardConfig, curriculum_stage, episode_facts, reward_terms, trl_reward_functions
from protege.stages.rl_sequences import EpisodeSequence, episode_sequence
from protege.tasks.bundled import load_source
from protege.tasks.schema import Task

PROMPT_PREFIX = "protege-task:"




@dataclass
class RLRunConfig:
    """One RL run. Presets (smoke | small | full) differ only in scale, never in logic."""

    preset_name: str = "smoke"  # scale preset; also the AgentConfig preset of the rollouts
    model: str = "tiny"  # tiny | smollm2-135m | a local model dir (the SFT merged model) | hub id
    tasks: str = "bundled:train"  # task file or bundled[:train|:test]
    task_sample: int = 2  # a seeded random sample of this many tasks from the source (not the first N: `limit` elsewhere); -1 = all
    expert: str = "reference"  # none | reference (ORACLE built from the gold patch) | openai:MODEL
    allow_oracle: bool = False  # `full` refuses an ORACLE expert unless this is set (laptop presets use one by design)
    expert_base_url: str = "https://api.openai.com/v1"  # for openai: experts and judges
    judge: str = "heuristic"  # heuristic | openai:MODEL; scores expert calls (paper preset)
    backend: str = "local"  # environment backend: local | docker
    # --- GRPO
    num_generations: int = 2  # G: rollouts per task (the group of the group-relative advantage)
    tasks_per_step: int = 1  # distinct tasks per optimizer step (episodes per step = tasks_per_step * G)
    micro_batch_size: int = 2  # episodes per forward/backward pass; must divide episodes per step
    max_steps: int = 2  # optimizer steps (each: one round of rollouts, then one update)
    learning_rate: float = 1e-4
    lr_scheduler_type: str = "constant"
    use_lora: bool = True  # False: full-parameter RL
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    epsilon: float = 0.20  # lower clip: ratio >= 1 - epsilon
    epsilon_high: float = 0.28  # upper clip: ratio <= 1 + epsilon_high (asymmetric, as in the paper)
    beta: float = 0.0  # KL coefficient to the reference (SFT) model; 0 = no reference model
    loss_type: str = "dapo"  # TRL loss aggregation: dapo (token-level, the TRL default) | grpo | bnpo | dr_grpo
    # Advantages are scaled by the std of the step's rewards (TRL "batch"), not each group's: in a
    # group where no rollout resolves, the only reward difference is the call charge, and group
    # scaling blew 0.1 up to a full +-1 advantage against asking (at `small` calls and Pass@1 both
    # fell, docs/LOG.md 2026-12-02). group (GRPO's) | batch | none
    scale_rewards: str = "batch"
    temperature: float = 1.0  # sampling temperature of the rollouts (and of TRL's log-probs)
    gradient_checkpointing: bool = False
    # --- rollouts
    max_new_tokens: int = 24  # per turn
    step_limit: int = 4  # agent actions per episode
    max_seq_tokens: int = 4096  # cap on prompt + completion of one training sequence
    gen_batch_size: int = -1  # conversations per generate() call; -1 = episodes per step
    # LoRA: fold the adapters into the weights while generating (3x faster generation on CPU for small
    # models); unmerging leaves float32 rounding (~1e-7 relative) in the frozen weights
    merge_lora_for_rollouts: bool = True
    save_trajectories: bool = True  # keep every rollout trajectory under trajectories/
    # Rollouts with TRL's vLLM integration (GPU): TRL builds a vLLM engine beside the trainer
    # ("colocate", sharing the GPU; vllm_gpu_memory_utilization of it) and syncs the weights into it
    # before every step; our agent loop generates every turn with it (VLLMEnginePolicy). "server" mode
    # is refused: TRL's server path gathers prompts across processes at each call, and multi-turn
    # episodes make a different number of calls per process.
    use_vllm: bool = False
    vllm_mode: str = "colocate"
    vllm_gpu_memory_utilization: float = 0.3
    report_to: str = "tensorboard"  # TRL tracker(s): tensorboard (local, offline) | trackio | none | a comma list
    # autocast dtype of the GRPO forward/backward on a CPU: "auto" = protege.models.engine.dtype_policy (bfloat16 with
    # AMX/AVX512-BF16) | "float32" | "bfloat16". Rollouts keep fp32 weights; the importance ratio absorbs the
    # bf16 rounding of the recomputed log-probs (~1e-2 nats), well inside the clip range.
    cpu_train_dtype: str = "auto"
    # --- reward
    reward_preset: str = "simple"  # simple (popular variant) | paper (METHOD.md composite)
    lambda_loop: float | None = None  # None = the reward preset's (protege.stages.rewards.REWARD_PRESETS)
    lambda_collab: float | None = None  # None = the reward preset's
    reward_overrides: dict[str, Any] = field(default_factory=dict)  # other RewardConfig fields
    agent_overrides: dict[str, Any] = field(default_factory=dict)  # AgentConfig fields
    # --- loop metric, checkpoints, evaluation
    loop_run_threshold: int = 10  # loop rate: share of episodes with a base-command run longer than this
    save_steps: int = 1  # checkpoint every N steps
    save_total_limit: int = 2  # checkpoints kept
    eval_tasks: str = "bundled:test"  # held-out tasks of evaluate_before_after
    eval_limit: int = 2  # held-out tasks evaluated (-1 = all)
    device: str = "auto"  # auto | cpu | cuda
    seed: int = 0

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> RLRunConfig:
        """A scale preset with overrides (protege.core.config.resolve); ``reward_overrides.X`` /
        ``agent_overrides.X`` set one field of the reward / agent config.

        >>> c = RLRunConfig.preset("small", lambda_loop=0.2, **{"reward_overrides.w_sim": 0.5})
        >>> c.model, c.num_generations, c.lambda_loop, c.reward_overrides
        ('smollm2-135m', 4, 0.2, {'charge_every_call': True, 'w_sim': 0.5})
        """
        return resolve(cls, PRESETS, name, overrides, preset_name=name)

    @property
    def episodes_per_step(self) -> int:
        return self.tasks_per_step * self.num_generations

    def validate(self) -> None:
        require_explicit_oracle("04 rl", self.preset_name, self.allow_oracle, expert=self.expert)
        if self.num_generations < 2:
            raise ValueError("num_generations must be >= 2 (group-relative advantages need a group)")
        if self.episodes_per_step % self.micro_batch_size:
            raise ValueError(f"micro_batch_size {self.micro_batch_size} must divide the episodes per step "
                             f"({self.tasks_per_step} tasks x {self.num_generations} = {self.episodes_per_step})")
        if self.temperature <= 0:
            raise ValueError("RL needs sampling: temperature must be > 0")
        if self.use_vllm and self.vllm_mode != "colocate":
            raise ValueError(f"vllm_mode {self.vllm_mode!r}: only 'colocate' works with multi-turn rollouts "
                             "(TRL's server mode gathers prompts across processes at every call)")
        self.reward_config()  # raises on unknown reward fields
        self.agent_config()

    def reward_config(self) -> RewardConfig:
        return RewardConfig.preset(self.reward_preset, lambda_loop=self.lambda_loop,
                                   lambda_collab=self.lambda_collab, **self.reward_overrides)

    def agent_config(self) -> AgentConfig:
        """The agent loop's limits for rollouts: nothing is dropped from the context (prefix-
        stable prompts), all episodes of a step are stepped together."""
        base = {"step_limit": self.step_limit, "max_context_tokens": -1, "max_context_messages": -1,
                "max_parallel": self.episodes_per_step}
        return AgentConfig.preset(self.preset_name, **{**base, **self.agent_overrides})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PRESETS: dict[str, dict[str, Any]] = {
    # tests / CI: a tiny random model, 1 task x G=2, a few turns, minutes on a laptop CPU
    "smoke": {
        "model": "tiny", "task_sample": 2, "num_generations": 2, "tasks_per_step": 1, "micro_batch_size": 2,
        "max_steps": 2, "learning_rate": 1e-4, "use_lora": True, "lora_r": 8, "max_new_tokens": 24,
        "step_limit": 4, "max_seq_tokens": 4096, "eval_limit": 2,
    },
    # laptop CPU: SmolLM2-135M after SFT (notebook 04 passes 03_sft/merged), LoRA, compact episodes of
    # ~1k tokens: 4 tasks x G=4 per step, 4 steps (~4 min a step in fp32). Four groups at temperature 1.0, because
    # at 2 groups and 0.7 the rollouts of a group mostly did the same thing: 2 of 8 groups had any reward spread
    # (0 advantage elsewhere); 4 groups at 1.0 gave a spread at every step (docs/LOG.md session 11).
    # Every expert call costs lambda_collab (charge_every_call), so asking where the issue already
    # pinpoints the bug is paid for, asking where it is needed still pays. 15 steps (evaluation: 20) leave
    # room for the repeats the loop penalty acts on; 4096 tokens hold such an episode whole, so the
    # repeated turns are trained on (a longer sequence is cut there, rl_sequences).
    "small": {
        "model": "smollm2-135m", "task_sample": 48, "num_generations": 4, "tasks_per_step": 4, "micro_batch_size": 2,
        "max_steps": 4, "learning_rate": 2e-4, "use_lora": True, "lora_r": 16, "lora_alpha": 32,
        "max_new_tokens": 128, "temperature": 1.0, "step_limit": 15, "max_seq_tokens": 4096, "eval_limit": 2,
        "reward_overrides": {"charge_every_call": True},
    },
    # GPU box: the paper's scale (100 tasks, 160 steps, G=6), full-parameter, KL to the SFT model
    "full": {
        "model": "Qwen/Qwen2.5-Coder-7B-Instruct", "tasks": "swe-gym-train.jsonl", "expert": "openai:gpt-4.1",
        "backend": "docker", "eval_tasks": "princeton-nlp/SWE-bench_Verified",
        "task_sample": 100, "num_generations": 6, "tasks_per_step": 8,
        "micro_batch_size": 1, "max_steps": 160, "learning_rate": 1e-6, "use_lora": False, "beta": 0.001,
        "max_new_tokens": 1024, "step_limit": 75, "max_seq_tokens": 32_768, "gradient_checkpointing": True,
        "save_steps": 10, "eval_limit": -1, "use_vllm": True, "vllm_gpu_memory_utilization": 0.3,
    },
}


def sft_model(run_dir: str | Path) -> str | None:
    """The SFT stage's model of a pipeline run (``{run_dir}/03_sft/merged``) when it exists: what
    notebook 04 trains by default; None = the preset's model."""
    sft = Path(run_dir) / "03_sft" / "merged"
    return str(sft) if sft.is_dir() else None


# ------------------------------------------------------------------------------ rollouts


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
        stats["step_limit_rate"] = _mean([float(t.exit_status == "step_limit") for t in trajs])
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


# ------------------------------------------------------------------------- step logging


def _truncate_jsonl(path: Path, keep_through_step: int) -> None:
    """Drop rows of steps after `keep_through_step` (an interrupted run's steps are redone)."""
    if path.exists():
        rows = [r for r in read_jsonl(path) if int(r.get("step", 0)) <= keep_through_step]
        atomic_write(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def load_steps(out_dir: str | Path):
    """steps.jsonl of a run folder as a pandas DataFrame (one row per optimizer step)."""
    import pandas as pd

    return pd.DataFrame(read_jsonl(Path(out_dir) / "steps.jsonl"))


def _step_logger(rollout: AgentRollout, out_dir: Path, verbose: bool):
    from transformers import TrainerCallback

    class StepLogger(TrainerCallback):
        """Merges the rollout statistics of a step with TRL's logged metrics into steps.jsonl/.csv."""

        def on_train_begin(self, args, state, control, **kwargs):
            self.progress = Progress("rl", state.max_steps, every_s=0)

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            if "train_runtime" in logs or "loss" not in logs:
                return
            step = int(state.global_step)
            row = {"step": step, **rollout.pending.pop(step, {}), **{f"trl/{k}": v for k, v in logs.items()}}
            with (out_dir / "steps.jsonl").open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")
            load_steps(out_dir).to_csv(out_dir / "steps.csv", index=False)
            self.progress.update(step, f"reward {row.get('reward_total', float('nan')):+.3f}")
            if verbose:
                print(f"[rl] step {step} done: loss {logs.get('loss', float('nan')):+.4f}, "
                      f"reward {row.get('reward_total', float('nan')):+.3f}, resolve {row.get('resolve_rate', 0):.2f}, "
                      f"C_loop {row.get('c_loop', 0):.2f}, calls {row.get('expert_calls', 0):.2f}, "
                      f"steps {row.get('steps', 0):.1f}, kl {logs.get('kl', 0.0):.4f}", flush=True)

    return StepLogger()


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


TABLE_COLUMNS = ("step", "stage", "groups_with_spread", "reward_total", "reward_task", "reward_loop", "reward_collab",
                 "reward_follow", "reward_gated_other", "reward_no_call", "resolve_rate", "c_loop", "loop_rate", "expert_calls",
                 "steps", "format_errors", "episodes_per_s", "gen_tokens_per_s", "trl/loss", "trl/kl",
                 "trl/clip_ratio/region_mean")


def step_table(out_dir: str | Path):
    """The main per-step columns of steps.jsonl (those the run's reward preset has)."""
    steps = load_steps(out_dir)
    return steps[[c for c in TABLE_COLUMNS if c in steps.columns]]



# --------------------------------------------------------------------------------- train


@dataclass
class RLResult:
    out_dir: Path
    final_dir: Path
    steps: int  # optimizer steps logged in steps.jsonl
    last: dict[str, Any]  # the last row of steps.jsonl


def _device(name: str) -> str:
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_trainable_model(model_dir: str | Path, dtype: Any) -> Any:
    """The causal LM to train. A config that still names GGUF quantization although the folder
    holds plain safetensors (how `protege.models.registry.smollm2_dir` saved SmolLM2 so far) is loaded
    without it: the weights are dequantized fp32, and the Trainer refuses GGUF-"quantized" models."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(model_dir)
    quant = getattr(config, "quantization_config", None)
    if isinstance(quant, dict) and quant.get("quant_method") == "gguf":
        del config.quantization_config
    return AutoModelForCausalLM.from_pretrained(model_dir, config=config, dtype=dtype)


def _save_final(trainer: Any, tokenizer: Any, final: Path, steps: int) -> None:
    """The trained model, LoRA merged, with the tokenizer: loadable by TransformersPolicy."""
    from peft import PeftModel

    model = trainer.accelerator.unwrap_model(trainer.model)
    if isinstance(model, PeftModel):
        model = model.merge_and_unload()
    tmp = final.with_name(final.name + ".tmp")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "COMPLETE").write_text(json.dumps({"steps": steps}))
    if final.exists():
        import shutil

        shutil.rmtree(final)
    tmp.rename(final)


def train(config: RLRunConfig, out_dir: str | Path, resume: bool = True,
          extra_reward_funcs: list[Callable[..., list[float]]] | None = None, verbose: bool = True) -> RLResult:
    """GRPO (PPO clipped objective, group-relative advantages) over our agent loop.

    Resumable: with `resume`, training continues from the last checkpoint in
    ``out_dir/checkpoints`` (rows of later, unfinished steps are dropped and redone); a finished
    run (``final/COMPLETE`` at ``max_steps``) returns at once. `extra_reward_funcs` are added to
    the total (tests use one to give an untrained tiny model a reward with variance)."""
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer
    from transformers.trainer_utils import get_last_checkpoint
    from trl import GRPOConfig, GRPOTrainer


    config.validate()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_dir, final = out / "checkpoints", out / "final"
    last = get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.is_dir() else None
    if last and not resume:
        raise ValueError(f"{ckpt_dir} holds checkpoints: pass resume=True, or use another run folder")
    done = json.loads((final / "COMPLETE").read_text()) if (final / "COMPLETE").exists() else {}
    if resume and done.get("steps", -1) >= config.max_steps:
        steps = load_steps(out)
        if verbose:
            print(f"[rl] {out} already finished {config.max_steps} steps: nothing to do")
        return RLResult(out, final, len(steps), steps.iloc[-1].to_dict() if len(steps) else {})
    resume_step = int(Path(last).name.rsplit("-", 1)[1]) if last else 0
    for name in ("steps.jsonl", "rollouts.jsonl"):
        _truncate_jsonl(out / name, resume_step)

    device = _device(config.device)
    model_dir = resolve_model(config.model)
    tasks = select_tasks(config.tasks, config.task_sample, config.seed)
    if config.tasks_per_step > len(tasks):
        raise ValueError(f"tasks_per_step {config.tasks_per_step} > {len(tasks)} training tasks")
    reward_cfg, agent_cfg = config.reward_config(), config.agent_config()
    atomic_write(out / "config.json", json.dumps({
        "rl": config.to_dict(), "reward": reward_cfg.to_dict(), "agent": agent_cfg.to_dict(),
        "model_dir": str(model_dir), "device": device, "tasks": [t.instance_id for t in tasks],
        "objective": "GRPO-style PPO: clipped surrogate, group-relative advantages (TRL GRPOTrainer)",
    }, indent=2))

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    model = load_trainable_model(model_dir, dtype)
    expert = make_expert(config.expert, config.expert_base_url)
    judge = make_judge(config.judge, config.expert_base_url) if reward_cfg.preset_name == "paper" else None
    rollout = AgentRollout(config, tasks, tokenizer, str(model_dir), out, expert, judge,
                           EnvConfig(backend=config.backend), verbose=verbose)
    dataset = Dataset.from_dict({"prompt": [task_prompt(t) for t in tasks],
                                 "instance_id": [t.instance_id for t in tasks]})
    args = GRPOConfig(
        output_dir=str(ckpt_dir), max_steps=config.max_steps, learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler_type, per_device_train_batch_size=config.micro_batch_size,
        gradient_accumulation_steps=config.episodes_per_step // config.micro_batch_size,
        num_generations=config.num_generations, temperature=config.temperature, top_p=1.0,
        epsilon=config.epsilon, epsilon_high=config.epsilon_high, beta=config.beta, loss_type=config.loss_type,
        scale_rewards=config.scale_rewards, max_completion_length=config.max_seq_tokens,
        activation_checkpointing=config.gradient_checkpointing, use_cpu=device == "cpu",
        bf16=device != "cpu" or (config.cpu_train_dtype if config.cpu_train_dtype != "auto"
                                 else dtype_policy("cpu")["train"]) == "bfloat16",
        logging_steps=1, save_strategy="steps", save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        report_to=[t.strip() for t in config.report_to.split(",") if t.strip() and t.strip() != "none"],
        seed=config.seed, disable_dropout=True,
        **({"use_vllm": True, "vllm_mode": config.vllm_mode, "vllm_max_model_length": config.max_seq_tokens,
            "vllm_gpu_memory_utilization": config.vllm_gpu_memory_utilization} if config.use_vllm else {}),
        dataloader_num_workers=0, disable_tqdm=True, log_completions=False, log_level="warning",
    )
    peft_config = None
    if config.use_lora:
        from peft import LoraConfig

        peft_config = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                                 target_modules="all-linear", task_type="CAUSAL_LM")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*rollout_func.*experimental.*")
        funcs = trl_reward_functions(reward_cfg) + list(extra_reward_funcs or [])
        trainer = GRPOTrainer(model=model, reward_funcs=funcs, args=args, train_dataset=dataset,
                              processing_class=tokenizer, peft_config=peft_config, rollout_func=rollout,
                              callbacks=[_step_logger(rollout, out, verbose)])
    if verbose:
        n_train = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
        print(f"[rl] {config.preset_name}: {model_dir} on {device}, {len(tasks)} tasks, {config.tasks_per_step} task(s) x "
              f"G={config.num_generations} per step, {config.max_steps} steps, reward {reward_cfg.preset_name}, "
              f"{n_train:,} trainable parameters" + (f", resuming from {last}" if last else ""), flush=True)
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # StepLogger prints one line per step instead
    trainer.train(resume_from_checkpoint=last)
    _save_final(trainer, tokenizer, final, int(trainer.state.global_step))
    steps = load_steps(out)
    if len(steps):

        rl_curves(steps, out / "curves.png", f"{out.parent.name}/{out.name}", config_hash(config))
    return RLResult(out, final, len(steps), steps.iloc[-1].to_dict() if len(steps) else {})


# ---------------------------------------------------------------------------- evaluation


def evaluate_model(model: str | Path, out_dir: str | Path, config: RLRunConfig, label: str = "") -> dict[str, Any]:
    """The agent (greedy) with `model` on the config's held-out tasks, graded; resumable
    (trajectories and report.json in ``out_dir``). One condition of stage 05's evaluator
    (`protege.stages.evaluate.run_condition`: the same episodes, grading and resume), summarised with
    the RL metrics; a quick before/after check, stage 05 is the full evaluation."""

    tasks = select_tasks(config.eval_tasks, config.eval_limit, config.seed)
    agent_cfg = AgentConfig.preset(config.preset_name, **{"step_limit": config.step_limit, "max_parallel": 8,
                                                     **config.agent_overrides})
    eval_cfg = EvalConfig(preset_name=config.preset_name, tasks=config.eval_tasks, limit=config.eval_limit,
                          seeds=[config.seed], agent_preset=config.preset_name, step_limit=agent_cfg.step_limit,
                          max_parallel=agent_cfg.max_parallel, max_new_tokens=config.max_new_tokens,
                          temperature=0.0, device=_device(config.device), expert=config.expert,
                          expert_base_url=config.expert_base_url, backend=config.backend)
    cond = Condition(label or "model", f"transformers:{model}", config.expert)
    trajs, resolved = run_condition(cond, config.seed, tasks, eval_cfg, Path(out_dir), EnvConfig(backend=config.backend),
                                    {}, progress=False, agent=agent_cfg)
    return {"label": label, "model": str(model),
            **episode_metrics(trajs, [bool(resolved.get(t.instance_id)) for t in trajs], config.loop_run_threshold)}


def evaluate_before_after(config: RLRunConfig, out_dir: str | Path, before: str | Path | None = None,
                          after: str | Path | None = None):
    """Loop rate and resolve rate on held-out tasks before RL (`config.model`) and after
    (``out_dir/final``); a DataFrame, also written to ``out_dir/eval/before_after.csv``."""
    import pandas as pd

    out = Path(out_dir)
    rows = [evaluate_model(before or config.model, out / "eval" / "before", config, "before"),
            evaluate_model(after or out / "final", out / "eval" / "after", config, "after")]
    table = pd.DataFrame(rows)
    table.to_csv(out / "eval" / "before_after.csv", index=False)
    return table


# ---------------------------------------------------------------------------------- CLI
