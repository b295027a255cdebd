"""Stage 04's settings: the GRPO run, its rollouts and reward, and the smoke / small / full presets."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from protege.agent.config import AgentConfig
from protege.core.config import resolve
from protege.models.factory import require_explicit_oracle
from protege.stages.reward_config import RewardConfig


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
    lambda_loop: float | None = None  # None = the reward preset's (protege.stages.reward_config.REWARD_PRESETS)
    lambda_collab: float | None = None  # None = the reward preset's
    reward_overrides: dict[str, Any] = field(default_factory=dict)  # other RewardConfig fields
    agent_overrides: dict[str, Any] = field(default_factory=dict)  # AgentConfig fields
    interface: str = "tool"  # how the protégé asks: tool (ask_expert) | token (<<collaborate>>); AgentConfig.interface
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
                "max_parallel": self.episodes_per_step, "interface": self.interface}
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
    # repeated turns are trained on (a longer sequence is cut there, rl_sequences). A loop ends at its 5th
    # identical step (repeat_limit, as in `make rl-study`): still penalised, without ten more turns of rollout
    # and training time (the tool protégé's first RL step at 15 steps: 6.5 actions an episode, 16 min).
    "small": {
        "model": "smollm2-135m", "task_sample": 48, "num_generations": 4, "tasks_per_step": 4, "micro_batch_size": 2,
        "max_steps": 4, "learning_rate": 2e-4, "use_lora": True, "lora_r": 16, "lora_alpha": 32,
        "max_new_tokens": 128, "temperature": 1.0, "step_limit": 15, "max_seq_tokens": 4096, "eval_limit": 2,
        "reward_overrides": {"charge_every_call": True}, "agent_overrides": {"repeat_limit": 5},
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
