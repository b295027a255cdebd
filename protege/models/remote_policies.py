"""Policies whose model runs elsewhere: any OpenAI-compatible endpoint (vLLM, transformers serve,
an API), and the vLLM engine TRL colocates with training."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from protege.core.actions import COLLABORATE
from protege.core.protocols import Generation, Message
from protege.models.policies import TOOL_CALL_END, encode_fitting


def _api_key(env_name: str) -> str:
    # Local OpenAI-compatible servers accept any key; the client refuses an empty one.
    return os.environ.get(env_name) or "EMPTY"


@dataclass
class OpenAIPolicy:
    """A protégé served behind an OpenAI-compatible chat endpoint (vLLM, transformers serve,
    a hosted API). Conversations are sent concurrently; a failed call becomes
    Generation(error=...) for the loop to record."""

    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"  # the key is read from this variable, never from files
    timeout: float = 120.0  # seconds per request
    max_retries: int = 2  # the openai client's own retries
    temperature: float = 0.0
    max_tokens: int = 1024
    concurrency: int = 8  # requests in flight at once
    name: str = ""

    def __post_init__(self) -> None:
        import openai

        self.name = self.name or f"openai:{self.model}"
        self.client = openai.OpenAI(
            base_url=self.base_url, api_key=_api_key(self.api_key_env), timeout=self.timeout, max_retries=self.max_retries
        )

    def generate(self, conversations: list[list[Message]], tools: list[dict[str, Any]]) -> list[Generation]:
        with ThreadPoolExecutor(max_workers=max(1, min(self.concurrency, len(conversations)))) as pool:
            return list(pool.map(lambda c: self._one(c, tools), conversations))

    def _one(self, messages: list[Message], tools: list[dict[str, Any]]) -> Generation:
        import openai

        kwargs: dict[str, Any] = {
            "model": self.model, "messages": messages, "temperature": self.temperature, "max_tokens": self.max_tokens
        }
        if tools:
            kwargs["tools"] = tools
        try:
            response = self.client.chat.completions.create(**kwargs)
        except openai.OpenAIError as exc:
            return Generation(text="", error=f"{type(exc).__name__}: {exc}")
        if not response.choices:
            return Generation(text="", error="endpoint returned no choices")
        choice = response.choices[0]
        calls = [
            {"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": c.function.arguments}}
            for c in (choice.message.tool_calls or [])
            if getattr(c, "function", None) is not None
        ]
        usage = response.usage
        return Generation(
            text=choice.message.content or "",
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            tool_calls=calls or None,
            finish_reason=choice.finish_reason or "",
        )


@dataclass
class VLLMEnginePolicy:
    """A protégé generating with an in-process vLLM engine (`vllm.LLM`), e.g. the one TRL's
    GRPOTrainer colocates with training (`use_vllm`, vllm_mode "colocate"), whose weights TRL
    syncs before every rollout. Prompts are the chat template rendered over each conversation,
    passed as token ids; each Generation carries prompt/completion ids and the sampled tokens'
    log-probs, which vLLM computes after temperature scaling when the engine was built with
    logprobs_mode="processed_logprobs" (as TRL builds it): the importance-sampling correction
    TRL applies compares them with its own recomputation."""

    llm: Any  # vllm.LLM (or anything with its generate(prompts, sampling_params, use_tqdm) contract)
    tokenizer: Any
    max_new_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 1.0
    seed: int = 0
    context_len: int = 32_768  # the engine's max_model_len
    name: str = "vllm"
    params_factory: Any = None  # builds the sampling parameters; None = vllm.SamplingParams

    def __post_init__(self) -> None:
        self._calls = 0

    def sampling_params(self) -> Any:
        factory = self.params_factory
        if factory is None:
            from vllm import SamplingParams as factory
        self._calls += 1
        return factory(n=1, temperature=self.temperature, top_p=self.top_p, max_tokens=self.max_new_tokens,
                              logprobs=0, stop=[TOOL_CALL_END, COLLABORATE], include_stop_str_in_output=True,
                              seed=self.seed * 1_000_003 + self._calls)

    def generate(self, conversations: list[list[Message]], tools: list[dict[str, Any]]) -> list[Generation]:
        ids, results, fits = encode_fitting(self.tokenizer, conversations, tools, self.max_new_tokens,
                                             self.context_len)
        if fits:
            outputs = self.llm.generate([{"prompt_token_ids": ids[i]} for i in fits], self.sampling_params(),
                                        use_tqdm=False)
            for i, out in zip(fits, outputs):
                sample = out.outputs[0]
                tokens = list(sample.token_ids)
                logprobs = [float(step[token].logprob) for token, step in zip(tokens, sample.logprobs or [])]
                if len(logprobs) != len(tokens):
                    results[i] = Generation(text="", prompt_tokens=len(ids[i]),
                                            error="vLLM returned no log-probs: build the engine with logprobs enabled")
                    continue
                results[i] = Generation(
                    text=self.tokenizer.decode(tokens, skip_special_tokens=True), prompt_tokens=len(ids[i]),
                    completion_tokens=len(tokens), prompt_ids=list(ids[i]), completion_ids=tokens, logprobs=logprobs,
                    finish_reason="length" if sample.finish_reason == "length" else "stop")
        return results  # type: ignore[return-value]
