"""The main job: `python -m protege.main --preset small` (what `make small` runs).

Today it runs the evaluation stage on the bundled held-out split: the preset's protégé with
the reference expert (an ORACLE built from the gold patch), then grades every patch, in a
resumable run folder. Later stages (collection, SFT, RL, figures) plug in here as they land.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from protege.paths import project_root


@dataclass(frozen=True)
class MainPreset:
    policy: str  # cli_agent policy spec
    tasks: str  # task source
    limit: int | None  # instances (None = all)
    step_limit: int
    max_new_tokens: int


PRESETS = {
    "smoke": MainPreset("transformers:tiny", "bundled:test", 2, 6, 64),
    "small": MainPreset("transformers:smollm2-135m", "bundled:test", 16, 15, 192),
    "full": MainPreset("transformers:Qwen/Qwen2.5-Coder-7B-Instruct", "bundled:test", None, 75, 1024),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="small")
    parser.add_argument("--run-dir", type=Path, default=None, help="default: runs/main-<preset>")
    parser.add_argument("--expert", default="reference", help="none | reference | openai:MODEL")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    preset = PRESETS[args.preset]
    from protege.cli_agent import run

    run_dir = args.run_dir or project_root() / "runs" / f"main-{args.preset}-seed{args.seed}"
    run(tasks=preset.tasks, run_dir=run_dir, preset=args.preset, policy=preset.policy, expert=args.expert,
        base_url="https://api.openai.com/v1", invocation="learned", block_policy_asks=False,
        instance_ids=None, limit=preset.limit, step_limit=preset.step_limit, max_parallel=None,
        backend="local", mirror=None, workspace_root=None, seed=args.seed, temperature=0.0,
        max_new_tokens=preset.max_new_tokens, grade=True, progress=True)


if __name__ == "__main__":
    main()
