"""RL rewards of one finished episode: pure, doctested functions, one per term.

Two presets (`RewardConfig.preset`, the table REWARD_PRESETS):

* ``simple`` -- the popular simplified variant (METHOD.md, labelled [popular]; the paper does
  NOT support it, users ask for it to sweep lambda)::

      R = R_task - lambda_loop * C_loop - lambda_collab * C_collab

  R_task = +1 resolved / -0.1 not; C_loop = actions repeating one of the 5 before them
  (`protege.core.loop_detection.repeats_in_window`); C_collab = the policy's ask_expert actions, counted
  only on failed tasks (``charge_every_call=True``: on every task).

* ``paper`` -- the composite reward of METHOD.md (Phase II)::

      R = R_loop + w_follow * R_follow + g_loop * g_follow * R_other + R_no_call
      R_other = R_correct + w_sim * R_sim + w_expert * R_expert

  R_loop from runs of identical base commands (`protege.core.loop_detection.loop_penalty_paper`: k1, k2,
  lambda, floor); R_sim = -1 when an unresolved patch's changed lines are less than 0.5
  similar to the gold patch's; per expert call a judge gives warranted u and followed-through
  f in [0, 1]: R_expert = mean phi(u) + R_b2b, R_follow = mean psi(f); the gates g_loop,
  g_follow in {0, 0.5, 1} cut R_other when looping is bad or advice is not followed.
  Two-stage curriculum: stage I shapes loops only (no follow term or gate, w_expert = 0, no
  no-call penalty); stage II adds follow gating, (w_expert, w_follow) = (0.3, 2.0),
  (tau_follow, p_follow_low) = (0.5, -2.0) and -10 when no expert call is made.
  Values the paper does not give are chosen here and marked "chosen" in `RewardConfig`.

`reward_terms` returns every raw term and the additive *components* whose sum is the total;
`trl_reward_functions` turns the components into TRL reward functions
``(completions, **kwargs) -> list[float]`` that read ``reward_<component>`` from kwargs (the
rollout function computes the terms, because grading and judging need the environment), so
TRL logs each component as ``rewards/<component>/mean``.

The judges that score expert calls (warranted u, followed-through f) are in `protege.models.judges`,
apart from these pure terms: `HeuristicJudge` offline, `OpenAIJudge` at full scale.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from protege.core.loop_detection import repeats_in_window, run_lengths
from protege.models.judges import (
    ASK,
    Judge,
    JudgeScore,
    call_views,
)
from protege.stages.reward_config import RewardConfig, components
from protege.stages.reward_terms_paper import (
    back_to_back_count,
    back_to_back_reward,
    expert_reward,
    follow_gate,
    follow_reward,
    loop_gate,
    loop_reward,
    patch_similarity,
    similarity_reward,
)

# ------------------------------------------------------------------------- simple preset


def task_reward(resolved: bool, r_resolved: float = 1.0, r_unresolved: float = -0.1) -> float:
    """R_task of the simple preset.

    >>> task_reward(True), task_reward(False)
    (1.0, -0.1)
    """
    return float(r_resolved if resolved else r_unresolved)


def loop_count(actions: list[str], window: int = 5) -> int:
    """C_loop: actions repeating (whitespace-normalised) one of the `window` before them.

    >>> loop_count(["ls", "pytest", "pytest", "cat a", "pytest"])
    2
    >>> loop_count([])
    0
    """
    return repeats_in_window(actions, window)


def expert_call_count(actions: list[str]) -> int:
    """The policy's ask_expert actions (answered, failed or refused past the cap alike).

    >>> expert_call_count(["ls", "ask_expert", "cat a", "ask_expert"])
    2
    """
    return sum(a == ASK for a in actions)


def collab_count(n_calls: int, resolved: bool, charge_every_call: bool = False) -> int:
    """C_collab: expert calls charged; by default only on failed tasks.

    >>> collab_count(3, resolved=True), collab_count(3, resolved=False), collab_count(3, True, charge_every_call=True)
    (0, 3, 3)
    """
    return n_calls if (charge_every_call or not resolved) else 0


# -------------------------------------------------------------------------- paper preset


# ------------------------------------------------------------------------ all terms


@dataclass
class EpisodeFacts:
    """What the reward of one finished episode depends on (built by `episode_facts`)."""

    actions: list[str]  # one-line action summaries, in order (format errors left out)
    resolved: bool
    patch: str = ""
    gold_patch: str = ""
    judge: list[JudgeScore] = field(default_factory=list)  # one per answered expert call
    # What C_loop counts repeats of: every step with its arguments (Trajectory.action_keys); None = `actions`
    repeat_keys: list[str] | None = None
    exit_status: str = ""  # how the episode ended (Trajectory.exit_status): "format_errors" = gave up


def episode_facts(traj: Any, resolved: bool, gold_patch: str = "", judge: Judge | None = None,
                  problem_statement: str = "") -> EpisodeFacts:
    """Facts of a finished trajectory; the judge (if any) scores its answered expert calls."""
    scores = judge.score(call_views(traj), problem_statement) if judge is not None else []
    return EpisodeFacts(traj.actions, bool(resolved), traj.patch or "", gold_patch or "", scores, traj.action_keys,
                        traj.exit_status or "")


def unresolved_reward(facts: EpisodeFacts, config: RewardConfig) -> float:
    """R_task of an unresolved episode in the simple preset: r_gave_up (when set) for one that
    ended on consecutive format errors, r_unresolved otherwise.

    >>> cfg = RewardConfig.preset("simple", r_gave_up=-0.5)
    >>> unresolved_reward(EpisodeFacts([], False, exit_status="format_errors"), cfg)
    -0.5
    >>> unresolved_reward(EpisodeFacts([], False, exit_status="step_limit"), cfg)
    -0.1
    >>> unresolved_reward(EpisodeFacts([], False, exit_status="format_errors"), RewardConfig.preset("simple"))
    -0.1
    """
    if facts.exit_status == "format_errors" and config.r_gave_up is not None:
        return float(config.r_gave_up)
    return float(config.r_unresolved)


def reward_terms(facts: EpisodeFacts, config: RewardConfig, stage: int = 2) -> dict[str, float]:
    """Every named term of one episode's reward: raw terms, the additive components
    ``reward_<component>`` (see `components`) and ``reward_total``, their sum.

    >>> cfg = RewardConfig.preset("simple", lambda_loop=0.1, lambda_collab=0.05)
    >>> t = reward_terms(EpisodeFacts(["ls", "ls", "ask_expert", "ask_expert"], resolved=False), cfg)
    >>> t["c_loop"], t["c_collab"], t["reward_task"], round(t["reward_total"], 3)
    (2.0, 2.0, -0.1, -0.4)
    >>> paper = RewardConfig.preset("paper")
    >>> facts = EpisodeFacts(["ls", "ask_expert", "cat a"], True, judge=[JudgeScore(1.0, 1.0)])
    >>> t = reward_terms(facts, paper, stage=2)
    >>> t["r_correct"], t["r_expert"], t["r_follow"], t["reward_total"]
    (1.0, 1.0, 1.0, 3.3)
    >>> reward_terms(EpisodeFacts(["ls"], True), paper, stage=2)["reward_no_call"]
    -10.0
    """
    actions = facts.actions
    n_calls = expert_call_count(actions)
    c_loop = loop_count(facts.repeat_keys if facts.repeat_keys is not None else actions, config.loop_window)
    runs = run_lengths(actions)
    terms: dict[str, float] = {
        "resolved": float(facts.resolved), "n_actions": float(len(actions)), "n_calls": float(n_calls),
        "c_loop": float(c_loop), "max_run": float(max(runs, default=0)),
    }
    if config.preset_name == "simple":
        c_collab = collab_count(n_calls, facts.resolved, config.charge_every_call)
        terms.update(c_collab=float(c_collab),
                     reward_task=task_reward(facts.resolved, config.r_resolved, unresolved_reward(facts, config)),
                     reward_loop=0.0 - config.lambda_loop * c_loop,
                     reward_collab=0.0 - config.lambda_collab * c_collab)
    else:
        stage2 = stage >= 2
        warranted = [s.warranted for s in facts.judge]
        followed = [s.followed for s in facts.judge]
        r_loop = loop_reward(actions, config.loop_k1, config.loop_k2, config.lambda_loop, config.loop_floor)
        similarity = patch_similarity(facts.patch, facts.gold_patch) if not facts.resolved else 1.0
        r_sim = similarity_reward(facts.resolved, similarity, config.sim_threshold)
        n_b2b = back_to_back_count(actions)
        r_expert = expert_reward(warranted, n_b2b, config)
        r_follow = follow_reward(followed, config.tau_follow, config.p_follow_low)
        w_expert = config.w_expert if stage2 else config.stage1_w_expert
        w_follow = config.w_follow if stage2 else config.stage1_w_follow
        g_loop = loop_gate(r_loop, config.gate_loop_zero)
        g_follow = follow_gate(followed, config.gate_follow_full, config.gate_follow_half) if stage2 else 1.0
        r_correct = float(facts.resolved)
        r_other = r_correct + config.w_sim * r_sim + w_expert * r_expert
        terms.update(stage=float(2 if stage2 else 1), r_loop=r_loop, r_correct=r_correct, similarity=similarity,
                     r_sim=r_sim, n_b2b=float(n_b2b), r_b2b=back_to_back_reward(n_b2b, config.lambda_b2b,
                                                                                config.b2b_floor),
                     r_expert=r_expert, r_follow=r_follow, g_loop=g_loop, g_follow=g_follow, r_other=r_other,
                     mean_warranted=sum(warranted) / len(warranted) if warranted else 0.0,
                     mean_followed=sum(followed) / len(followed) if followed else 0.0,
                     reward_loop=r_loop, reward_follow=w_follow * r_follow,
                     reward_gated_other=g_loop * g_follow * r_other,
                     reward_no_call=config.no_call_penalty if (stage2 and n_calls == 0) else 0.0)
    terms["reward_total"] = sum(terms[f"reward_{c}"] for c in components(config.preset_name))
    return terms


# ------------------------------------------------------------------ TRL reward functions


def component_reward(name: str) -> Callable[..., list[float]]:
    """A TRL reward function returning the precomputed ``reward_<name>`` column.

    >>> f = component_reward("loop")
    >>> f.__name__, f(["a", "b"], reward_loop=[-0.2, 0.0])
    ('loop', [-0.2, 0.0])
    """
    key = f"reward_{name}"

    def reward(completions: list, **kwargs: Any) -> list[float]:
        if key not in kwargs:
            raise KeyError(f"reward function {name!r} needs the column {key!r} from the rollout function")
        return [float(v) for v in kwargs[key]]

    reward.__name__ = reward.__qualname__ = name
    reward.__doc__ = f"The {name!r} component of the episode reward, computed by the rollout (column {key!r})."
    return reward


def total_reward(completions: list, **kwargs: Any) -> list[float]:
    """The whole episode reward (column ``reward_total``), for a single-function setup.

    >>> total_reward(["a"], reward_total=[1.5])
    [1.5]
    """
    return [float(v) for v in kwargs["reward_total"]]


def trl_reward_functions(config: RewardConfig) -> list[Callable[..., list[float]]]:
    """One TRL reward function per component of the preset; with unit weights their sum is
    `reward_terms(...)["reward_total"]`.

    >>> [f.__name__ for f in trl_reward_functions(RewardConfig.preset("paper"))]
    ['loop', 'follow', 'gated_other', 'no_call']
    """
    return [component_reward(c) for c in components(config.preset_name)]
