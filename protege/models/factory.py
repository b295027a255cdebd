"""Spec strings -> components: the one place where the CLI and every stage build a policy, an
expert, a judge or a task source from the short names users write ("transformers:smollm2-135m",
"reference:description", "noisy:0.3", "openai:gpt-4.1", "bundled:test").

It sits below the CLI: a bad spec raises ValueError naming it, and each caller says where the spec
came from (a CLI usage error, "collect config: field 'demonstrator'"). Heavy imports stay lazy.

    >>> make_policy("bogus", [])
    Traceback (most recent call last):
    ...
    ValueError: unknown policy 'bogus' (use scripted, reference, transformers:MODEL, openai:MODEL or replay:RUN_DIR)
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

from protege.core.protocols import Expert
from protege.models.demonstrator import ReferenceDemonstrator
from protege.models.experts import OpenAIExpert, PolicyExpert
from protege.models.judges import HeuristicJudge, Judge, OpenAIJudge
from protege.models.policies import TransformersPolicy
from protege.models.reference_expert import NoisyExpert, ReferenceExpert
from protege.models.registry import resolve_model
from protege.models.remote_policies import OpenAIPolicy
from protege.models.replay import ReplayPolicy, record_files
from protege.models.scripted import ScriptedPolicy
from protege.models.serving import ServedModel

POLICY_SPECS = "scripted, reference, transformers:MODEL, openai:MODEL or replay:RUN_DIR"
ORACLE_POLICIES = ("scripted", "reference")  # policy specs that read the gold patch


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
    * ``openai:MODEL``: any OpenAI-compatible endpoint at `base_url`;
    * ``replay:RUN_DIR``: the recorded episodes of a run folder played back (protege.models.replay).
    """
    kind, _, arg = spec.partition(":")
    if kind == "scripted" and not arg:

        return ScriptedPolicy(tasks)
    if kind == "reference" and not arg:

        return ReferenceDemonstrator(tasks, seed=seed, p_wrong=p_wrong, plan=plan)
    if kind == "openai" and arg:

        return OpenAIPolicy(base_url=base_url or "https://api.openai.com/v1", model=arg, temperature=temperature,
                            max_tokens=max_new_tokens, concurrency=batch_size, name=name)
    if kind == "replay" and arg:
        return ReplayPolicy(record_files(Path(arg)), name=name or spec)
    if kind == "transformers" and arg:

        model_dir = resolve_model(arg)
        if serve != "off":

            if servers is None:
                raise ValueError(f"serve={serve!r} needs an ExitStack that stops the server")
            served = servers.enter_context(ServedModel(str(model_dir), backend=serve, log_dir=log_dir,
                                                       device=device if serve == "transformers" else "auto"))
            return served.policy(temperature=temperature, max_tokens=max_new_tokens, concurrency=batch_size,
                                 name=name or spec)

        cache = {} if cache is None else cache
        shared = {"model": cache["model"], "tokenizer": cache["tokenizer"]} if cache.get("dir") == str(model_dir) else {}
        if not shared:
            cache.clear()
        policy = TransformersPolicy(model_dir=model_dir, max_new_tokens=max_new_tokens, temperature=temperature,
                                    seed=seed, device=device, batch_size=batch_size, name=name or spec, **shared)
        cache.update(dir=str(model_dir), model=policy.model, tokenizer=policy.tokenizer)
        return policy
    raise ValueError(f"unknown policy {spec!r} (use {POLICY_SPECS})")


def is_oracle(policy: str, expert: str) -> bool:
    """True when a component of the condition reads the gold patch: the scripted policy, or the
    reference expert (also inside a noisy wrapper). The protégé alone with expert "none" is not.

    >>> is_oracle("scripted", "none"), is_oracle("transformers:tiny", "reference")
    (True, True)
    >>> is_oracle("transformers:tiny", "noisy:0.3:reference"), is_oracle("transformers:tiny", "none")
    (True, False)
    >>> is_oracle("openai:gpt-4.1", "openai:gpt-4.1")
    False
    """
    inner = expert
    while inner.startswith("noisy:"):
        inner = inner.split(":", 2)[2] if inner.count(":") >= 2 else "reference"
    return policy.partition(":")[0] in ORACLE_POLICIES or inner.partition(":")[0] == "reference"


def require_explicit_oracle(where: str, preset: str, allow_oracle: bool, policy: str = "", expert: str = "") -> None:
    """At `full` scale an ORACLE component (one that reads the gold patch) is never a default: it
    runs only when asked for with ``allow_oracle=True``, and then every record says ORACLE.

    >>> require_explicit_oracle("04 rl", "small", False, expert="reference")  # laptop presets: documented oracles
    >>> require_explicit_oracle("04 rl", "full", False, expert="reference")
    Traceback (most recent call last):
    ...
    ValueError: 04 rl at preset full: expert 'reference' is an ORACLE (it reads the gold patch); set allow_oracle=True to run it knowingly, or use an openai:MODEL expert
    """
    if preset != "full" or allow_oracle or not is_oracle(policy, expert or "none"):
        return
    what = f"expert {expert!r}" if is_oracle("", expert or "none") else f"policy {policy!r}"
    raise ValueError(f"{where} at preset full: {what} is an ORACLE (it reads the gold patch); set "
                     "allow_oracle=True to run it knowingly, or use an openai:MODEL expert")


def make_expert(spec: str, seed: int = 0, base_url: str | None = None, show_gold_patch: bool = False) -> Expert | None:
    """none | reference[:LEVEL] (ORACLE; LEVEL location | description | exact_edit, or several joined
    by "+", one drawn per task; default description) | noisy:P[:INNER] (INNER defaults to
    reference) | openai:MODEL | policy:MODEL (a local transformers model answering as the expert:
    `{run_dir}/03_sft/merged` = the protégé itself). The one expert factory of the CLI and every
    stage; `show_gold_patch` for an openai: expert that writes training data (METHOD.md Phase I).

    >>> make_expert("noisy:0.3", seed=1).inner.name, make_expert("none")
    ('reference-expert(description)', None)
    """
    kind, _, rest = spec.partition(":")
    if spec == "none":
        return None
    if kind == "reference":
        return ReferenceExpert(hint_level=rest or "description", seed=seed)
    if kind == "noisy" and rest:
        p, _, inner = rest.partition(":")
        return NoisyExpert(make_expert(inner or "reference", seed, base_url, show_gold_patch), p=float(p), seed=seed)
    if kind == "openai" and rest:
        return OpenAIExpert(base_url=base_url, model=rest, show_gold_patch=show_gold_patch)
    if kind == "policy" and rest:  # a local model as the expert, e.g. the protégé itself

        return PolicyExpert(TransformersPolicy(resolve_model(rest), max_new_tokens=256, temperature=0.0,
                                               seed=seed, batch_size=1))
    raise ValueError(f"unknown expert {spec!r} (use none, reference[:LEVEL], noisy:P[:INNER], openai:MODEL "
                     "or policy:MODEL)")


def make_judge(spec: str, base_url: str | None = None) -> Judge:
    """heuristic | openai:MODEL.

    >>> make_judge("heuristic").name
    'heuristic-judge'
    """
    if spec == "heuristic":
        return HeuristicJudge()
    kind, _, model = spec.partition(":")
    if kind == "openai" and model:
        return OpenAIJudge(model=model, base_url=base_url)
    raise ValueError(f"unknown judge {spec!r} (use heuristic or openai:MODEL)")
