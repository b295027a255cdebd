"""Stage 03's settings: what is trained (LoRA / QLoRA / full), on what, how long, and the smoke /
small / full presets."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from typing import Any

from protege.core.config import config_hash, resolve
from protege.core.paths import project_root
from protege.stages.sft_data import (
    LONG_POLICIES,
)

MODES = ("lora", "qlora", "full")


# Shipped accelerate launch configs for multi-GPU full-parameter SFT (FSDP2, DeepSpeed ZeRO-3)
ACCELERATE_CONFIGS = project_root() / "configs" / "accelerate"


# Fields that define what is trained: a run folder refuses to resume under different values.
IDENTITY_FIELDS = ("model", "mode", "lora_r", "lora_alpha", "lora_target_modules", "max_length", "long_policy")


@dataclass
class SFTRunConfig:
    """Stage 03 settings. Presets (`preset`) differ only in these knobs, never in logic."""

    preset_name: str = "smoke"  # the preset these values started from (informational)
    dataset: str = "mixed"  # which dataset of stage 02 (live | mixed | inserted-<strategy>) notebook 03 trains on
    model: str = "tiny"  # protégé: "tiny" | "smollm2-135m" | local directory | hub id
    mode: str = "lora"  # "lora" | "qlora" (4-bit NF4 base + LoRA) | "full" (every weight trained)
    lora_r: int = 8  # LoRA rank (lora / qlora)
    lora_alpha: int = 16  # LoRA scale numerator: updates are scaled by lora_alpha / lora_r
    lora_dropout: float = 0.05  # dropout probability on the LoRA branch input
    lora_target_modules: str = "all-linear"  # "all-linear" (every Linear but lm_head) or "q_proj,v_proj,..."
    learning_rate: float = 1e-3  # peak learning rate (linear warmup, then linear decay to 0)
    warmup_ratio: float = 0.0  # fraction of the optimizer steps spent warming up
    weight_decay: float = 0.0  # AdamW weight decay
    max_grad_norm: float = 1.0  # gradient clipping norm; -1 = disable
    epochs: float = 1.0  # passes over the training windows (used when max_steps = -1)
    max_steps: int = 6  # optimizer steps; -1 = disable (train `epochs` epochs)
    per_device_batch: int = 2  # windows per device per forward pass
    grad_accum: int = 1  # forward passes per optimizer step (effective batch = per_device_batch x grad_accum x devices)
    max_length: int = 3072  # tokens per training sequence; longer conversations follow long_policy
    long_policy: str = "window"  # "window" | "drop" | "error" (module docstring)
    bf16: bool = False  # bfloat16 weights and compute; only on a GPU (always off on CPU)
    # CPU autocast dtype of forward/backward (master weights stay fp32): "auto" = protege.models.engine.dtype_policy
    # (bfloat16 where the CPU has AMX/AVX512-BF16, else float32) | "float32" | "bfloat16"
    cpu_train_dtype: str = "auto"
    gradient_checkpointing: bool = False  # recompute activations in backward: less memory, ~30% slower
    # Sequence lengths rounded up to a multiple of this (padding carries no loss): on CPU every new
    # length costs new oneDNN kernels and fragments the heap (docs/LOG.md 2026-12-03, session 17:
    # the whole small SFT peaked at 6.0 GiB padded to 64, 8.9 GiB with exact lengths). 0 = exact lengths.
    pad_to_multiple_of: int = 64
    # Liger's Triton kernels (RMSNorm, RoPE, SwiGLU, fused linear cross-entropy) through transformers'
    # `use_liger_kernel` (pip install liger-kernel); GPU only, ignored on a CPU
    use_liger_kernel: bool = False
    device: str = "auto"  # "auto" (cuda if available, else cpu) | "cpu" | "cuda"
    optim: str = "adamw_torch"  # transformers optimizer name (e.g. "paged_adamw_8bit" for QLoRA on a GPU)
    save_steps: int = 3  # checkpoint every N optimizer steps; -1 = only at the end
    save_total_limit: int = 2  # checkpoints kept in out_dir/checkpoints; -1 = keep all
    eval_steps: int = -1  # validation loss every N optimizer steps; -1 = only at the end
    eval_limit: int = -1  # validation conversations used (the first N); -1 = all. Eval is a full forward pass per window
    logging_steps: int = 1  # train loss logged every N optimizer steps
    # TRL/transformers trackers: "tensorboard" (local, offline: events under the checkpoints folder,
    # `tensorboard --logdir RUN` or the run report's links), "trackio", "none", or a comma list
    report_to: str = "tensorboard"
    seed: int = 0  # seed of data order, dropout and LoRA initialisation

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> SFTRunConfig:
        """A scale preset (smoke | small | full) with field overrides.

        >>> SFTRunConfig.preset("full").model, SFTRunConfig.preset("small", max_steps=3).max_steps
        ('Qwen/Qwen2.5-Coder-7B-Instruct', 3)
        """

        config = resolve(cls, PRESETS, name, overrides, preset_name=name)
        config.validate()
        return config

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"SFTRunConfig.mode = {self.mode!r}: use one of {', '.join(MODES)}")
        if self.long_policy not in LONG_POLICIES:
            raise ValueError(f"SFTRunConfig.long_policy = {self.long_policy!r}: use one of {', '.join(LONG_POLICIES)}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"SFTRunConfig.device = {self.device!r}: use auto, cpu or cuda")
        if self.max_length <= 0:
            raise ValueError(f"SFTRunConfig.max_length = {self.max_length}: must be positive")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SFTRunConfig:
        """A config from `to_dict` output; unknown fields are refused.

        >>> SFTRunConfig.from_dict(SFTRunConfig.preset("small").to_dict()) == SFTRunConfig.preset("small")
        True
        """
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"SFTRunConfig: unknown fields {sorted(unknown)}")
        config = cls(**data)
        config.validate()
        return config

    def hash(self) -> str:
        """Short hash of the resolved config (names a run in figures and logs)."""

        return config_hash(self)


PRESETS: dict[str, dict[str, Any]] = {
    # Tiny random model: a minute on a laptop CPU. max_length fits the ~1.7k-token tool prompt of
    # the tiny tokenizer plus some history, so long trajectories do get windowed.
    "smoke": {"model": "tiny", "mode": "lora", "lora_r": 8, "lora_alpha": 16, "learning_rate": 1e-3,
              "max_steps": 6, "per_device_batch": 2, "grad_accum": 1, "max_length": 3072, "save_steps": 3,
              "eval_steps": -1, "logging_steps": 1},
    # SmolLM2-135M-Instruct on a 2-core CPU: full fine-tuning (the paper's choice; 135M fits) in bf16
    # autocast on the compact live-collaboration episodes (~600-900 tokens each, so whole episodes fit
    # 1024 tokens and need no windows), three epochs of ~140 conversations (~54 steps of 8, one at a time:
    # padding a batch of 8 halved the tokens/s, docs/LOG.md 2026-12-02) at lr 2e-4: ~18 min at ~250
    # tokens/s (the LM head only at trained positions). One epoch (6 min) followed description-level
    # advice poorly: 21% Pass@1 (docs/LOG.md 2026-12-02, session 8).
    # LoRA at lr 1e-3 for 8 steps on 5k-token windows taught nothing (docs/LOG.md 2026-11-24, 2026-12-02).
    "small": {"model": "smollm2-135m", "dataset": "live", "mode": "full", "learning_rate": 2e-4,
              "warmup_ratio": 0.05, "epochs": 3.0, "max_steps": -1, "per_device_batch": 1, "grad_accum": 8,
              "max_length": 1024, "gradient_checkpointing": False, "save_steps": 20, "save_total_limit": 1,
              "eval_steps": -1, "eval_limit": 16, "logging_steps": 2},
    # Qwen2.5-Coder-7B-Instruct, every weight trained (the paper: full SFT at 32k context, LoRA and
    # QLoRA were worse), on one node of 8 GPUs: `accelerate launch --config_file
    # configs/accelerate/fsdp2.yaml` (or deepspeed_zero3.yaml). 1 x 2 windows per GPU per step = 16
    # conversations per step; bf16, gradient checkpointing and Liger kernels to fit 32k tokens.
    # One GPU: `--set mode=lora --set learning_rate=1e-4` (LoRA r64).
    "full": {"model": "Qwen/Qwen2.5-Coder-7B-Instruct", "mode": "full", "lora_r": 64, "lora_alpha": 128,
             "lora_dropout": 0.05, "learning_rate": 1e-5, "warmup_ratio": 0.03, "epochs": 3.0, "max_steps": -1,
             "per_device_batch": 1, "grad_accum": 2, "max_length": 32_768, "bf16": True,
             "gradient_checkpointing": True, "use_liger_kernel": True, "save_steps": 100, "save_total_limit": 3,
             "eval_steps": 100,
             "logging_steps": 5},
}


# The data ablation (live collaboration vs post-hoc inserted calls) trains a second model on
# this dataset of notebook 02 into {run_dir}/03_sft_inserted; off at `small`, where a second
# SFT would double the CPU hours (pass ablation_data="inserted-stall" to run it there).
ABLATION_DATA = {"smoke": "inserted-stall", "small": "", "full": "inserted-stall"}


def ablation_dataset(preset: str, value: str = "auto") -> str:
    """The dataset of the data-ablation model: `value`, or the preset's default for "auto".

    >>> ablation_dataset("smoke"), ablation_dataset("small"), ablation_dataset("small", "inserted-random")
    ('inserted-stall', '', 'inserted-random')
    """
    return ABLATION_DATA.get(preset, "") if value == "auto" else value
