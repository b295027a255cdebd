"""Spec strings -> components: the one place where the CLI and every stage build a policy, an
expert, a judge or a task source from the short names users write ("transformers:smollm2-135m",
"reference:description", "noisy:0.3", "openai:gpt-4.1", "bundled:test").

It sits below the CLI: a bad spec raises ValueError naming it, and each caller says where the spec
came from (a CLI usage error, "collect config: field 'demonstrator'"). Heavy imports stay lazy.

    >>> make_policy("bogus", [])
    Traceback (most recent call last):
    ...
    ValueError: unknown policy 'bogus' (use scripted, reference, transformers:MODEL or openai:MODEL)
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

from protege.experts import from_spec as make_expert  # none | reference[:LEVEL] | noisy:P[:INNER] | openai: | policy:
from protege.judges import make_judge  # heuristic | openai:MODEL
from protege.tasks import load_source as load_tasks  # bundled[:SPLIT] | a task file | a hub dataset

__all__ = ["POLICY_SPECS", "load_tasks", "make_expert", "make_judge", "make_policy"]

POLICY_SPECS = "scripted, reference, transformers:MODEL or openai:MODEL"


def make_policy(spec: str, tasks: list, *, base_url: str | None = None, temperature: float = 0.0,
                max_new_tokens: int = 256, seed: int = 0, device: str = "cpu", batch_size: int = 8,
                serve: str = "off", servers: ExitStack | None = None, log_dir: Path | None = None,
                cache: dict[str, Any] | None = None, name: str = "", plan: str = "full", p_wrong: float = 0.5):
    """A policy from its spec:

    * ``scripted``: ORACLE, replays each task's gold patch (tests, smoke baselines);
    * ``reference``: the ORACLE demonstrator of collection (`plan`, `p_wrong`);
    * ``transformers:MODEL``: a local model (a folder, ``tiny`` or ``smollm2-135m``), in process, or
      with ``serve`` (``transformers`` | ``vllm``) behind an OpenAI-compatible server that `servers`
      stops (logs in `log_dir`); `cache` keeps the last loaded weights, so seeds and conditions of
      one model share them;
    * ``openai:MODEL``: any OpenAI-compatible endpoint at `base_url`.
    """
    kind, _, arg = spec.partition(":")
    if kind == "scripted" and not arg:
        from protege.scripted import ScriptedPolicy

        return ScriptedPolicy(tasks)
    if kind == "reference" and not arg:
        from protege.collect import ReferenceDemonstrator

        return ReferenceDemonstrator(tasks, seed=seed, p_wrong=p_wrong, plan=plan)
    if kind == "openai" and arg:
        from protege.policies import OpenAIPolicy

        return OpenAIPolicy(base_url=base_url or "https://api.openai.com/v1", model=arg, temperature=temperature,
                            max_tokens=max_new_tokens, concurrency=batch_size, name=name)
    if kind == "transformers" and arg:
        from protege.models import resolve_model

        model_dir = resolve_model(arg)
        if serve != "off":
            from protege.serving import ServedModel

            if servers is None:
                raise ValueError(f"serve={serve!r} needs an ExitStack that stops the server")
            served = servers.enter_context(ServedModel(str(model_dir), backend=serve, log_dir=log_dir,
                                                       device=device if serve == "transformers" else "auto"))
            return served.policy(temperature=temperature, max_tokens=max_new_tokens, concurrency=batch_size,
                                 name=name or spec)
        from protege.policies import TransformersPolicy

        cache = {} if cache is None else cache
        shared = {"model": cache["model"], "tokenizer": cache["tokenizer"]} if cache.get("dir") == str(model_dir) else {}
        if not shared:
            cache.clear()
        policy = TransformersPolicy(model_dir=model_dir, max_new_tokens=max_new_tokens, temperature=temperature,
                                    seed=seed, device=device, batch_size=batch_size, name=name or spec, **shared)
        cache.update(dir=str(model_dir), model=policy.model, tokenizer=policy.tokenizer)
        return policy
    raise ValueError(f"unknown policy {spec!r} (use {POLICY_SPECS})")
