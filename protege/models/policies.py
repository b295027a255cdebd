"""Protégé policies: a local transformers model (batched, with log-probs for RL) and any
OpenAI-compatible chat endpoint. Both implement `protege.core.protocols.Policy`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protege.core.actions import COLLABORATE
from protege.core.protocols import Generation, Message
from protege.models.engine import dtype_policy, use_native_gqa
from protege.models.turn_cache import TurnCache, common_prefix, gather_rows

TOOL_CALL_END = "</tool_call>"


class _StopAfterText:
    """Stops a row once its completion (not its prompt) ends a `TOOL_CALL_END`, and remembers
    at which step, so the padding generate() writes after a stop is never taken as output.

    The completion starts at column `prompt_len`: in a regrouped batch (see `regroup_at`) it
    includes the tokens the row generated before, so a `TOOL_CALL_END` split across the
    regrouping is still found. With `regroup_at` < 1, the whole call also stops once that share of
    its rows has finished (at a stop text or an end-of-sequence token) and at least
    `min_left` tokens of the budget remain: the unfinished rows continue in a smaller batch."""

    def __init__(self, tokenizer, prompt_len: int, text: str = TOOL_CALL_END, window: int = 16,
                 eos_ids: list[int] | None = None, regroup_at: float = 1.0, budget: int = 0, min_left: int = 8,
                 min_rows: int = 2):
        self.tokenizer, self.prompt_len, self.text, self.window = tokenizer, prompt_len, text, window
        self.eos_ids, self.regroup_at, self.budget, self.min_left = eos_ids or [], regroup_at, budget, min_left
        self.min_rows = max(min_rows, 2)
        self.stopped_at: dict[int, int] = {}
        self.steps = 0
        self.regrouped = False

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        self.steps += 1
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        completion = input_ids[:, self.prompt_len :]
        for row in range(input_ids.shape[0]):
            if row in self.stopped_at:
                done[row] = True
                continue
            tail = completion[row, -self.window :].tolist()
            # Fires on the step whose token completes the text, not on later steps.
            if self.text in self.tokenizer.decode(tail) and self.text not in self.tokenizer.decode(tail[:-1]):
                self.stopped_at[row] = completion.shape[1]
                done[row] = True
        if self.regroup_at < 1 and self.budget - self.steps >= self.min_left and input_ids.shape[0] >= self.min_rows:
            eos = torch.tensor(self.eos_ids, device=input_ids.device)
            ended = done | torch.isin(input_ids[:, -self.steps:], eos).any(dim=1)
            if 0 < ended.sum() < input_ids.shape[0] and ended.float().mean() >= self.regroup_at:
                self.regrouped = True
                return torch.ones_like(done)
        return done


def encode_fitting(tokenizer: Any, conversations: list[list[Message]], tools: list[dict[str, Any]],
                    max_new_tokens: int, context_len: int) -> tuple[list[list[int]], list[Generation | None], list[int]]:
    """Each conversation's prompt ids (the chat template with the generation prompt); a
    context_length Generation for each prompt that leaves no room for `max_new_tokens`; the
    indices of the prompts that fit (the ones to generate for)."""
    encoded = [tokenizer(tokenizer.apply_chat_template(c, tools=tools or None, tokenize=False,
                                                       add_generation_prompt=True),
                         add_special_tokens=False).input_ids for c in conversations]
    results: list[Generation | None] = [None] * len(encoded)
    fits = []
    for i, ids in enumerate(encoded):
        if len(ids) + max_new_tokens > context_len:
            results[i] = Generation(text="", prompt_tokens=len(ids), finish_reason="context_length",
                                    error=f"prompt of {len(ids)} tokens + {max_new_tokens} new exceeds context "
                                          f"{context_len}")
        else:
            fits.append(i)
    return encoded, results, fits


def left_padded(batch: list[list[int]], pad: int) -> tuple[Any, Any]:
    """Token rows as one left-padded (input_ids, attention_mask) pair: every row ends at the last column,
    where generation continues."""
    import torch

    width = max(len(ids) for ids in batch)
    input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    for row, ids in enumerate(batch):
        input_ids[row, width - len(ids) :] = torch.tensor(ids)
        attention[row, width - len(ids) :] = 1
    return input_ids, attention


@dataclass
class TransformersPolicy:
    """A local causal LM generating for many conversations at once (left-padded batches).

    With `return_logprobs`, each Generation carries the prompt and completion token ids and
    the completion's per-token log-probs of the tempered distribution, log_softmax(logits / T)
    without top-p truncation: what TRL's GRPOTrainer recomputes for the same tokens."""

    model_dir: str | Path
    max_new_tokens: int = 256
    temperature: float = 0.7  # 0 = greedy
    top_p: float = 1.0
    seed: int = 0
    device: str = "cpu"
    batch_size: int = 8  # conversations per generate() call
    return_logprobs: bool = False
    dtype: str = "auto"  # "auto": protege.models.engine.dtype_policy (float32 for CPU rollouts, bfloat16 on GPU)
    # Keep each conversation's KV cache between calls and compute only the tokens added since
    # (see TurnCache); False re-prefills the whole conversation every turn.
    cache_turns: bool = True
    max_cache_mb: int = 4096  # memory the kept caches may use; least recently used dropped first
    # "static": transformers' StaticCache sized to the batch (prompt + max_new_tokens), written in
    # place; "dynamic": DynamicCache, which concatenates every layer's keys/values at every decode
    # step. Measured on 2 CPU cores, batch 52 x 800 tokens, SmolLM2-135M: decode 0.64 s/step
    # (fp32, dynamic), 0.41 (fp32, static), 0.93 (bf16, dynamic), 0.19 (bf16, static).
    cache_implementation: str = "static"
    # generate() computes every row until the last one stops: a call is cut once this share of
    # its rows has finished, and the unfinished rows continue (from their caches) in a smaller
    # batch. 1 = never. Greedy tokens are unchanged (tests/test_policies.py).
    regroup_at: float = 0.5
    # Calls of fewer rows are not cut: on 2 CPU cores (SmolLM2-135M, fp32, 400-token context) a
    # decode step of 6, 13 or 26 rows cost about the same (150-250 ms: reading the weights), one
    # of 52 rows 330-710 ms; below this, regrouping only adds the cache copies.
    regroup_min_rows: int = 16
    # Rows with nothing cached that start alike (the system prompt, G rollouts of one task)
    # compute their common prefixes once (see _share_prefixes).
    share_prefixes: bool = True
    # On CPU, grouped-query attention through torch's own kernel instead of copying key/value heads
    # (protege.models.engine.use_native_gqa). It switches the (possibly shared) model itself, so RL's
    # training forward then uses it too (same loss; TRL recomputes the log-probs with it).
    native_gqa: bool = True
    name: str = ""
    model: Any = field(default=None, repr=False)  # pass a loaded model/tokenizer to share them
    tokenizer: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.name = self.name or f"transformers:{Path(str(self.model_dir)).name}"
        if self.tokenizer is None:
            self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        if self.model is None:

            dtype = self.dtype if self.dtype != "auto" else dtype_policy(self.device)["rollout"]
            self.model = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=getattr(torch, dtype))
            self.model.to(self.device)
        self.model.eval()
        if self.native_gqa:

            use_native_gqa(self.model)
        tok = self.tokenizer
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        # A protégé of the token interface ends its turn at <<collaborate>> (one added token).
        ends = [t for t in ("<|im_end|>", "<|endoftext|>", COLLABORATE) if t in tok.get_vocab()]
        self.eos_ids = sorted({tok.convert_tokens_to_ids(t) for t in ends} | {tok.eos_token_id} - {None})
        self.context_len = getattr(self.model.config, "max_position_embeddings", None) or 10**9
        self._calls = 0
        self.turn_cache = TurnCache(self.max_cache_mb)
        self.stats = {"prompt_tokens": 0, "prefill_tokens": 0, "full_prefills": 0, "generated_tokens": 0,
                      "shared_prefix_tokens": 0, "regroups": 0}

    def clear_cache(self) -> None:
        """Forget every cached conversation (after the weights changed)."""
        self.turn_cache = TurnCache(self.max_cache_mb)

    def generate(self, conversations: list[list[Message]], tools: list[dict[str, Any]]) -> list[Generation]:
        encoded, results, fits = encode_fitting(self.tokenizer, conversations, tools, self.max_new_tokens,
                                                 self.context_len)
        # Similar lengths share a batch, so little compute goes to padding.
        fits.sort(key=lambda i: len(encoded[i]))
        for start in range(0, len(fits), self.batch_size):
            chunk = fits[start : start + self.batch_size]
            for i, gen in zip(chunk, self._generate_batch([encoded[i] for i in chunk])):
                results[i] = gen
        return results  # type: ignore[return-value]

    def _generate_batch(self, batch: list[list[int]]) -> list[Generation]:
        hits = [self.turn_cache.take(ids) for ids in batch] if self.cache_turns else [(0, None)] * len(batch)
        self.stats["prompt_tokens"] += sum(len(ids) for ids in batch)
        self.stats["full_prefills"] += sum(n == 0 for n, _ in hits)
        if self.cache_turns and self.share_prefixes:
            hits = self._share_prefixes(batch, hits)
        tokens: list[list[int]] = [[] for _ in batch]
        logprobs: list[list[float]] = [[] for _ in batch]
        reasons = [""] * len(batch)
        active = list(range(len(batch)))
        while active:  # one pass, or more when the batch is regrouped
            carried = len(tokens[active[0]])  # every unfinished row has generated as many tokens
            parts = self._segment([batch[r] + tokens[r] for r in active], [hits[r] for r in active],
                                  self.max_new_tokens - carried, carried)
            unfinished = []
            for r, (new, lps, reason, hit) in zip(active, parts):
                tokens[r] += new
                logprobs[r] += lps
                reasons[r] = reason
                if not reason:
                    unfinished.append(r)
                    hits[r] = hit
            active = unfinished
        gens = []
        for ids, toks, lps, reason in zip(batch, tokens, logprobs, reasons):
            self.stats["generated_tokens"] += len(toks)
            gens.append(Generation(
                text=self.tokenizer.decode(toks, skip_special_tokens=True), prompt_tokens=len(ids),
                completion_tokens=len(toks), prompt_ids=list(ids) if self.return_logprobs else [],
                completion_ids=toks if self.return_logprobs else [], logprobs=lps, finish_reason=reason))
        return gens

    def _generation_config(self, budget: int) -> Any:
        """Sampling (temperature > 0, full vocabulary) or greedy, stopping at any EOS id."""
        from transformers import GenerationConfig

        sample = self.temperature > 0
        return GenerationConfig(
            max_new_tokens=budget,
            do_sample=sample,
            temperature=self.temperature if sample else None,
            top_p=self.top_p if sample else None,
            top_k=0 if sample else None,
            eos_token_id=self.eos_ids,
            pad_token_id=self.tokenizer.pad_token_id,
            return_dict_in_generate=True,
            output_logits=self.return_logprobs,
        )

    def _segment(self, batch: list[list[int]], hits: list[tuple[int, Any]], budget: int, carried: int):
        """One generate() call over `batch` (prompts that end with the `carried` tokens the rows
        generated in earlier passes), continuing the cached prefixes in `hits`. Per row: the new
        tokens, their log-probs, the finish reason ("" when the call was cut before the row
        finished) and, for an unfinished row, its cache to continue from."""
        import torch
        from transformers import StoppingCriteriaList

        input_ids, attention = left_padded(batch, self.tokenizer.pad_token_id)
        width = input_ids.shape[1]
        config = self._generation_config(budget)
        layers = None
        if any(n for n, _ in hits):
            input_ids, attention, layers = self._with_cache(batch, hits)
            width = input_ids.shape[1]
        past = self._new_cache(layers, width + budget)
        self.stats["prefill_tokens"] += sum(len(ids) - n for ids, (n, _) in zip(batch, hits))
        # The carried tokens end every row (left padding), so the completion so far starts here.
        stopper = _StopAfterText(self.tokenizer, width - carried, eos_ids=self.eos_ids, regroup_at=self.regroup_at,
                                 budget=budget, min_rows=self.regroup_min_rows)
        # Seeded per call: a run is reproducible, yet successive calls draw different samples.
        torch.manual_seed(self.seed * 1_000_003 + self._calls)
        self._calls += 1
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids.to(self.model.device),
                attention_mask=attention.to(self.model.device),
                generation_config=config,
                stopping_criteria=StoppingCriteriaList([stopper]),
                **({"cache": past} if past is not None else {}),
            )
        self.stats["regroups"] += stopper.regrouped
        completions = out.sequences[:, width:].cpu()
        logprobs = self._logprobs(out.logits, completions) if self.return_logprobs else None
        kept = getattr(out, "past_key_values", None)
        parts = []
        for row, ids in enumerate(batch):
            new = completions[row].tolist()
            end, reason = len(new), "length" if len(new) >= budget else ""
            eos_at = next((k for k, t in enumerate(new) if t in self.eos_ids), None)
            if eos_at is not None:
                end, reason = eos_at + 1, "stop"
            if row in stopper.stopped_at and stopper.stopped_at[row] - carried <= end:
                end, reason = stopper.stopped_at[row] - carried, "stop"
            new = new[:end]
            hit = None
            if kept is not None and (self.cache_turns or not reason):
                # Cached: the whole (padded) input and every generated token but the last,
                # which was sampled and never fed back.
                cols = attention[row].nonzero().flatten().tolist() + [
                    width + k for k in range(min(end, completions.shape[1] - 1))]
                row_layers = gather_rows(kept, row, cols)
                if reason:
                    self.turn_cache.put(list(ids) + new[:len(cols) - len(ids)], row_layers)
                else:
                    hit = (len(cols), row_layers)
            parts.append((new, logprobs[row][:end] if logprobs is not None else [], reason, hit))
        return parts

    def _share_prefixes(self, batch: list[list[int]], hits: list[tuple[int, Any]]) -> list[tuple[int, Any]]:
        """Rows with nothing cached that start alike (the system prompt; G rollouts of one task)
        get their common prefixes computed once, as a tree: the prefix they all share, then each
        group's longer one continued from it. Returns `hits` with those prefixes."""
        import numpy as np

        hits = list(hits)
        arrays = {r: np.asarray(ids) for r, ids in enumerate(batch) if hits[r][0] == 0}

        def grow(rows: list[int], start: int, layers: Any) -> None:
            cap = min(len(arrays[r]) for r in rows) - 1  # at least one token left to compute
            end = min(common_prefix(arrays[rows[0]][:cap], arrays[r][:cap]) for r in rows[1:])
            if end > start and (len(rows) - 1) * (end - start) >= TurnCache.MIN_REUSE:  # worth a forward call
                layers = self._prefill(batch[rows[0]][start:end], layers)
                self.stats["prefill_tokens"] += end - start
                self.stats["shared_prefix_tokens"] += (len(rows) - 1) * (end - start)
                start = end
            if start:
                for r in rows:
                    hits[r] = (start, layers)
            groups: dict[int, list[int]] = {}
            for r in rows:
                if len(arrays[r]) > start + 1:
                    groups.setdefault(int(arrays[r][start]), []).append(r)
            for group in groups.values():
                if 1 < len(group) < len(rows):  # all rows in one group: they share no more worth computing
                    grow(group, start, layers)

        if len(arrays) > 1:
            grow(sorted(arrays), 0, None)
        return hits

    def _prefill(self, ids: list[int], layers: Any) -> list[tuple[Any, Any]]:
        """Keys/values of `ids` continuing `layers` (None: from the start), batch 1, unpadded."""
        import torch
        from transformers import DynamicCache

        past = DynamicCache(ddp_cache_data=layers, config=self.model.config) if layers else DynamicCache(
            config=self.model.config)
        # The module generate() runs: a PeftModel's generate() calls its base model, so the forward
        # that accelerate wraps in autocast during RL is bypassed there. Calling the wrapper here
        # would cache bf16 values that generate()'s fp32 steps then cannot write beside.
        model = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        with torch.inference_mode():
            out = model(input_ids=torch.tensor([ids], device=self.model.device), cache=past,
                        use_cache=True, logits_to_keep=1)
        return [(layer.keys, layer.values) for layer in out.past_key_values.layers]

    def _with_cache(self, batch: list[list[int]], hits: list[tuple[int, Any]]):
        """A batch whose cached prefixes come from earlier turns: each row is
        [pad..., cached prefix | pad..., new tokens], with the batched keys/values of the cached
        parts per layer (left-padded with zeros, masked). Rows without a hit have an empty cached part."""
        import torch

        pad = self.tokenizer.pad_token_id
        lc = max(n for n, _ in hits)
        ln = max(len(ids) - n for ids, (n, _) in zip(batch, hits))
        input_ids = torch.full((len(batch), lc + ln), pad, dtype=torch.long)
        attention = torch.zeros((len(batch), lc + ln), dtype=torch.long)
        layers = []
        ref = next(layer for n, layer in hits if n)
        for li in range(len(ref)):
            keys, values = [], []
            for n, cached in hits:
                k0, v0 = ref[li]
                shape = (1, k0.shape[1], lc, k0.shape[3])
                k = torch.zeros(shape, dtype=k0.dtype, device=k0.device)
                v = torch.zeros(shape, dtype=v0.dtype, device=v0.device)
                if n:
                    k[:, :, lc - n:] = cached[li][0][:, :, :n]
                    v[:, :, lc - n:] = cached[li][1][:, :, :n]
                keys.append(k)
                values.append(v)
            layers.append((torch.cat(keys), torch.cat(values)))
        for row, (ids, (n, _)) in enumerate(zip(batch, hits)):
            if n:
                input_ids[row, lc - n:lc] = torch.tensor(ids[:n])
                attention[row, lc - n:lc] = 1
            new = ids[n:]
            input_ids[row, lc + ln - len(new):] = torch.tensor(new)
            attention[row, lc + ln - len(new):] = 1
        return input_ids, attention, layers

    def _new_cache(self, layers: list[tuple[Any, Any]] | None, max_len: int) -> Any:
        """The cache generate() continues: `layers` (keys/values of the tokens already computed)
        copied into a StaticCache of `max_len` positions, or a DynamicCache holding them."""
        if self.cache_implementation == "static":
            from transformers import StaticCache

            cache = StaticCache(config=self.model.config, max_cache_len=max_len)
            for layer, (keys, values) in zip(cache.layers, layers or []):
                layer.update(keys, values)  # allocates max_len positions, writes the first len(keys)
            return cache
        if self.cache_implementation != "dynamic":
            raise ValueError(f"cache_implementation must be 'static' or 'dynamic', not {self.cache_implementation!r}")
        from transformers import DynamicCache

        return DynamicCache(ddp_cache_data=layers, config=self.model.config) if layers else None

    def _logprobs(self, logits: tuple, completions) -> list[list[float]]:
        import torch

        scale = self.temperature if self.temperature > 0 else 1.0
        steps = []
        for t, step_logits in enumerate(logits):  # one (batch, vocab) tensor per step
            logp = torch.log_softmax(step_logits.float().cpu() / scale, dim=-1)
            steps.append(logp.gather(1, completions[:, t : t + 1]).squeeze(1))
        return torch.stack(steps, dim=1).tolist()


