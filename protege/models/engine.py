"""Engine choices that depend on the machine: which dtype each phase runs in.

Measured on a 2-core Xeon with AMX and AVX512-BF16 (SmolLM2-135M, docs/LOG.md, DESIGN.md):
bf16 makes prefill 5.8x and training 1.85x (autocast) to 2.3x (bf16 weights) faster than fp32,
but batched decode with a DynamicCache is *slower* in bf16 (79 vs 133 new tokens/s at batch 8).
Agent rollouts (protege.models.policies) keep a StaticCache between turns, with which bf16 decode measured
2.2x faster than fp32 at batch 52 (docs/LOG.md 2026-12-02), so rollouts run in bf16 too. Without
AMX / AVX512-BF16, bf16 matrix products are emulated and slower than fp32: detect, never assume.
On a GPU every phase runs in bf16.

Attention: SmolLM2 has 9 query heads per 3 key/value heads (grouped-query attention). transformers'
`sdpa` attention copies each key/value head to its query heads (`repeat_kv`) whenever a mask is
given and more than one token is computed; on CPU `sdpa_gqa_attention` hands the groups to torch's
own kernel instead (`enable_gqa`), which measured 10-12% faster over a whole agent rollout (docs/LOG.md
2026-12-04, session 19), with the same training loss.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from protege.core.actions import COLLABORATE

BF16_FLAGS = ("amx_bf16", "avx512_bf16")
GQA_SDPA = "sdpa_gqa"  # the name sdpa_gqa_attention is registered under in transformers' AttentionInterface


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


def sdpa_gqa_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, dropout: float = 0.0,
                       scaling: float | None = None, is_causal: bool | None = None, **kwargs: Any) -> tuple[Any, None]:
    """transformers' `sdpa_attention_forward` (5.25) for grouped-query models, with the key/value
    heads passed to torch as they are (`enable_gqa=True`). Takes and returns what that function does:
    query (batch, heads, q, dim), key/value (batch, kv_heads, kv, dim), a boolean mask or None ->
    (batch, q, heads, dim). transformers does this itself only without a mask (its
    TRANSFORMERS_SDPA_FORCE_GQA switch aside), because on CUDA a masked GQA call falls back to the
    math kernel; on CPU the flash kernel takes it, so this is used on CPU only (`use_native_gqa`)."""
    import torch

    if kwargs.get("softcap") is not None or kwargs.get("position_bias") is not None:
        raise ValueError(f"{GQA_SDPA} attention supports neither softcap nor a position bias: use 'sdpa'")
    q_length = query.shape[2]
    is_causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    is_causal = q_length > 1 and attention_mask is None and is_causal
    if is_causal and key.shape[2] > q_length:
        # A prefill into an empty StaticCache: the keys beyond the queries are unwritten zeros, and
        # sdpa's is_causal aligns upper-left, so drop them (as transformers does).
        key, value = key[:, :, :q_length], value[:, :, :q_length]
    out = torch.nn.functional.scaled_dot_product_attention(
        query, key, value, attn_mask=attention_mask, dropout_p=dropout, scale=scaling, is_causal=is_causal,
        enable_gqa=True)
    return out.transpose(1, 2).contiguous(), None


def use_native_gqa(model: Any) -> bool:
    """Switch a CPU model with grouped-query heads from `sdpa` to `sdpa_gqa_attention` (registered
    with transformers' AttentionInterface on first use; the masks stay `sdpa`'s). True if switched;
    models on a GPU, with other attention implementations or without grouped heads are left as
    they are. The choice is not saved with the model's config."""
    config = model.config
    heads = getattr(config, "num_attention_heads", 0)
    grouped = (getattr(config, "num_key_value_heads", None) or heads) < heads
    if model.device.type != "cpu" or getattr(config, "_attn_implementation", None) != "sdpa" or not grouped:
        return False
    from transformers import AttentionInterface, AttentionMaskInterface
    from transformers.masking_utils import sdpa_mask

    AttentionInterface.register(GQA_SDPA, sdpa_gqa_attention)
    AttentionMaskInterface.register(GQA_SDPA, sdpa_mask)
    model.set_attn_implementation(GQA_SDPA)
    return True


# Words whose embeddings start the collaboration token's row: a small SFT budget then only has to
# move it a little from "asking for help", not learn it from a random vector.
COLLABORATE_SEED_WORDS = ("ask", " ask", " help", " expert", " collaborate", " question")


def add_collaborate_token(model: Any, tokenizer: Any, token: str | None = None) -> int:
    """Make the token interface's `<<collaborate>>` one token of `tokenizer` and give `model` an
    embedding row for it, the mean of the seed words' rows (input and, when untied, output
    embeddings); returns its id. Idempotent: a tokenizer that has it keeps its id and row.

    The token is added as a non-special added token: it is never split, and decoding keeps it
    (generations are decoded with skip_special_tokens, which would drop a special one)."""
    import torch
    from tokenizers import AddedToken

    token = token or COLLABORATE
    if token in tokenizer.get_vocab():
        return tokenizer.convert_tokens_to_ids(token)
    seeds = sorted({i for w in COLLABORATE_SEED_WORDS for i in tokenizer(w, add_special_tokens=False)["input_ids"]})
    tokenizer.add_tokens([AddedToken(token, special=False, normalized=False, single_word=False)])
    new_id = tokenizer.convert_tokens_to_ids(token)
    if new_id >= model.get_input_embeddings().weight.shape[0]:  # many models keep spare rows: use one
        model.resize_token_embeddings(new_id + 1, mean_resizing=False)
    with torch.no_grad():
        for emb in {id(e): e for e in (model.get_input_embeddings(), model.get_output_embeddings()) if e is not None}.values():
            emb.weight[new_id] = emb.weight[seeds].mean(dim=0)
    return new_id
