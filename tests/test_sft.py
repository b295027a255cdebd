"""Stage 03 (SFT): masking, the window policy, the LoRA / QLoRA / full modes on the tiny model,
resuming, the merged model and the dry run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from protege.agent.loop import context_view
from protege.agent.tools import tool_schemas
from protege.app.cli import app
from protege.core.config import apply
from protege.models.engine import GQA_SDPA
from protege.models.registry import tiny_dir
from protege.stages.dataset import agent_messages, row_from_trajectory, save_dataset
from protege.stages.sft import dry_run, mask_preview, train
from protege.stages.sft_config import ACCELERATE_CONFIGS, SFTRunConfig
from protege.stages.sft_data import render, tokenize_conversation, tokenize_rows, tokenize_view, window_view
from protege.stages.sft_trainer import build_trainer, load_tokenizer

END = "<|im_end|>"  # the tiny model's end-of-turn token


def _call(thought: str, name: str, args: dict) -> dict:
    return {"role": "assistant", "content": thought,
            "tool_calls": [{"type": "function", "function": {"name": name, "arguments": json.dumps(args)}}]}


def synthetic_row(iid: str, n_turns: int = 6, obs_chars: int = 120, guidance_at: int = 2,
                  huge_at: int | None = None, huge_chars: int = 6000, tools: bool = True) -> dict:
    """A TRL-form row: short prompt, bash turns with observations, one ask_expert, a submit.
    tools=False leaves out the ~900-token tool schemas (short sequences for quick training tests)."""
    messages = [{"role": "system", "content": "You fix bugs in Python repositories. Reply with one tool call."},
                {"role": "user", "content": f"<issue>\nadd() in calc.py returns a wrong sum ({iid}).\n</issue>"}]
    for k in range(n_turns):
        if k == n_turns - 1:
            messages.append(_call("Fixed. Submitting.", "submit", {}))
        elif k == guidance_at:
            messages.append(_call("I am stuck; ask the expert.", "ask_expert", {"question": f"Where is bug {k}?"}))
            messages.append({"role": "tool", "name": "ask_expert",
                             "content": f"<expert_guidance>\nLook at add() in calc.py (hint {k}).\n</expert_guidance>"})
        else:
            messages.append(_call(f"Look at part {k}.", "bash", {"command": f"cat part{k}.py"}))
            size = huge_chars if k == huge_at else obs_chars
            messages.append({"role": "tool", "name": "bash", "content": (f"output line {k} " * size)[:size]})
    schemas = tool_schemas(ask_expert=True) if tools else []
    return {"messages": messages, "tools": json.dumps(schemas), "instance_id": iid,
            "package": "calc", "source": "live", "strategy": "live", "n_expert_calls": 1}


def _runs(ids: list[int], mask: list[int]) -> list[list[int]]:
    """Maximal runs of consecutive masked-in tokens."""
    runs, current = [], []
    for token, bit in zip(ids, mask):
        if bit:
            current.append(token)
        elif current:
            runs.append(current)
            current = []
    return runs + ([current] if current else [])


def _config(**overrides) -> SFTRunConfig:
    base = {"max_steps": 2, "per_device_batch": 1, "grad_accum": 1, "max_length": 2048, "save_steps": -1,
            "logging_steps": 1}
    return SFTRunConfig.preset("smoke", **{**base, **overrides})


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer(tiny_dir())


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    rows = [synthetic_row(f"calc__calc-{i}", n_turns=4 + i % 3, tools=False) for i in range(6)]
    out = tmp_path_factory.mktemp("sft-data") / "synthetic"
    save_dataset(rows, out, "synthetic", val_fraction=0.2, seed=0)
    return out


@pytest.fixture(scope="module")
def real_rows(tmp_path_factory) -> list[dict]:
    """Rows from two real oracle-demonstrator trajectories on bundled train tasks (live ask_expert)."""
    from protege.core.trajectory import read_jsonl
    from protege.stages.collect import collect
    from protege.tasks.bundled import load_bundled

    run_dir = tmp_path_factory.mktemp("collect")
    collect(load_bundled("train")[:2], run_dir, seed=0)
    return [row_from_trajectory(t, "live", "live") for t in read_jsonl(run_dir / "kept.jsonl")]


def test_only_protege_turns_carry_loss_on_real_rows(real_rows, tok):
    assert real_rows
    for row in real_rows:
        messages = agent_messages(row["messages"])
        tools = json.loads(row["tools"])
        (example,), dropped, _ = tokenize_conversation(tok, messages, tools, max_length=10**6)
        ids, mask = example["input_ids"], example["assistant_masks"]
        assert not dropped and len(ids) == len(mask)
        last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
        assert tok.decode(ids) == render(tok, messages[:last + 1], tools)  # nothing added or lost
        trained = [tok.decode(run) for run in _runs(ids, mask)]
        # Exactly the protégé's turns (reasoning + tool-call text) each closed by its end-of-turn token.
        assert trained == [m["content"] + END for m in messages if m["role"] == "assistant"]
        text = "".join(trained)
        assert "<expert_guidance>" not in text and "<issue>" not in text
        assert messages[0]["content"][:60] not in text
        observations = [m["content"] for m in messages[2:] if m["role"] == "user" and len(m["content"]) > 40]
        assert observations and not any(obs in text for obs in observations)


def test_labels_are_masked_exactly_in_the_trainers_batches(data_dir, tmp_path):
    # max_length below the longest rows, so windows (with a context note) are in the batches too
    prep = build_trainer(_config(per_device_batch=2, max_length=450), data_dir, tmp_path / "ckpt")
    assert prep.train_stats.split_conversations > 0
    expected = {tuple(e["input_ids"]): e["assistant_masks"] for e in prep.train_examples}
    seen = 0
    for batch in prep.trainer.get_train_dataloader():
        for ids, labels, attention in zip(batch["input_ids"], batch["labels"], batch["attention_mask"]):
            n = int(attention.sum())
            mask = expected[tuple(ids[:n].tolist())]
            want = [t if bit else -100 for t, bit in zip(ids[:n].tolist(), mask)]
            assert labels[:n].tolist() == want
            assert (labels[n:] == -100).all()  # padding never carries loss
            seen += 1
    assert seen == len(prep.train_examples) == prep.train_stats.windows


def test_loss_on_trained_positions_only_equals_trls_loss_and_gradients(data_dir, tmp_path):
    import torch
    from trl import SFTTrainer

    prep = build_trainer(_config(per_device_batch=3, mode="full"), data_dir, tmp_path / "ckpt")
    trainer, model = prep.trainer, prep.trainer.model
    assert type(trainer).__name__ == "TrainedPositionsSFTTrainer"
    model.eval()  # no dropout: both paths see the same network
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    n_items = int((batch["labels"][:, 1:] != -100).sum())
    results = []
    for compute in (SFTTrainer.compute_loss, type(trainer).compute_loss):  # TRL's fused head, then ours
        model.zero_grad()
        loss = compute(trainer, model, dict(batch), num_items_in_batch=n_items)
        loss.backward()
        results.append((loss.item(), [p.grad.clone() for p in model.parameters() if p.grad is not None]))
    (trl_loss, trl_grads), (our_loss, our_grads) = results
    assert our_loss == pytest.approx(trl_loss, rel=1e-5)
    assert len(our_grads) == len(trl_grads) > 0
    assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-6) for a, b in zip(our_grads, trl_grads))
    assert trainer._metrics["eval"]["mean_token_accuracy"]  # the metrics TRL logs are still logged


def test_lengths_padded_to_a_multiple_train_the_same_loss(data_dir, tmp_path):
    """pad_to_multiple_of (64 at every preset: fewer distinct shapes for the CPU's kernels and
    heap) pads each batch with untrained positions only: the loss is the exact-length loss."""
    import torch

    losses, widths, tokens = [], [], []
    for multiple in (0, 64):
        torch.manual_seed(0)
        prep = build_trainer(_config(per_device_batch=1, mode="full", pad_to_multiple_of=multiple), data_dir,
                             tmp_path / f"ckpt{multiple}")
        trainer = prep.trainer
        trainer.model.eval()
        batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
        widths.append(batch["input_ids"].shape[1])
        tokens.append(int(batch["attention_mask"].sum()))
        n_items = int((batch["labels"][:, 1:] != -100).sum())
        with torch.no_grad():
            losses.append(trainer.compute_loss(trainer.model, dict(batch), num_items_in_batch=n_items).item())
    assert tokens[0] == tokens[1] == widths[0]  # the same conversation; exact length without the multiple
    assert widths[1] % 64 == 0 and widths[1] - widths[0] < 64
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)


def test_window_policy_trains_every_turn_once_in_context_view_shape(tok):
    row = synthetic_row("calc__calc-long", n_turns=12, obs_chars=400, guidance_at=3)
    messages, tools = agent_messages(row["messages"]), json.loads(row["tools"])
    whole = len(tokenize_view(tok, messages, tools, [])[0])
    max_length = whole // 2
    examples, dropped, windows = tokenize_conversation(tok, messages, tools, max_length)
    assert len(windows) > 1 and not dropped
    assert all(len(e["input_ids"]) <= max_length for e in examples)
    trained = [i for w in windows for i in w.trained]
    assistants = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    assert trained == assistants  # every turn exactly once, in order
    texts = [tok.decode(run) for e in examples for run in _runs(e["input_ids"], e["assistant_masks"])]
    assert texts == [messages[i]["content"] + END for i in assistants]
    for window in windows:
        view, positions = window_view(messages, window)
        first = window.trained[0]
        shown = view[:positions[0]]
        # The context of the window's first turn is what context_view shows for some budget.
        assert any(context_view(messages[:first], max_messages=k) == shown for k in range(3, first + 3))
        if window.start > 3:  # guidance given before the window stays visible
            assert any(m["content"].startswith("<expert_guidance>") for m in shown)
            assert "earlier messages left out to fit the context]" in shown[2]["content"]
    _, stats = tokenize_rows([row], tok, max_length)
    assert (stats.conversations, stats.windows, stats.split_conversations) == (1, len(windows), 1)
    assert stats.trained_turns == stats.assistant_turns == len(assistants) and stats.dropped_turns == 0
    assert stats.trained_tokens == sum(sum(e["assistant_masks"]) for e in examples)
    assert stats.max_window_tokens <= max_length < stats.conversation_tokens


def test_a_turn_that_cannot_fit_is_counted_not_hidden(tok):
    row = synthetic_row("calc__calc-huge", n_turns=6, huge_at=1, huge_chars=6000)
    small = synthetic_row("calc__calc-fine", n_turns=4)
    max_length = 1536  # the tool prompt alone is ~900 tokens of the tiny tokenizer
    examples, stats = tokenize_rows([row, small], tok, max_length)
    assert stats.dropped_turns == 1  # the turn after the huge observation
    assert stats.trained_turns == stats.assistant_turns - 1
    assert stats.dropped_instances == ["calc__calc-huge"]
    assert all(len(e["input_ids"]) <= max_length for e in examples)
    _, by_drop = tokenize_rows([row, small], tok, max_length, long_policy="drop")
    assert by_drop.dropped_conversations == 1 and by_drop.windows == 1
    assert by_drop.dropped_turns == sum(m["role"] == "assistant" for m in row["messages"])
    with pytest.raises(ValueError, match="max_length"):
        tokenize_rows([row], tok, max_length, long_policy="error")


def test_lora_logs_loss_and_changes_only_the_adapters(data_dir, tmp_path):
    prep = build_trainer(_config(max_steps=3, learning_rate=1e-2), data_dir, tmp_path / "ckpt")
    model = prep.trainer.model
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    prep.trainer.train()
    after = dict(model.named_parameters())
    assert any("loss" in r for r in prep.trainer.state.log_history)
    assert all(not before[n].equal(after[n].detach()) for n in trainable if "lora_B" in n)
    assert all(before[n].equal(after[n].detach()) for n in before if n not in trainable)


def test_train_writes_the_run_folder_and_the_merged_model_generates(data_dir, tmp_path):
    from protege.models.policies import TransformersPolicy

    out = tmp_path / "03_sft"
    metrics = train(_config(), data_dir, out)
    for name in ("config.json", "data_stats.json", "metrics.json", "train_log.jsonl", "train_log.csv", "loss.png",
                 "adapter/adapter_config.json", "merged/config.json"):
        assert (out / name).exists(), name
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == [1, 2]
    assert metrics["global_step"] == 2 and metrics["tokens_seen"] > 0 and metrics["throughput_tokens_per_s"] > 0
    assert metrics["eval_loss"] is not None
    resolved = json.loads((out / "config.json").read_text())
    assert resolved["config_hash"] == _config().hash()
    assert resolved["attention"] == GQA_SDPA  # on CPU: protege.models.engine.use_native_gqa
    # training curves for TensorBoard (report_to="tensorboard", the default at every preset)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    [events] = {p.parent for p in out.rglob("events.out.tfevents.*")}
    scalars = EventAccumulator(str(events)).Reload().Tags()["scalars"]
    assert "train/loss" in scalars, scalars
    row = synthetic_row("calc__calc-x", n_turns=3)
    policy = TransformersPolicy(model_dir=out / "merged", max_new_tokens=6, temperature=0)
    (gen,) = policy.generate([agent_messages(row["messages"])[:2]], json.loads(row["tools"]))
    assert gen.error is None and gen.completion_tokens > 0


def test_full_mode_resumes_from_its_checkpoint(data_dir, tmp_path):
    out = tmp_path / "03_sft"
    first = train(_config(mode="full", max_steps=1, learning_rate=1e-4), data_dir, out)
    assert first["global_step"] == 1 and first["resumed_from"] is None
    assert not (out / "adapter").exists() and (out / "merged" / "model.safetensors").exists()
    assert GQA_SDPA not in (out / "merged" / "config.json").read_text()  # a plain sdpa model for any loader
    second = train(_config(mode="full", max_steps=2, learning_rate=1e-4), data_dir, out)
    assert second["resumed_from"].endswith("checkpoint-1") and second["global_step"] == 2
    assert second["tokens_seen_total"] > second["tokens_seen"] > 0
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == [1, 2]
    # Resumed at max_steps, a finished run trains no further (transformers alone would) and keeps its weights.
    weights = (out / "merged" / "model.safetensors").read_bytes()
    third = train(_config(mode="full", max_steps=2, learning_rate=1e-4), data_dir, out)
    assert third["global_step"] == 2 and third["tokens_seen"] == 0 and third["throughput_tokens_per_s"] is None
    assert (out / "merged" / "model.safetensors").read_bytes() == weights
    with pytest.raises(ValueError, match="mode"):
        train(_config(mode="lora", max_steps=3), data_dir, out)


def test_qlora_runs_on_cpu(data_dir, tmp_path):
    out = tmp_path / "03_sft"
    metrics = train(_config(mode="qlora", learning_rate=1e-2), data_dir, out)
    assert metrics["global_step"] == 2
    adapter = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert adapter["r"] == 8
    merged = json.loads((out / "merged" / "config.json").read_text())
    assert "quantization_config" not in merged  # merged into a non-quantised copy of the base


def test_dry_run_resolves_the_full_preset_without_the_hub(monkeypatch):
    """`full` trains every weight (the paper: full SFT, LoRA and QLoRA worse), bf16 at 32k tokens,
    launched with a shipped accelerate config; LoRA and QLoRA stay one override away."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    plan = dry_run(SFTRunConfig.preset("full"))
    assert plan["config"]["model"] == "Qwen/Qwen2.5-Coder-7B-Instruct"
    assert plan["config"]["mode"] == "full" and plan["peft_config"] is None and plan["trainable"] == "every weight"
    assert plan["sft_config"]["bf16"] is True and plan["sft_config"]["activation_checkpointing"] is True
    assert plan["sft_config"]["use_liger_kernel"] is True  # on a GPU; never on a CPU
    assert dry_run(SFTRunConfig.preset("full"), device="cpu")["sft_config"]["use_liger_kernel"] is False
    assert plan["sft_config"]["max_length"] == plan["config"]["max_length"] == 32_768
    for key in ("full_sft_fsdp", "full_sft_zero3"):
        config_file = Path(plan["launch"][key].split("--config_file ")[1].split()[0])
        assert config_file.is_file(), config_file
    lora = dry_run(SFTRunConfig.preset("full", mode="lora"))
    assert lora["peft_config"]["r"] == 64
    qlora = dry_run(SFTRunConfig.preset("full", mode="qlora"))
    assert qlora["quantization_config"]["bnb_4bit_quant_type"] == "nf4"


def test_sft_config_names_activation_checkpointing_without_a_deprecation_warning():
    """transformers 5 renamed the knob; TRL's configs still default the old alias, which warned in
    every notebook. The small preset keeps it off (135M at 1024 tokens fits without it)."""
    import warnings

    from trl import SFTConfig

    from protege.stages.sft_trainer import sft_kwargs

    for preset, on in (("small", False), ("full", True)):
        kwargs = sft_kwargs(SFTRunConfig.preset(preset), "OUT", "cpu")
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message=".*gradient_checkpointing.*deprecated", category=FutureWarning)
            args = SFTConfig(**{**kwargs, "bf16": False})
        assert args.activation_checkpointing is on and args.gradient_checkpointing is on, preset


def test_shipped_accelerate_configs_load_in_accelerate():
    """accelerate's own loader reads both launch configs: FSDP2 with per-layer wrapping and
    sharded state, DeepSpeed ZeRO-3 saving a 16-bit model; bf16, one node of 8 GPUs."""
    from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file
    from accelerate.utils import DistributedType

    fsdp = load_config_from_file(str(ACCELERATE_CONFIGS / "fsdp2.yaml"))
    assert isinstance(fsdp, ClusterConfig) and fsdp.distributed_type == DistributedType.FSDP
    assert fsdp.fsdp_config["fsdp_version"] == 2
    assert fsdp.fsdp_config["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    zero3 = load_config_from_file(str(ACCELERATE_CONFIGS / "deepspeed_zero3.yaml"))
    assert zero3.distributed_type == DistributedType.DEEPSPEED and zero3.deepspeed_config["zero_stage"] == 3
    for config in (fsdp, zero3):
        assert config.mixed_precision == "bf16" and config.num_processes == 8 and not config.use_cpu


def test_cli_and_overrides(capsys, data_dir):
    assert app(["sft", "--preset", "full", "--dry-run", "--set", "mode=qlora"], standalone_mode=False) == 0
    assert json.loads(capsys.readouterr().out)["config"]["mode"] == "qlora"
    assert app(["sft", "--preset", "smoke", "--dry-run", "--data", str(data_dir), "--set", "max_length=1024"],
               standalone_mode=False) == 0
    assert json.loads(capsys.readouterr().out)["data"]["windows"] > 0
    preview = mask_preview(_config(), data_dir)
    assert preview["loss"].any() and not preview["loss"].all() and not preview["loss"].iloc[0]
    assert preview[preview["loss"]]["text"].str.endswith(END).all()
    with pytest.raises(ValueError, match="SFTRunConfig: unknown field .no_such_field."):
        apply(SFTRunConfig(), ["no_such_field=1"])
    with pytest.raises(ValueError, match="expected key=value"):
        apply(SFTRunConfig(), ["max_steps"])
    with pytest.raises(ValueError, match="mode"):
        SFTRunConfig.preset("small", mode="adapter")
