"""The engine before and after, side by side in one process on identical inputs.

    python benchmarks/bench_engine.py [--model smollm2-135m] [--turns 4] [--batches 8,16] [--sft-steps 4] [--sft-repeats 3] [--profile]

Rollouts: a fixed replay of agent conversations (the scripted ORACLE policy on bundled train
tasks, so both paths see the same tokens at every turn): at turn t each path generates for
every episode's conversation up to its t-th assistant turn, greedy, `--new-tokens` at most.
Today's path is `protege/policies.py` at the baseline commit (the whole conversation rendered
and prefilled every turn, fp32); the new one keeps each conversation's KV cache between turns.
SFT: tokens/s of today's `small` SFT config (LoRA r16, fp32) and of the new one (full
fine-tuning, bf16 autocast where the CPU has AMX/AVX512-BF16) through TRL's SFTTrainer, and of
a plain-torch forward/backward/AdamW loop over the same batches in the new dtype (the new SFT and
the plain loop alternate, `--sft-repeats` pairs, medians reported).

Both rollout paths first get the same untimed warm-up (a process's first calls pay one-time
costs that a long run pays once); its time is printed. `--profile` runs the new rollout path once
more at the first batch size under torch.profiler and prints where its time goes (the aten ops
with the most self time, and the share outside them).

The last two lines are `engine rollout speedup: N.NNx` and `engine sft speedup: N.NNx`
(new / today's; rollouts at the first batch size)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

from _baseline import baseline_module

from protege.agent.config import AgentConfig
from protege.agent.loop import run_episodes
from protege.agent.tools import tool_schemas
from protege.env.base import EnvConfig
from protege.env.factory import make_environment
from protege.models.engine import cpu_flags, cpu_has_fast_bf16, dtype_policy, peak_rss_gib
from protege.models.policies import TransformersPolicy
from protege.models.reference_expert import ReferenceExpert
from protege.models.registry import resolve_model
from protege.models.scripted import ScriptedPolicy
from protege.stages.dataset import row_from_trajectory, save_dataset
from protege.stages.sft_config import SFTRunConfig
from protege.tasks.bundled import load_bundled


def replay(n: int, work: Path) -> list[list[dict]]:
    """Full message lists of `n` scripted-oracle episodes on bundled train tasks."""
    tasks = [t for t in load_bundled("train")][:n]
    trajs = run_episodes(tasks, ScriptedPolicy(tasks), ReferenceExpert(), partial(make_environment, config=EnvConfig()),
                         replace(AgentConfig.preset("small"), max_parallel=4))
    (work / "trajs.json").write_text(json.dumps([t.to_dict() for t in trajs]))
    return [t.messages for t in trajs]


def turn_prefix(messages: list[dict], turn: int) -> list[dict]:
    """The conversation up to (not including) its `turn`-th assistant message (1-based)."""
    seen = 0
    for i, m in enumerate(messages):
        if m["role"] == "assistant":
            seen += 1
            if seen == turn:
                return messages[:i]
    return messages


def rollout(policy, convs: list[list[dict]], turns: int, tools) -> dict:
    gen_tokens = prompt_tokens = 0
    texts = []
    start = time.perf_counter()
    for t in range(1, turns + 1):
        gens = policy.generate([turn_prefix(c, t) for c in convs], tools)
        gen_tokens += sum(g.completion_tokens for g in gens)
        prompt_tokens += sum(g.prompt_tokens for g in gens)
        texts += [g.text for g in gens]
    wall = time.perf_counter() - start
    stats = getattr(policy, "stats", None)
    prefill = stats["prefill_tokens"] if stats else prompt_tokens
    return {"wall_s": wall, "gen_tok_s": gen_tokens / wall, "prefill_per_turn": prefill / turns,
            "s_per_episode_turn": wall / (turns * len(convs)), "texts": texts, "gen_tokens": gen_tokens}


def profile_rollout(policy, convs: list[list[dict]], turns: int, tools, rows: int = 12) -> None:
    """Where the new path's rollout time goes: torch.profiler's aten ops by self CPU time, and the
    wall time outside every aten op (Python: the generate loop, stopping criteria, cache bookkeeping)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        r = rollout(policy, convs, turns, tools)
    ops = [e for e in prof.key_averages() if e.key.startswith("aten::")]
    aten_s = sum(e.self_cpu_time_total for e in ops) / 1e6
    print(f"profile, new path, batch {len(convs)}: {r['wall_s']:.1f} s wall under the profiler, "
          f"{r['gen_tokens']} tokens; aten ops' self time {aten_s:.1f} s, outside aten ops "
          f"{max(r['wall_s'] - aten_s, 0):.1f} s ({max(1 - aten_s / r['wall_s'], 0):.0%})", flush=True)
    for e in sorted(ops, key=lambda e: -e.self_cpu_time_total)[:rows]:
        print(f"  {e.key:40s} {e.self_cpu_time_total / 1e6:7.2f} s self  {e.count:8d} calls "
              f"{e.self_cpu_time_total / 1e4 / r['wall_s']:5.1f}% of wall", flush=True)


def sft_speed(config_overrides: dict, data_dir: Path, out: Path, steps: int,
              trl_trainer: bool = False) -> tuple[float, float]:
    """tokens/s of the stage-03 trainer (protege.stages.sft; with `trl_trainer`, TRL's own SFTTrainer and
    transformers' own sdpa attention, as before the LM head was restricted to trained positions and
    grouped-query attention went to torch's kernel) with the `small` preset and these overrides, and
    the peak resident memory of the process (each measurement runs in a fresh process)."""
    from trl import SFTTrainer

    import protege.models.engine
    from protege.stages.sft_config import SFTRunConfig
    from protege.stages.sft_trainer import build_trainer

    if trl_trainer:  # this process only (a fresh one): protege.stages.sft_trainer.load_model then keeps sdpa
        protege.models.engine.use_native_gqa = lambda model: False

    config = SFTRunConfig.preset("small", max_steps=steps, save_steps=-1, eval_steps=-1, report_to="none",
                                 **config_overrides)
    prep = build_trainer(config, data_dir, out, trainer_class=SFTTrainer if trl_trainer else None)
    start = time.perf_counter()
    prep.trainer.train()
    wall = time.perf_counter() - start
    return prep.trainer.state.num_input_tokens_seen / wall, peak_rss_gib()


def plain_torch_speed(model_path: str, data_dir: Path, steps: int, accum: int, max_length: int,
                      dtype: str) -> tuple[float, float]:
    """The same windows through a bare loop, as the trainer runs them (one window per forward,
    `accum` per AdamW step, the LM head only on trained positions): the reference the trainer
    should come close to."""
    import torch
    from transformers import AutoModelForCausalLM

    from protege.stages.dataset import load_split
    from protege.stages.sft_data import tokenize_rows
    from protege.stages.sft_trainer import load_tokenizer

    tok = load_tokenizer(model_path)
    examples, _ = tokenize_rows(load_split(data_dir, "train"), tok, max_length, "window")
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    seen, start = 0, time.perf_counter()
    for step in range(steps):
        for i in range(accum):
            e = examples[(step * accum + i) % len(examples)]
            ids = torch.tensor([e["input_ids"]])
            trained = torch.tensor(e["assistant_masks"][1:]).bool()  # position t predicts token t + 1
            with torch.autocast("cpu", dtype=getattr(torch, dtype), enabled=dtype == "bfloat16"):
                hidden = model.model(input_ids=ids).last_hidden_state[0, :-1][trained]
                logits = model.lm_head(hidden).float()
            loss = torch.nn.functional.cross_entropy(logits, ids[0, 1:][trained]) / accum
            loss.backward()
            seen += ids.shape[1]
        opt.step()
        opt.zero_grad()
    return seen / (time.perf_counter() - start), peak_rss_gib()


def median(items: list, key) -> object:
    """The middle item by `key` (the upper one of an even count)."""
    return sorted(items, key=key)[len(items) // 2]


def in_fresh_process(fn, *args):
    """Run fn(*args) in a spawned process: its own peak memory, nothing shared with the others."""
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--batches", default="8,16")
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--sft-steps", type=int, default=4)
    parser.add_argument("--sft-repeats", type=int, default=3, help="alternating new / plain-torch SFT pairs (medians)")
    parser.add_argument("--new-dtype", default="", help="rollout weights of the new path (default: the dtype policy)")
    parser.add_argument("--skip-sft", action="store_true")
    parser.add_argument("--profile", action="store_true", help="profile the new rollout path (first batch size)")
    parser.add_argument("--skip-rollout", action="store_true",
                        help="only the SFT part (its rollout line then reads 'not measured')")
    args = parser.parse_args()
    import torch

    batches = [int(b) for b in args.batches.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench-engine-"))
    model_path = str(resolve_model(args.model))
    convs = replay(max(batches), work)
    tools = tool_schemas(True)
    old = baseline_module("protege/policies.py")
    fresh = TransformersPolicy(model_path, max_new_tokens=args.new_tokens, temperature=0, dtype="float32",
                               native_gqa=False)  # loads today's model: transformers' own sdpa attention
    shared = {"model": fresh.model, "tokenizer": fresh.tokenizer}
    rollout_dtype = args.new_dtype or dtype_policy("cpu")["rollout"]
    # The new path loads its own model even in fp32: it switches that model's attention
    # (protege.models.engine.use_native_gqa), which today's path must not get.
    new_shared = {"model": TransformersPolicy(model_path, dtype=rollout_dtype).model, "tokenizer": fresh.tokenizer}
    lines, ratios = [], {}

    def today_policy(b: int):
        return old.TransformersPolicy(model_path, max_new_tokens=args.new_tokens, temperature=0, batch_size=b, **shared)

    def new_policy(b: int):
        return TransformersPolicy(model_path, max_new_tokens=args.new_tokens, temperature=0, batch_size=b,
                                  **new_shared)

    if not args.skip_rollout:
        # A process's first generate() calls pay one-time costs (measured 2.5 s of the new path's ~24 s:
        # kernel generation and allocator growth) that an RL or evaluation run pays once, not at every
        # step; each path gets the same untimed warm-up (2 turns of 2 episodes, with their own policy
        # objects so the timed ones start with empty caches) and its time is printed.
        warm = {name: rollout(make(2), convs[:2], 2, tools)["wall_s"]
                for name, make in (("today", today_policy), ("new", new_policy))}
        lines.append(f"warm-up, untimed in the ratios (2 turns of 2 episodes): today {warm['today']:.1f} s, "
                     f"new {warm['new']:.1f} s")
    for b in ([] if args.skip_rollout else batches):
        today = rollout(today_policy(b), convs[:b], args.turns, tools)
        new = rollout(new_policy(b), convs[:b], args.turns, tools)
        same = sum(a == c for a, c in zip(today["texts"], new["texts"]))
        for name, r in (("today", today), ("new", new)):
            lines.append(f"rollout batch {b:2d} {name:5s}: {r['gen_tok_s']:7.1f} generated tok/s, "
                         f"{r['prefill_per_turn']:8.0f} prefill tokens computed per turn, "
                         f"{r['s_per_episode_turn']:.2f} s per episode-turn ({r['gen_tokens']} tokens, {r['wall_s']:.0f} s)")
        lines.append(f"rollout batch {b:2d}: new path in {rollout_dtype}; identical greedy outputs {same}/{len(today['texts'])}; "
                     f"speedup {today['wall_s'] / new['wall_s']:.2f}x (wall)")
        ratios[b] = today["wall_s"] / new["wall_s"]
    for line in lines:
        print(line, flush=True)
    if args.profile and not args.skip_rollout:
        b = batches[0]
        profile_rollout(new_policy(b), convs[:b], args.turns, tools)
    if args.skip_sft:
        print(f"engine rollout speedup: {ratios[batches[0]]:.2f}x")
        return
    rows = [row_from_trajectory(t, "bench", "live") for t in json.loads((work / "trajs.json").read_text())]
    data_dir = work / "data"
    save_dataset(rows, data_dir, "bench", val_fraction=0.0, seed=0)
    policy = dtype_policy("cpu")
    lora = {"mode": "lora", "lora_r": 16, "lora_alpha": 32}
    # today: the SFT of the issue (LoRA in fp32, TRL's SFTTrainer scoring every position); new: the
    # `small` preset (full fine-tuning in the dtype policy's autocast, the LM head at trained positions only)
    today_sft, today_mem = in_fresh_process(sft_speed, {**lora, "cpu_train_dtype": "float32"}, data_dir,
                                            work / "sft-today", args.sft_steps, True)
    lora_sft, lora_mem = in_fresh_process(sft_speed, {**lora, "cpu_train_dtype": policy["train"]}, data_dir,
                                          work / "sft-lora", args.sft_steps)
    accum = SFTRunConfig.preset("small").grad_accum
    # The new SFT and the plain loop alternate (new, plain, new, plain, ...): this shared machine's speed
    # drifts between processes by more than the gap between the two (docs/LOG.md session 19), so each
    # pair is compared side by side and the medians are reported.
    pairs = []
    for rep in range(args.sft_repeats):
        pairs.append((in_fresh_process(sft_speed, {"mode": "full", "cpu_train_dtype": policy["train"]}, data_dir,
                                       work / f"sft-new-{rep}", args.sft_steps),
                      in_fresh_process(plain_torch_speed, model_path, data_dir, args.sft_steps, accum,
                                       SFTRunConfig.preset("small").max_length, policy["train"])))
    new_sft, new_mem = median([n for n, _ in pairs], key=lambda r: r[0])
    plain, plain_mem = median([p for _, p in pairs], key=lambda r: r[0])
    print("sft new / plain-torch loop, pair by pair: "
          + ", ".join(f"{n[0]:.1f} / {p[0]:.1f} = {n[0] / p[0]:.2f}x" for n, p in pairs))
    print(f"sft today (LoRA r16, fp32, TRL's SFTTrainer, batch 1 x {accum}): {today_sft:7.1f} tokens/s, "
          f"peak RSS {today_mem:.1f} GiB")
    print(f"sft new   (full, {policy['train']} autocast, LM head at trained positions, batch 1 x {accum}): "
          f"{new_sft:7.1f} tokens/s (median), peak RSS {new_mem:.1f} GiB ({new_sft / plain:.2f}x the plain-torch loop)")
    print(f"sft LoRA r16 in {policy['train']} autocast, batch 1 x {accum}: {lora_sft:7.1f} tokens/s, "
          f"peak RSS {lora_mem:.1f} GiB ({lora_sft / today_sft:.2f}x today's)")
    print(f"plain torch loop (full, {policy['train']} autocast, same windows, 1 x {accum}): {plain:7.1f} tokens/s (median), "
          f"peak RSS {plain_mem:.1f} GiB")
    print(f"cpu flags: bf16-capable {cpu_has_fast_bf16()} ({', '.join(f for f in sorted(cpu_flags()) if 'bf16' in f or f.startswith('amx')) or 'none'}); "
          f"threads {torch.get_num_threads()}; dtype policy {policy}; load {os.getloadavg()[0]:.2f}")
    shutil.rmtree(work, ignore_errors=True)
    print(f"engine rollout speedup: {ratios[batches[0]]:.2f}x" if ratios else "engine rollout speedup: not measured")
    print(f"engine sft speedup: {new_sft / today_sft:.2f}x")


if __name__ == "__main__":
    main()
