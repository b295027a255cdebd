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

import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

from protege.core.progress import Progress
from protege.core.trajectory import atomic_write, plain
from protege.models.engine import dtype_policy, peak_rss_gib
from protege.models.registry import SMOLLM2_SPEC, TINY_SPEC, resolve_model
from protege.stages.dataset import agent_messages, load_split
from protege.stages.figures import sft_loss
from protege.stages.sft_config import ACCELERATE_CONFIGS, IDENTITY_FIELDS, SFTRunConfig
from protege.stages.sft_data import (
    tokenize_conversation,
    tokenize_rows,
)
from protege.stages.sft_trainer import (
    build_trainer,
    cpu_train_dtype,
    load_tokenizer,
    peft_config,
    quantization_config,
    resolve_device,
    sft_kwargs,
)

# ----------------------------------------------------------------------------------------------
# Trainer construction.


# ----------------------------------------------------------------------------------------------
# Training and its outputs.


def _write_logs(log_history: list[dict[str, Any]], out_dir: Path) -> None:
    import pandas as pd

    atomic_write(out_dir / "train_log.jsonl", "".join(json.dumps(r) + "\n" for r in log_history))
    pd.DataFrame(log_history).to_csv(out_dir / "train_log.csv", index=False)


def _adapter_vocab_rows(adapter_dir: Path) -> int | None:
    """Rows of the embedding the adapter was trained on (its saved embedding layer), if it saved one."""
    from safetensors import safe_open

    path = adapter_dir / "adapter_model.safetensors"
    if not path.exists():
        return None
    with safe_open(str(path), "pt") as fh:
        # "...embed_tokens.weight", or "...embed_tokens.token_adapter.base_layer.weight" beside trainable tokens
        return next((fh.get_slice(k).get_shape()[0] for k in fh.keys()  # noqa: SIM118 (safe_open is not iterable)
                     if "embed_tokens" in k and k.endswith("weight") and "lora_" not in k
                     and "trainable_tokens" not in k), None)


def _merge(config: SFTRunConfig, model_path: str, adapter_dir: Path, merged_dir: Path, tok, device: str) -> None:
    """Adapter merged into a fresh, non-quantised copy of the base (also for qlora)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if (config.bf16 and device == "cuda") else torch.float32
    base = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
    adapter_rows = _adapter_vocab_rows(adapter_dir)
    if adapter_rows and base.get_input_embeddings().weight.shape[0] != adapter_rows:
        # a token added in training (<<collaborate>>) beyond the base's rows: its trained row comes with the adapter
        base.resize_token_embeddings(adapter_rows, mean_resizing=False)
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
    run_id = f"{out_dir.parent.name}/{out_dir.name}"
    prep = build_trainer(config, data_dir, ckpt_dir)
    data_stats = _write_run_config(config, prep, data_dir, out_dir, run_id)
    print(f"sft {run_id}: {prep.train_stats.windows} windows from {prep.train_stats.conversations} conversations "
          f"({prep.train_stats.split_conversations} split, {prep.train_stats.dropped_turns} turns dropped), "
          f"{prep.train_stats.tokens} tokens, {prep.train_stats.trained_tokens} trained; mode {config.mode} "
          f"on {prep.device}" + (f"; resuming from {last}" if last else ""))

    trainer = prep.trainer
    tokens_before = int(_checkpoint_state(last).get("num_input_tokens_seen", 0) or 0)
    start = time.monotonic()
    result = _fit(config, trainer, last, run_id)
    wall = time.monotonic() - start
    _save_model(config, trainer, prep.model_path, out_dir, prep.device)
    history = trainer.state.log_history
    _write_logs(history, out_dir)
    import pandas as pd

    sft_loss(pd.DataFrame(history), out_dir / "loss.png", run_id, config.hash())
    metrics = _metrics(config, trainer, result, run_id, prep.device, last, wall, tokens_before, data_stats)
    atomic_write(out_dir / "metrics.json", json.dumps(plain(metrics), indent=2) + "\n")
    throughput = metrics["throughput_tokens_per_s"]
    print(f"sft {run_id}: {metrics['tokens_seen']} tokens in {wall:.1f} s = "
          f"{f'{throughput:.1f} tokens/s' if throughput else 'no training in this session'} "
          f"(step {trainer.state.global_step}, final train loss {metrics['final_train_loss']}, "
          f"eval loss {metrics['eval_loss']})")
    return metrics


def _write_run_config(config: SFTRunConfig, prep: Any, data_dir: Path, out_dir: Path, run_id: str) -> dict:
    """config.json (the resolved config, its dataset's config, device and dtypes) and data_stats.json."""
    dataset_config = data_dir / "config.json"
    resolved = {"run_id": run_id, "config": config.to_dict(), "config_hash": config.hash(),
                "data_dir": str(data_dir),
                "dataset_config": json.loads(dataset_config.read_text()) if dataset_config.exists() else None,
                "model_path": prep.model_path, "device": prep.device,
                "train_dtype": cpu_train_dtype(config) if prep.device == "cpu" else ("bfloat16" if config.bf16 else "float32"),
                "dtype_policy": dtype_policy(prep.device),
                "attention": getattr(prep.trainer.model.config, "_attn_implementation", None)}
    atomic_write(out_dir / "config.json", json.dumps(resolved, indent=2) + "\n")
    data_stats = {"train": prep.train_stats.to_dict(), "validation": prep.eval_stats.to_dict()}
    atomic_write(out_dir / "data_stats.json", json.dumps(data_stats, indent=2) + "\n")
    return data_stats


def _fit(config: SFTRunConfig, trainer: Any, last: str | None, run_id: str) -> Any:
    """trainer.train(), resumed from `last`; None when `last` already reached max_steps."""
    last_state = _checkpoint_state(last)
    if last and config.max_steps > 0 and int(last_state.get("global_step", 0)) >= config.max_steps:
        # transformers 5 resumed at max_steps trains on past it ("10/8"): load the finished
        # checkpoint instead of calling train().
        from transformers import TrainerState

        trainer._load_from_checkpoint(last)
        trainer.state = TrainerState(**last_state)
        print(f"sft {run_id}: {last} already reached max_steps = {config.max_steps}; not training further")
        return None
    trainer.add_callback(console_progress("sft"))
    return trainer.train(resume_from_checkpoint=last)


def _save_model(config: SFTRunConfig, trainer: Any, model_path: str, out_dir: Path, device: str) -> None:
    """merged/ (and adapter/ for LoRA): the model the next stages load."""
    tok = trainer.processing_class
    if config.mode == "full":
        trainer.save_model(str(out_dir / "merged"))
        tok.save_pretrained(out_dir / "merged")
    else:
        trainer.save_model(str(out_dir / "adapter"))
        tok.save_pretrained(out_dir / "adapter")
        _merge(config, model_path, out_dir / "adapter", out_dir / "merged", tok, device)


def _metrics(config: SFTRunConfig, trainer: Any, result: Any, run_id: str, device: str, last: str | None,
             wall: float, tokens_before: int, data_stats: dict) -> dict[str, Any]:
    history = trainer.state.log_history
    train_losses = [r["loss"] for r in history if "loss" in r]
    train_loss_mean = result.training_loss if result else (sum(train_losses) / len(train_losses) if train_losses else None)
    tokens_total = int(trainer.state.num_input_tokens_seen)
    tokens_session = tokens_total - tokens_before
    return {
        "run_id": run_id,
        "config_hash": config.hash(),
        "mode": config.mode,
        "model": config.model,
        "device": device,
        "resumed_from": last,
        "global_step": trainer.state.global_step,
        "epoch": trainer.state.epoch,
        "train_loss_mean": train_loss_mean,
        "final_train_loss": train_losses[-1] if train_losses else None,
        "eval_loss": final_eval_loss(trainer),
        "train_runtime_s": wall,
        "tokens_seen": tokens_session,
        "tokens_seen_total": tokens_total,
        "throughput_tokens_per_s": tokens_session / wall if wall > 0 and tokens_session else None,  # None: nothing trained now
        # the process's peak resident memory so far: issue 13's <= 8 GB at `small`
        "peak_rss_gib": round(peak_rss_gib(), 2),
        "data": data_stats,
    }


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
