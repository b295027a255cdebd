"""Stage 03's framework glue: TRL's SFTTrainer set up for our data (tokenised windows with a loss
mask), the model loaded for LoRA / QLoRA / full training, and a trainer that computes the LM head
only where the loss is."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protege.core.actions import COLLABORATE
from protege.models.engine import add_collaborate_token, dtype_policy, use_native_gqa
from protege.models.registry import resolve_model
from protege.stages.dataset import load_split
from protege.stages.sft_config import SFTRunConfig
from protege.stages.sft_data import (
    TokenStats,
    tokenize_rows,
)


def resolve_device(config: SFTRunConfig) -> str:
    if config.device != "auto":
        return config.device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _lora_targets(config: SFTRunConfig) -> str | list[str]:
    spec = config.lora_target_modules.strip()
    return spec if spec == "all-linear" else [m.strip() for m in spec.split(",") if m.strip()]


def peft_config(config: SFTRunConfig, new_token_ids: tuple[int, ...] = ()):
    """The peft LoraConfig of a lora / qlora run (None for full fine-tuning). Rows of tokens added
    to the vocabulary (the token interface's <<collaborate>>) train in full beside the adapters
    (peft's trainable tokens), since LoRA leaves the embeddings frozen."""
    if config.mode == "full":
        return None
    from peft import LoraConfig

    extra = {"trainable_token_indices": {"embed_tokens": list(new_token_ids)}} if new_token_ids else {}
    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=_lora_targets(config), bias="none", task_type="CAUSAL_LM", **extra)


def uses_collaborate(rows: list[dict[str, Any]]) -> bool:
    """Whether the training data is the token interface's (a protégé turn holds <<collaborate>>)."""
    return any(COLLABORATE in json.dumps(row.get("messages", row), ensure_ascii=False) for row in rows)


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
    model = load_model(config, model_path, device)
    # The token interface: <<collaborate>> becomes one token before anything is tokenised.
    new_ids = (add_collaborate_token(model, tok),) if uses_collaborate(train_rows) else ()
    train_ex, train_stats = tokenize_rows(train_rows, tok, config.max_length, config.long_policy)
    eval_ex, eval_stats = tokenize_rows(val_rows, tok, config.max_length, config.long_policy)
    if not train_ex:
        raise ValueError(f"{data_dir}: no training window left ({train_stats.conversations} conversations, "
                         f"{train_stats.dropped_turns} turns dropped at max_length = {config.max_length})")
    args = SFTConfig(**sft_kwargs(config, output_dir, device, has_eval=bool(eval_ex)))
    trainer = (trainer_class or _sft_trainer_class())(model=model, args=args, train_dataset=_dataset(train_ex),
                         eval_dataset=_dataset(eval_ex) if eval_ex else None, processing_class=tok,
                         peft_config=peft_config(config, new_ids))
    _check_prepared(trainer.train_dataset, train_ex, "train")
    if eval_ex:
        _check_prepared(trainer.eval_dataset, eval_ex, "validation")
    return Prepared(trainer, train_stats, eval_stats, model_path, device, train_ex)
