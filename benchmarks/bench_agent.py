"""An evaluation condition's agent loop with the local policy's in-batch levers off and on,
side by side in one process on the same model, tasks and ORACLE expert.

    python benchmarks/bench_agent.py --model runs/small/03_sft/merged [--limit 52] [--hint description]
    python benchmarks/bench_agent.py --model runs/small/03_sft/merged --first-turn 3

Off: every row of a generate() call computed until the last row stops, and every conversation's
first turn prefilled in full (the turn cache across turns stays on in both). On: the call is cut
once half its rows have stopped and the rest continue from their caches in a smaller batch
(`regroup_at`), and rows that start alike compute their common prefix once (`share_prefixes`).
Greedy decoding in the dtype policy's rollout dtype, the `small` agent preset, the bundled test
split: episodes as `protege.stages.evaluate` runs them (not graded). Prints per path the wall time,
the generation time, the prefill tokens computed and the generated tokens, then how many
episodes took the same actions in both paths, and last `agent rollout speedup: N.NNx`.

`--first-turn N` measures only the first generate() call of those episodes (system prompt and
issue; no sandbox), N times in alternation with each lever off and on, which separates the
levers from the machine's noise: off, shared prefixes only, both."""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from functools import partial

from protege.agent.config import AgentConfig
from protege.agent.loop import initial_messages, run_episodes
from protege.env.base import EnvConfig
from protege.env.factory import make_environment
from protege.models.policies import TransformersPolicy
from protege.models.reference_expert import ReferenceExpert
from protege.models.registry import resolve_model
from protege.tasks.bundled import load_bundled


def run(policy: TransformersPolicy, tasks, hint: str, config: AgentConfig) -> dict:
    start = time.perf_counter()
    trajs = run_episodes(tasks, policy, ReferenceExpert(hint_level=hint),
                         partial(make_environment, config=EnvConfig()), config)
    wall = time.perf_counter() - start
    return {"wall_s": wall, "stats": dict(policy.stats), "actions": [[s.action for s in t.steps] for t in trajs],
            "steps": sum(len(t.steps) for t in trajs)}


def first_turn(path: str, tasks, config: AgentConfig, kw: dict, reps: int) -> None:
    convs = [initial_messages(t, config, ask_expert=True) for t in tasks]
    ref = TransformersPolicy(path, **{**kw, "max_new_tokens": 4})
    ref.generate(convs[:4], [])  # warm-up: the first call in a process pays one-time setup
    paths = {"off": {"regroup_at": 1.0, "share_prefixes": False}, "shared prefixes": {"regroup_at": 1.0},
             "both": {}}
    walls: dict[str, list[float]] = {name: [] for name in paths}
    for rep in range(reps):
        for name, levers in paths.items():
            policy = TransformersPolicy(path, model=ref.model, tokenizer=ref.tokenizer, **kw, **levers)
            start = time.perf_counter()
            policy.generate(convs, [])
            walls[name].append(time.perf_counter() - start)
            print(f"first turn, {name:15s} rep {rep}: {walls[name][-1]:6.1f} s, prefill tokens "
                  f"{policy.stats['prefill_tokens']}, regroups {policy.stats['regroups']}, load "
                  f"{os.getloadavg()[0]:.2f}", flush=True)
    medians = {name: sorted(w)[len(w) // 2] for name, w in walls.items()}
    print("first turn, median s: " + ", ".join(f"{name} {m:.1f}" for name, m in medians.items()))
    print(f"first-turn speedup: {medians['off'] / medians['both']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a protégé checkpoint (e.g. runs/small/03_sft/merged)")
    parser.add_argument("--limit", type=int, default=52, help="held-out tasks")
    parser.add_argument("--hint", default="description", help="the ORACLE reference expert's hint level")
    parser.add_argument("--first-turn", type=int, default=0, metavar="N",
                        help="only the first turn, N alternating repetitions per path")
    args = parser.parse_args()
    import torch

    tasks = load_bundled("test")[: args.limit]
    config = replace(AgentConfig.preset("small"), max_parallel=len(tasks))
    path = str(resolve_model(args.model))
    kw = {"max_new_tokens": 128, "temperature": 0.0, "batch_size": len(tasks)}
    if args.first_turn:
        first_turn(path, tasks, config, kw, args.first_turn)
        return
    off = TransformersPolicy(path, regroup_at=1.0, share_prefixes=False, **kw)
    on = TransformersPolicy(path, model=off.model, tokenizer=off.tokenizer, **kw)
    results = {}
    for name, policy in (("off", off), ("on", on)):
        results[name] = r = run(policy, tasks, args.hint, config)
        s = r["stats"]
        print(f"{name:3s}: {r['wall_s']:7.1f} s wall for {len(tasks)} episodes ({r['steps']} steps); prefill tokens "
              f"{s['prefill_tokens']}, shared-prefix tokens not computed {s['shared_prefix_tokens']}, generated "
              f"{s['generated_tokens']}, regroups {s['regroups']}", flush=True)
    same = sum(a == b for a, b in zip(results["off"]["actions"], results["on"]["actions"]))
    print(f"episodes with the same actions in both paths: {same}/{len(tasks)}; dtype "
          f"{next(off.model.parameters()).dtype}; threads {torch.get_num_threads()}; load {os.getloadavg()[0]:.2f}")
    print(f"agent rollout speedup: {results['off']['wall_s'] / results['on']['wall_s']:.2f}x")


if __name__ == "__main__":
    main()
