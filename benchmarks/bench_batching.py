"""Generated tokens per second for N conversations, sequential (batch 1) vs batched.

    python benchmarks/bench_batching.py                       # tiny model
    python benchmarks/bench_batching.py --model smollm2-135m  # real pretrained weights

Counts only the tokens each conversation actually generated (rows that finish early in a
batch still cost compute until the batch ends: that cost is part of the measurement)."""

from __future__ import annotations

import argparse
import os
import time

import torch

from protege.models.policies import TransformersPolicy
from protege.models.registry import resolve_model

QUESTIONS = [
    "Write a Python function that checks whether a string is a palindrome, and explain it.",
    "How do I find every file under src/ that imports the json module? Show the shell command.",
    "Explain what this error means: ValueError: invalid literal for int() with base 10: 'x'.",
    "Write a pytest test for a function add(a, b) that returns the sum of two numbers.",
    "What does `git diff --stat` show, and when is it useful?",
    "Refactor this loop into a list comprehension: out = []; for x in xs: out.append(x * 2)",
    "How can I read a JSON file in Python and print one of its keys?",
    "Describe the steps to reproduce a failing unit test before fixing it.",
]


def conversations(n: int) -> list[list[dict]]:
    return [[{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}] for i in range(n)]


def run(policy: TransformersPolicy, convs, batch_size: int) -> tuple[int, float]:
    policy.batch_size = batch_size
    policy._calls = 0  # same seeds for every batch size
    start = time.perf_counter()
    gens = policy.generate(convs, tools=[])
    elapsed = time.perf_counter() - start
    assert all(g.error is None for g in gens), [g.error for g in gens]
    return sum(g.completion_tokens for g in gens), elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help='"tiny", "smollm2-135m" or a local model directory')
    parser.add_argument("--n", type=int, default=16, help="concurrent conversations")
    parser.add_argument("--batch-sizes", default="1,8,16")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    start = time.perf_counter()
    policy = TransformersPolicy(resolve_model(args.model), max_new_tokens=args.max_new_tokens,
                                temperature=args.temperature, device=args.device)
    n_params = sum(p.numel() for p in policy.model.parameters())
    print(f"model {args.model}: {n_params / 1e6:.1f}M params, loaded in {time.perf_counter() - start:.1f} s; "
          f"device {args.device}, torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}")
    policy.max_new_tokens = 4
    policy.generate(conversations(2), tools=[])  # warm-up
    policy.max_new_tokens = args.max_new_tokens

    convs = conversations(args.n)
    print(f"{args.n} conversations, up to {args.max_new_tokens} new tokens each")
    print(f"{'batch':>5} {'tokens':>7} {'seconds':>8} {'tok/s':>8} {'vs batch 1':>10}")
    base = None
    for batch_size in (int(b) for b in args.batch_sizes.split(",")):
        tokens, seconds = run(policy, convs, batch_size)
        rate = tokens / seconds
        base = base or rate
        print(f"{batch_size:>5} {tokens:>7} {seconds:>8.1f} {rate:>8.1f} {rate / base:>9.1f}x")


if __name__ == "__main__":
    main()
