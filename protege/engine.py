"""Engine choices that depend on the machine: which dtype each phase runs in.

Measured on a 2-core Xeon with AMX and AVX512-BF16 (SmolLM2-135M, docs/LOG.md, DESIGN.md):
bf16 makes prefill 5.8x and training 1.85x (autocast) to 2.3x (bf16 weights) faster than fp32,
but batched decode with a DynamicCache is *slower* in bf16 (79 vs 133 new tokens/s at batch 8).
Agent rollouts (protege.policies) keep a StaticCache between turns, with which bf16 decode measured
2.2x faster than fp32 at batch 52 (docs/LOG.md 2026-12-02), so rollouts run in bf16 too. Without
AMX / AVX512-BF16, bf16 matrix products are emulated and slower than fp32: detect, never assume.
On a GPU every phase runs in bf16.
"""

from __future__ import annotations

from functools import lru_cache

BF16_FLAGS = ("amx_bf16", "avx512_bf16")


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where it cannot be read)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def peak_rss_gib() -> float:
    """This process's peak resident memory in GiB: Linux's VmHWM, which starts again at exec.
    (getrusage's ru_maxrss does not: a process spawned by a large one reports its parent's size.)"""
    try:
        with open("/proc/self/status", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**20  # kB
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def cpu_has_fast_bf16(flags: frozenset[str] | None = None) -> bool:
    """True where oneDNN has native bf16 matrix units (AMX or AVX512-BF16).

    >>> cpu_has_fast_bf16(frozenset({"avx2", "amx_bf16"})), cpu_has_fast_bf16(frozenset({"avx2"}))
    (True, False)
    """
    flags = cpu_flags() if flags is None else flags
    return any(f in flags for f in BF16_FLAGS)


def dtype_policy(device: str = "cpu", flags: frozenset[str] | None = None) -> dict[str, str]:
    """The dtype of each phase: `rollout` (the weights agent episodes generate with) and `train`
    (autocast dtype of SFT / RL forward-backward; master weights stay fp32). Recorded in run configs.

    >>> dtype_policy("cuda")
    {'rollout': 'bfloat16', 'train': 'bfloat16', 'reason': 'GPU'}
    >>> dtype_policy("cpu", frozenset({"amx_bf16"}))["train"], dtype_policy("cpu", frozenset())["train"]
    ('bfloat16', 'float32')
    """
    if device != "cpu":
        return {"rollout": "bfloat16", "train": "bfloat16", "reason": "GPU"}
    if cpu_has_fast_bf16(flags):
        # bf16 decode is slower than fp32 with a DynamicCache but 2.2x faster with the StaticCache
        # TransformersPolicy uses (docs/LOG.md 2026-12-02, batch 52 x 800 tokens on 2 cores).
        return {"rollout": "bfloat16", "train": "bfloat16",
                "reason": "CPU with AMX/AVX512-BF16: bf16 training; bf16 rollouts with a static KV cache"}
    return {"rollout": "float32", "train": "float32", "reason": "CPU without native bf16: fp32 everywhere"}
