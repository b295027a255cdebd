"""The GPU check (issue 16): a few minutes on one GPU, no internet, what `full` relies on.

1. rollouts: 8 compact agent episodes (bundled held-out tasks, ORACLE reference expert) by
   SmolLM2-135M-Instruct behind a launched vLLM server (protege.models.serving: prefix caching,
   concurrent episodes); generated tokens/s and wall time;
2. SFT: compact ORACLE demonstrations on 16 bundled train tasks, then optimizer steps of
   full-parameter bf16 SFT (protege.stages.sft); tokens/s and peak GPU memory;
3. GRPO: one penalised GRPO step (protege.stages.rl, TRL's GRPOTrainer over our agent loop) whose
   rollouts generate with TRL's colocated vLLM engine (`use_vllm`) on a GPU with vllm
   installed, else with the trainer's model; wall time and peak GPU memory.

`bash scripts/gpu_check.sh` runs it on a GPU box. On a CPU machine
`python scripts/gpu_check.py --device cpu --serve transformers --model tiny` runs the same
steps with the tiny model and `transformers serve` standing in for vLLM (tests do this).
Prints one `gpu_check: ...` line per part and writes gpu_check.json in --out.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def _peak_gib(device: str) -> float:
    import torch

    if device == "cuda" and torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**30
    from protege.models.engine import peak_rss_gib

    return peak_rss_gib()


def rollouts(model_dir: str, out: Path, serve: str, device: str, episodes: int) -> dict:
    from functools import partial

    from protege.agent.config import AgentConfig
    from protege.agent.loop import run_episodes
    from protege.core.trajectory import TrajectoryWriter
    from protege.env.base import EnvConfig
    from protege.env.factory import make_environment
    from protege.models.reference_expert import ReferenceExpert
    from protege.models.serving import ServedModel
    from protege.tasks.bundled import load_bundled

    tasks = load_bundled("test")[:episodes]
    agent = AgentConfig.preset("small", max_parallel=episodes, step_limit=6)
    with ServedModel(model_dir, backend=serve, log_dir=out / "server", device=device if serve == "transformers" else "auto",
                     max_model_len=8192 if serve == "vllm" else 0, gpu_memory_utilization=0.3) as served:
        policy = served.policy(temperature=0.0, max_tokens=128, concurrency=episodes)
        start = time.monotonic()
        trajs = run_episodes(tasks, policy, ReferenceExpert("exact_edit"), partial(make_environment, config=EnvConfig()),
                             agent, writer=TrajectoryWriter(out / "rollouts"))
        wall = time.monotonic() - start
    generated = sum(t.tokens.protege_completion for t in trajs)
    turns = sum(t.counts.steps for t in trajs)
    return {"backend": serve, "episodes": len(trajs), "turns": turns, "generated_tokens": generated,
            "wall_s": round(wall, 1), "generated_tok_per_s": round(generated / wall, 1),
            "s_per_episode_turn": round(wall / max(1, turns), 3),
            "submitted": sum(t.exit_status == "submitted" for t in trajs)}


def sft_step(model: str, out: Path, device: str, steps: int) -> dict:
    from protege.agent.config import AgentConfig
    from protege.core.trajectory import read_jsonl
    from protege.models.demonstrator import ReferenceDemonstrator
    from protege.models.reference_expert import ReferenceExpert
    from protege.stages.collect import collect
    from protege.stages.dataset import row_from_trajectory, save_dataset
    from protege.stages.sft import train
    from protege.stages.sft_config import SFTRunConfig
    from protege.tasks.bundled import load_bundled

    tasks = load_bundled("train")[:16]
    collect(tasks, out / "collect", seed=0, config=AgentConfig.preset("small", max_parallel=16),
            expert=ReferenceExpert("exact_edit+description"), policy=ReferenceDemonstrator(tasks, plan="compact"))
    rows = [row_from_trajectory(t, "live", "live") for t in read_jsonl(out / "collect" / "kept.jsonl")]
    save_dataset(rows, out / "data", "live", val_fraction=0.1, seed=0)
    config = SFTRunConfig.preset("small", model=model, max_steps=steps, device=device, bf16=device == "cuda",
                                 save_steps=-1, report_to="none", per_device_batch=4, grad_accum=1)
    start = time.monotonic()
    metrics = train(config, out / "data", out / "sft")
    return {"steps": steps, "mode": config.mode, "wall_s": round(time.monotonic() - start, 1),
            "train_tok_per_s": metrics.get("throughput_tokens_per_s"), "peak_gib": round(_peak_gib(device), 2),
            "final_loss": metrics.get("final_train_loss")}


def grpo_step(model: str, out: Path, device: str) -> dict:
    import importlib.util

    from protege.stages.rl import train
    from protege.stages.rl_config import RLRunConfig

    use_vllm = device == "cuda" and importlib.util.find_spec("vllm") is not None
    config = RLRunConfig.preset("small", model=model, max_steps=1, device=device, task_sample=2,
                                     tasks_per_step=1, num_generations=4, micro_batch_size=2, report_to="none",
                                     save_trajectories=False, use_vllm=use_vllm)
    start = time.monotonic()
    result = train(config, out / "rl", verbose=False)
    return {"steps": result.steps, "wall_s": round(time.monotonic() - start, 1), "peak_gib": round(_peak_gib(device), 2),
            "rollouts": "TRL's colocated vLLM engine" if use_vllm else "trainer's model (transformers generate)",
            "reward_std": result.last.get("reward_std"), "frac_reward_zero_std": result.last.get("frac_reward_zero_std")}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m", help="smollm2-135m (PyPI wheel) | tiny | a model folder")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--serve", default="vllm", choices=["vllm", "transformers"])
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--sft-steps", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("runs/gpu_check"))
    parser.add_argument("--skip", default="", help="comma list of parts to skip: rollouts,sft,grpo")
    args = parser.parse_args(argv)
    from protege.models.engine import cpu_flags
    from protege.models.registry import resolve_model

    args.out.mkdir(parents=True, exist_ok=True)
    model_dir = str(resolve_model(args.model))
    report: dict = {"model": args.model, "device": args.device, "serve": args.serve}
    try:
        import torch

        report["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
        report["torch"] = torch.__version__
    except ImportError:
        pass
    report["cpu_flags"] = sorted(cpu_flags())
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    parts = [("rollouts", lambda: rollouts(model_dir, args.out, args.serve, args.device, args.episodes)),
             ("sft", lambda: sft_step(args.model, args.out, args.device, args.sft_steps)),
             ("grpo", lambda: grpo_step(args.model, args.out, args.device))]
    for name, part in parts:
        if name in skip:
            continue
        start = time.monotonic()
        try:
            report[name] = part()
        except Exception as exc:  # one broken part must not hide the others' figures
            report[name] = {"error": f"{type(exc).__name__}: {exc}"[:2000], "wall_s": round(time.monotonic() - start, 1)}
        print(f"gpu_check: {name}: {json.dumps(report[name])}", flush=True)
        (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
