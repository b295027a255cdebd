"""Stage 03: supervised fine-tuning of the protégé on expert-augmented trajectories (TRL SFTTrainer).

Reads a dataset folder written by `protege.stages.dataset.save_dataset` (stage 02) and trains one model
with LoRA, QLoRA (4-bit NF4 base + LoRA) or full fine-tuning, chosen by `SFTRunConfig.mode`.

What the model is trained on, and how long conversations are split: `protege.stages.sft_data` (pure).

Run folder written by `train(config, data_dir, out_dir)`::

    out_dir/config.json         resolved SFTRunConfig + config hash + data dir + the dataset's config.json
    out_dir/data_stats.json     token / window counts of the train and validation splits
    out_dir/checkpoints/        trainer checkpoints (`train` resumes from the last one)
    out_dir/adapter/            LoRA adapter + tokenizer (lora / qlora)
    out_dir/merged/             full merged model + tokenizer, loadable by TransformersPolicy(model_dir=...)
    out_dir/train_log.jsonl     trainer log history, one record per line (and train_log.csv)
    out_dir/loss.png            train / eval loss curves, titled with the run id and config hash
    out_dir/metrics.json        final losses, runtime, tokens seen, throughput (tokens/s), counts

CLI: ``python -m protege sft --preset small --data DIR --out DIR [--set key=value ...] [--dry-run]``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from protege.core.config import apply, config_hash, resolve
from protege.core.paths import project_root
from protege.core.progress import Progress
from protege.core.trajectory import atomic_write, plain
from protege.models.engine import dtype_policy, peak_rss_gib, use_native_gqa
from protege.models.registry import SMOLLM2_SPEC, TINY_SPEC, resolve_model
from protege.stages.dataset import agent_messages, load_split
from protege.stages.figures import sft_loss
from protege.stages.sft_data import (
    LONG_POLICIES,
    TokenStats,
    tokenize_conversation,
    tokenize_rows,
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


def apply_overrides(config: SFTRunConfig, assignments: list[str]) -> SFTRunConfig:
    """`key=value` strings applied to a config, values parsed by the field's type.

    >>> c = apply_overrides(SFTRunConfig.preset("smoke"), ["max_steps=3", "bf16=true", "mode=full"])
    >>> c.max_steps, c.bf16, c.mode
    (3, True, 'full')
    """

    config = apply(config, assignments)
    config.validate()
    return config


# ----------------------------------------------------------------------------------------------
# Trainer construction.


def resolve_device(config: SFTRunConfig) -> str:
    if config.device != "auto":
        return config.device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _lora_targets(config: SFTRunConfig) -> str | list[str]:
    spec = config.lora_target_modules.strip()
    return spec if spec == "all-linear" else [m.strip() for m in spec.split(",") if m.strip()]


def peft_config(config: SFTRunConfig):
    """The peft LoraConfig of a lora / qlora run (None for full fine-tuning)."""
    if config.mode == "full":
        return None
    from peft import LoraConfig

    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=_lora_targets(config), bias="none", task_type="CAUSAL_LM")


def quantization_config(config: SFTRunConfig, device: str):
    """BitsAndBytesConfig (4-bit NF4, double quantisation) of a qlora run, else None."""
    if config.mode != "qlora":
        return None
    import torch
    from transformers import BitsAndBytesConfig

    compute = torch.bfloat16 if (config.bf16 and device == "cuda") else torch.float32
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute)


def cpu_train_dtype(config: SFTRunConfig) -> str:
    """The autocast dtype of training on a CPU (recorded in the run's config.json)."""
    if config.cpu_train_dtype == "auto":

        return dtype_policy("cpu")["train"]
    return config.cpu_train_dtype


def sft_kwargs(config: SFTRunConfig, output_dir: str | Path, device: str, has_eval: bool = True) -> dict[str, Any]:
    """Keyword arguments of TRL's SFTConfig for this run on `device`."""
    on_cpu = device == "cpu"
    eval_every = config.eval_steps > 0 and has_eval
    return {
        "output_dir": str(output_dir),
        "learning_rate": config.learning_rate,
        "lr_scheduler_type": "linear",
        "warmup_steps": config.warmup_ratio,  # a value < 1 is a fraction of the steps
        "weight_decay": config.weight_decay,
        "max_grad_norm": config.max_grad_norm if config.max_grad_norm > 0 else 0.0,
        "num_train_epochs": config.epochs,
        "max_steps": config.max_steps,
        "per_device_train_batch_size": config.per_device_batch,
        "per_device_eval_batch_size": config.per_device_batch,
        "gradient_accumulation_steps": config.grad_accum,
        "activation_checkpointing": config.gradient_checkpointing,  # transformers 5 name (TRL sets the old alias)
        "use_liger_kernel": config.use_liger_kernel and not on_cpu,
        "bf16": (config.bf16 and not on_cpu) or (on_cpu and cpu_train_dtype(config) == "bfloat16"),
        "use_cpu": on_cpu,
        "optim": config.optim,
        "max_length": config.max_length,  # a no-op on our windows (checked after preparation)
        "packing": False,
        "padding_free": False,
        "pad_to_multiple_of": config.pad_to_multiple_of or None,
        "assistant_only_loss": False,  # our own assistant_masks column carries the mask
        "completion_only_loss": False,
        "logging_steps": config.logging_steps,
        "logging_first_step": True,
        "save_strategy": "steps",
        "save_steps": config.save_steps if config.save_steps > 0 else 10**9,  # the end is always saved
        "save_total_limit": config.save_total_limit if config.save_total_limit > 0 else None,
        "eval_strategy": "steps" if eval_every else "no",
        "eval_steps": config.eval_steps if eval_every else None,
        "include_num_input_tokens_seen": "non_padding",
        "seed": config.seed,
        "data_seed": config.seed,
        "report_to": [t.strip() for t in config.report_to.split(",") if t.strip() not in ("", "none")] or "none",
        "dataloader_pin_memory": not on_cpu,
        "dataset_num_proc": None,
    }


def load_tokenizer(model_path: str | Path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(config: SFTRunConfig, model_path: str | Path, device: str):
    """The base model to train: fp32 on CPU, bf16 on a GPU when config.bf16, 4-bit for qlora."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if (config.bf16 and device == "cuda") else torch.float32
    kwargs: dict[str, Any] = {"dtype": dtype}
    quant = quantization_config(config, device)
    if quant is not None:
        from accelerate import PartialState

        where = "cpu" if device == "cpu" else PartialState().process_index  # one full copy per process
        kwargs.update(quantization_config=quant, device_map={"": where})
    model = AutoModelForCausalLM.from_pretrained(model_path, **kwargs)
    model.config.use_cache = False  # no KV cache while training (gradient checkpointing needs it off)
    if device == "cpu":  # the model is still on the CPU here even when it will train on a GPU

        use_native_gqa(model)
    return model


def _dataset(examples: list[dict[str, list[int]]]):
    import datasets

    return datasets.Dataset.from_dict({"input_ids": [e["input_ids"] for e in examples],
                                       "assistant_masks": [e["assistant_masks"] for e in examples]})


def _check_prepared(prepared, examples: list[dict[str, list[int]]], split: str) -> None:
    """Refuse silently cut or dropped examples: TRL truncates to max_length and drops examples
    with no loss, both without a word."""
    if len(prepared) != len(examples) or sum(map(len, prepared["input_ids"])) != sum(
            len(e["input_ids"]) for e in examples):
        raise RuntimeError(f"TRL changed the {split} examples while preparing them ({len(examples)} in, "
                           f"{len(prepared)} out): check max_length and the masks")


@dataclass
class Prepared:
    """A trainer ready to train, with what tokenisation made of the data."""

    trainer: Any
    train_stats: TokenStats
    eval_stats: TokenStats
    model_path: str
    device: str
    train_examples: list[dict[str, list[int]]]


def trained_positions(labels):
    """Positions whose next token carries loss in any row: the only places the LM head is needed.

    >>> import torch
    >>> trained_positions(torch.tensor([[-100, -100, 5, 6, -100], [-100, 7, -100, -100, -100]])).tolist()
    [0, 1, 2]
    """
    return (labels[:, 1:] != -100).any(0).nonzero().squeeze(1)


def _sft_trainer_class():
    """TRL's SFTTrainer, computing the LM head only at trained positions on a CPU.

    Why: off Triton devices TRL's fused LM head scores every position, and about three quarters of
    our tokens (task, observations, guidance) carry no loss; a 49k-vocabulary projection over them
    is wasted work in the forward and the backward. Same loss (test_sft.py compares the two)."""
    import torch
    import torch.nn.functional as F
    from trl import SFTTrainer

    class TrainedPositionsSFTTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if return_outputs or self.args.device.type != "cpu":
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            labels = inputs["labels"]
            keep = trained_positions(labels)
            forward = {k: v for k, v in inputs.items() if k != "labels"}
            logits = model(**forward, use_cache=False, logits_to_keep=keep).logits.float()
            target = labels[:, keep + 1]
            mask = target != -100
            loss = F.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=-100, reduction="sum")
            loss = loss / (mask.sum().clamp(min=1) if num_items_in_batch is None else num_items_in_batch)
            mode = "train" if model.training else "eval"
            with torch.no_grad():  # the metrics TRL logs, on the kept positions
                n = mask.sum().clamp(min=1)
                logp = logits.log_softmax(-1)
                entropy = -(logp.exp() * logp).sum(-1)
                self._metrics[mode]["entropy"].append(((entropy * mask).sum() / n).item())
                correct = (logits.argmax(-1) == target) & mask
                self._metrics[mode]["mean_token_accuracy"].append((correct.sum() / n).item())
                if mode == "train":
                    self._total_train_tokens += int(inputs["attention_mask"].sum())
                self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
            return loss

    return TrainedPositionsSFTTrainer


def build_trainer(config: SFTRunConfig, data_dir: str | Path, output_dir: str | Path,
                  trainer_class: Any = None) -> Prepared:
    """Load the tokenizer and base model, tokenise both splits and build the trainer: ours
    (`_sft_trainer_class`), or `trainer_class` (e.g. TRL's own SFTTrainer, as the engine benchmark's
    baseline)."""
    from trl import SFTConfig


    config.validate()
    device = resolve_device(config)
    model_path = str(resolve_model(config.model))
    tok = load_tokenizer(model_path)
    train_rows = load_split(data_dir, "train")
    val_path = Path(data_dir) / "validation.jsonl"
    val_rows = load_split(data_dir, "validation") if val_path.exists() else []
    if config.eval_limit >= 0:
        val_rows = val_rows[:config.eval_limit]
    train_ex, train_stats = tokenize_rows(train_rows, tok, config.max_length, config.long_policy)
    eval_ex, eval_stats = tokenize_rows(val_rows, tok, config.max_length, config.long_policy)
    if not train_ex:
        raise ValueError(f"{data_dir}: no training window left ({train_stats.conversations} conversations, "
                         f"{train_stats.dropped_turns} turns dropped at max_length = {config.max_length})")
    args = SFTConfig(**sft_kwargs(config, output_dir, device, has_eval=bool(eval_ex)))
    model = load_model(config, model_path, device)
    trainer = (trainer_class or _sft_trainer_class())(model=model, args=args, train_dataset=_dataset(train_ex),
                         eval_dataset=_dataset(eval_ex) if eval_ex else None, processing_class=tok,
                         peft_config=peft_config(config))
    _check_prepared(trainer.train_dataset, train_ex, "train")
    if eval_ex:
        _check_prepared(trainer.eval_dataset, eval_ex, "validation")
    return Prepared(trainer, train_stats, eval_stats, model_path, device, train_ex)


# ----------------------------------------------------------------------------------------------
# Training and its outputs.


def _write_logs(log_history: list[dict[str, Any]], out_dir: Path) -> None:
    import pandas as pd

    atomic_write(out_dir / "train_log.jsonl", "".join(json.dumps(r) + "\n" for r in log_history))
    pd.DataFrame(log_history).to_csv(out_dir / "train_log.csv", index=False)


def _merge(config: SFTRunConfig, model_path: str, adapter_dir: Path, merged_dir: Path, tok, device: str) -> None:
    """Adapter merged into a fresh, non-quantised copy of the base (also for qlora)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if (config.bf16 and device == "cuda") else torch.float32
    base = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    merged.config.use_cache = True
    merged.save_pretrained(merged_dir)
    tok.save_pretrained(merged_dir)


def _check_resumable(config: SFTRunConfig, out_dir: Path) -> None:
    path = out_dir / "config.json"
    if not path.exists():
        return
    old = json.loads(path.read_text()).get("config", {})
    changed = [k for k in IDENTITY_FIELDS if k in old and old[k] != getattr(config, k)]
    if changed:
        raise ValueError(f"{out_dir} holds a run with different {', '.join(changed)} "
                         f"({', '.join(f'{k}={old[k]!r}' for k in changed)}): use a new out_dir or resume=False")


def _checkpoint_state(checkpoint: str | None) -> dict[str, Any]:
    """The checkpoint's trainer_state.json ({} without a checkpoint)."""
    return json.loads((Path(checkpoint) / "trainer_state.json").read_text()) if checkpoint else {}


def final_eval_loss(trainer) -> float | None:
    """Validation loss at the last step: the trainer's own when it evaluated there (eval_steps
    dividing the step count, or a resumed finished run), else one evaluation pass now."""
    if trainer.eval_dataset is None:
        return None
    logged = [r for r in trainer.state.log_history if "eval_loss" in r]
    if logged and logged[-1].get("step") == trainer.state.global_step:
        return logged[-1]["eval_loss"]
    return trainer.evaluate()["eval_loss"]


def console_progress(name: str):
    """A trainer callback that prints one progress line (protege.core.progress) every 30 s: the
    notebook's own progress bar is HTML, which a pipeline run on the console never shows."""
    from transformers import TrainerCallback

    class ConsoleProgress(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            self.progress, self.loss = Progress(name, state.max_steps), None

        def on_log(self, args, state, control, logs=None, **kwargs):
            self.loss = (logs or {}).get("loss", self.loss)

        def on_step_end(self, args, state, control, **kwargs):
            self.progress.update(state.global_step, f"loss {self.loss:.4f}" if self.loss is not None else "")

    return ConsoleProgress()


def train(config: SFTRunConfig, data_dir: str | Path, out_dir: str | Path, resume: bool = True) -> dict[str, Any]:
    """Train, merge and write the run folder (module docstring); returns the metrics.

    With `resume`, training continues from the last checkpoint in out_dir/checkpoints (the run's
    model, mode, LoRA shape and max_length must be unchanged); otherwise it starts over."""
    from transformers.trainer_utils import get_last_checkpoint

    config.validate()
    out_dir, data_dir = Path(out_dir), Path(data_dir)
    ckpt_dir = out_dir / "checkpoints"
    last = get_last_checkpoint(str(ckpt_dir)) if resume and ckpt_dir.is_dir() else None
    if resume:
        _check_resumable(config, out_dir)
    elif ckpt_dir.is_dir():
        shutil.rmtree(ckpt_dir)  # starting over: old checkpoints would mix with the new ones
    out_dir.mkdir(parents=True, exist_ok=True)
    dataset_config = data_dir / "config.json"
    run_id = f"{out_dir.parent.name}/{out_dir.name}"
    resolved = {"run_id": run_id, "config": config.to_dict(), "config_hash": config.hash(),
                "data_dir": str(data_dir),
                "dataset_config": json.loads(dataset_config.read_text()) if dataset_config.exists() else None}
    prep = build_trainer(config, data_dir, ckpt_dir)
    trainer = prep.trainer

    resolved.update(model_path=prep.model_path, device=prep.device,
                    train_dtype=cpu_train_dtype(config) if prep.device == "cpu" else ("bfloat16" if config.bf16 else "float32"),
                    dtype_policy=dtype_policy(prep.device),
                    attention=getattr(prep.trainer.model.config, "_attn_implementation", None))
    atomic_write(out_dir / "config.json", json.dumps(resolved, indent=2) + "\n")
    data_stats = {"train": prep.train_stats.to_dict(), "validation": prep.eval_stats.to_dict()}
    atomic_write(out_dir / "data_stats.json", json.dumps(data_stats, indent=2) + "\n")
    print(f"sft {run_id}: {prep.train_stats.windows} windows from {prep.train_stats.conversations} conversations "
          f"({prep.train_stats.split_conversations} split, {prep.train_stats.dropped_turns} turns dropped), "
          f"{prep.train_stats.tokens} tokens, {prep.train_stats.trained_tokens} trained; mode {config.mode} "
          f"on {prep.device}" + (f"; resuming from {last}" if last else ""))

    last_state = _checkpoint_state(last)
    tokens_before = int(last_state.get("num_input_tokens_seen", 0) or 0)
    start = time.monotonic()
    result = None
    if last and config.max_steps > 0 and int(last_state.get("global_step", 0)) >= config.max_steps:
        # transformers 5 resumed at max_steps trains on past it ("10/8"): load the finished
        # checkpoint instead of calling train().
        from transformers import TrainerState

        trainer._load_from_checkpoint(last)
        trainer.state = TrainerState(**last_state)
        print(f"sft {run_id}: {last} already reached max_steps = {config.max_steps}; not training further")
    else:
        trainer.add_callback(console_progress("sft"))
        result = trainer.train(resume_from_checkpoint=last)
    wall = time.monotonic() - start
    tokens_total = int(trainer.state.num_input_tokens_seen)
    tokens_session = tokens_total - tokens_before
    eval_loss = final_eval_loss(trainer)

    tok = trainer.processing_class
    if config.mode == "full":
        trainer.save_model(str(out_dir / "merged"))
        tok.save_pretrained(out_dir / "merged")
    else:
        trainer.save_model(str(out_dir / "adapter"))
        tok.save_pretrained(out_dir / "adapter")
        _merge(config, prep.model_path, out_dir / "adapter", out_dir / "merged", tok, prep.device)

    history = trainer.state.log_history
    _write_logs(history, out_dir)
    import pandas as pd


    sft_loss(pd.DataFrame(history), out_dir / "loss.png", run_id, config.hash())
    train_losses = [r["loss"] for r in history if "loss" in r]
    train_loss_mean = result.training_loss if result else (sum(train_losses) / len(train_losses) if train_losses else None)
    throughput = tokens_session / wall if wall > 0 and tokens_session else None  # None: nothing trained now
    metrics = {
        "run_id": run_id,
        "config_hash": config.hash(),
        "mode": config.mode,
        "model": config.model,
        "device": prep.device,
        "resumed_from": last,
        "global_step": trainer.state.global_step,
        "epoch": trainer.state.epoch,
        "train_loss_mean": train_loss_mean,
        "final_train_loss": train_losses[-1] if train_losses else None,
        "eval_loss": eval_loss,
        "train_runtime_s": wall,
        "tokens_seen": tokens_session,
        "tokens_seen_total": tokens_total,
        "throughput_tokens_per_s": throughput,
        # the process's peak resident memory so far: issue 13's <= 8 GB at `small`
        "peak_rss_gib": round(peak_rss_gib(), 2),
        "data": data_stats,
    }
    atomic_write(out_dir / "metrics.json", json.dumps(plain(metrics), indent=2) + "\n")
    print(f"sft {run_id}: {tokens_session} tokens in {wall:.1f} s = "
          f"{f'{throughput:.1f} tokens/s' if throughput else 'no training in this session'} "
          f"(step {trainer.state.global_step}, final train loss {metrics['final_train_loss']}, eval loss {eval_loss})")
    return metrics


def metrics_table(out_dir: str | Path):
    """metrics.json of a run folder as a two-column table (metric, value) for notebooks."""
    import pandas as pd

    metrics = json.loads((Path(out_dir) / "metrics.json").read_text())
    flat = {k: v for k, v in metrics.items() if k != "data"}
    for split, stats in metrics.get("data", {}).items():
        flat.update({f"{split}.{k}": v for k, v in stats.items() if k != "dropped_instances"})
    return pd.DataFrame({"metric": list(flat), "value": [str(v) for v in flat.values()]})


def mask_preview(config: SFTRunConfig, data_dir: str | Path, index: int = 0, width: int = 100):
    """The first window of training row `index` cut into masked / trained segments (tokenizer only),
    to see which text carries loss. Long segments are shortened to `width` characters."""
    import pandas as pd


    tok = load_tokenizer(resolve_model(config.model))
    row = load_split(data_dir, "train")[index]
    tools = json.loads(row["tools"]) if isinstance(row.get("tools"), str) else row.get("tools")
    examples, _, _ = tokenize_conversation(tok, agent_messages(row["messages"]), tools, config.max_length,
                                           config.long_policy)
    if not examples:
        raise ValueError(f"row {index} ({row.get('instance_id')}) has no window at max_length = {config.max_length}")
    ids, mask = examples[0]["input_ids"], examples[0]["assistant_masks"]
    segments, begin = [], 0
    for k in range(1, len(ids) + 1):
        if k == len(ids) or mask[k] != mask[begin]:
            text = tok.decode(ids[begin:k])
            short = text if len(text) <= width else text[:width // 2] + " ... " + text[-width // 2:]
            segments.append({"loss": bool(mask[begin]), "tokens": k - begin, "text": short})
            begin = k
    return pd.DataFrame(segments)


# ----------------------------------------------------------------------------------------------
# Dry run: the full configuration without loading weights.


def dry_run(config: SFTRunConfig, data_dir: str | Path | None = None, device: str | None = None) -> dict[str, Any]:
    """Resolve everything a run would use (TRL SFTConfig, peft and quantisation configs, launch
    commands) without loading weights or touching the hub. `device` is the machine planned for:
    default "cuda" for bf16 configs, else `resolve_device(config)`. With `data_dir` and a local
    model (tiny, smollm2-135m or a directory) the data is tokenised too (tokenizer only)."""
    from trl import SFTConfig

    config.validate()
    device = device or ("cuda" if config.bf16 or config.device == "cuda" else resolve_device(config))
    kwargs = sft_kwargs(config, "OUT_DIR/checkpoints", device)
    check = dict(kwargs)
    import torch

    validated_here = device == "cpu" or torch.cuda.is_available()
    if not validated_here:  # TrainingArguments refuses bf16 without a GPU; check the rest on CPU
        check["use_cpu"] = True
    args = SFTConfig(**check)
    lora = peft_config(config)
    quant = quantization_config(config, device)
    n_gpu = "N"
    result: dict[str, Any] = {
        "config": config.to_dict(),
        "config_hash": config.hash(),
        "device": device,
        "sft_config": kwargs,  # what train() passes to SFTConfig on `device` (checked by building it)
        "sft_config_class": type(args).__name__,
        "sft_config_validated_on": "this machine" if validated_here else "cpu (use_cpu=True only for the check)",
        "peft_config": plain(lora.to_dict()) if lora is not None else None,
        "quantization_config": plain(quant.to_dict()) if quant is not None else None,
        "trainable": "LoRA adapters only" if lora is not None else "every weight",
        "effective_batch": f"{config.per_device_batch} x {config.grad_accum} x {n_gpu} GPUs windows per step",
        "launch": {
            "one_gpu": f"python -m protege sft --preset {config.preset_name} --data DATA --out OUT",
            "multi_gpu_ddp": f"accelerate launch --num_processes {n_gpu} -m protege sft --preset {config.preset_name} "
                             "--data DATA --out OUT",
            "full_sft_fsdp": f"accelerate launch --config_file {ACCELERATE_CONFIGS / 'fsdp2.yaml'} -m protege sft "
                             f"--preset {config.preset_name} --data DATA --out OUT",
            "full_sft_zero3": f"accelerate launch --config_file {ACCELERATE_CONFIGS / 'deepspeed_zero3.yaml'} "
                              f"-m protege sft --preset {config.preset_name} --data DATA --out OUT",
        },
        "notes": [
            "qlora under DDP loads one 4-bit copy per process (device_map={'': process_index}).",
            "gradient checkpointing trades ~30% speed for activation memory; needed at 16k-32k tokens.",
            "the merged model is written in bf16 on a GPU (fp32 on CPU); qlora merges into a non-quantised base.",
        ],
    }
    if data_dir is not None:

        if config.model in (TINY_SPEC, SMOLLM2_SPEC) or Path(config.model).expanduser().is_dir():
            tok = load_tokenizer(resolve_model(config.model))
            _, train_stats = tokenize_rows(load_split(data_dir, "train"), tok, config.max_length, config.long_policy)
            result["data"] = train_stats.to_dict()
            per_epoch = math.ceil(train_stats.windows / (config.per_device_batch * config.grad_accum))
            result["optimizer_steps_per_epoch_one_device"] = per_epoch
        else:
            result["data"] = f"not tokenised: the tokenizer of {config.model!r} is not local"
    return result
