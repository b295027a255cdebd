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
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protege.agent.config import AgentConfig
from protege.core.config import config_hash
from protege.core.metrics import episode_metrics
from protege.core.progress import Progress
from protege.core.trajectory import atomic_write, read_jsonl
from protege.env.base import EnvConfig
from protege.models.engine import dtype_policy
from protege.models.factory import make_expert, make_judge
from protege.models.registry import resolve_model
from protege.stages.evaluate import run_condition
from protege.stages.evaluate_config import Condition, EvalConfig
from protege.stages.figures import rl_curves
from protege.stages.reward_config import RewardConfig
from protege.stages.rewards import trl_reward_functions
from protege.stages.rl_config import RLRunConfig
from protege.stages.rl_rollout import AgentRollout, select_tasks, task_prompt

# ------------------------------------------------------------------------------ rollouts


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


def _grpo_args(config: RLRunConfig, ckpt_dir: Path, device: str) -> Any:
    """TRL's GRPOConfig for the run: one optimizer step per round of tasks_per_step x G episodes."""
    from trl import GRPOConfig

    return GRPOConfig(
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


def _peft_config(config: RLRunConfig) -> Any:
    """LoRA on every linear layer, or None for full-parameter RL."""
    if not config.use_lora:
        return None
    from peft import LoraConfig

    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules="all-linear", task_type="CAUSAL_LM")


def _write_config(config: RLRunConfig, reward_cfg: RewardConfig, out: Path, model_dir: Any, device: str,
                  tasks: list) -> None:
    """config.json: the resolved RL, reward and agent configs with the model, device and training tasks."""
    atomic_write(out / "config.json", json.dumps({
        "rl": config.to_dict(), "reward": reward_cfg.to_dict(), "agent": config.agent_config().to_dict(),
        "model_dir": str(model_dir), "device": device, "tasks": [t.instance_id for t in tasks],
        "objective": "GRPO-style PPO: clipped surrogate, group-relative advantages (TRL GRPOTrainer)",
    }, indent=2))


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
    from trl import GRPOTrainer

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
    reward_cfg = config.reward_config()
    _write_config(config, reward_cfg, out, model_dir, device, tasks)

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    model = load_trainable_model(model_dir, dtype)
    expert = make_expert(config.expert, config.expert_base_url)
    judge = make_judge(config.judge, config.expert_base_url) if reward_cfg.preset_name == "paper" else None
    rollout = AgentRollout(config, tasks, tokenizer, str(model_dir), out, expert, judge,
                           EnvConfig(backend=config.backend), verbose=verbose)
    dataset = Dataset.from_dict({"prompt": [task_prompt(t) for t in tasks],
                                 "instance_id": [t.instance_id for t in tasks]})
    args, peft_config = _grpo_args(config, ckpt_dir, device), _peft_config(config)
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
                                                     "interface": config.interface, **config.agent_overrides})
    eval_cfg = EvalConfig(preset_name=config.preset_name, tasks=config.eval_tasks, limit=config.eval_limit,
                          seeds=[config.seed], agent_preset=config.preset_name, step_limit=agent_cfg.step_limit,
                          interface=agent_cfg.interface,
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
