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

import difflib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from protege.core.config import resolve
from protege.core.loop_detection import loop_penalty_paper, repeats_in_window, run_lengths
from protege.models.judges import (
    ASK,
    Judge,
    JudgeScore,
    call_views,
)

# The two reward variants and the values that differ between them (every other field is shared).
REWARD_PRESETS: dict[str, dict[str, Any]] = {
    "simple": {"lambda_loop": 0.1, "lambda_collab": 0.05},  # per repeated action; per expert call (the blog's)
    "paper": {"lambda_loop": 0.5, "lambda_collab": 0.05},  # per excess run step (METHOD.md); simple's collab
}


@dataclass
class RewardConfig:
    """Reward weights. Build with `RewardConfig.preset(name, **overrides)`; a field set to
    None takes the preset's value."""

    preset_name: str = "simple"  # "simple" (popular variant) | "paper" (METHOD.md composite)
    # --- both presets
    lambda_loop: float = 0.1  # simple: per repeated action (0.1); paper: per excess run step (0.5)
    # --- simple preset
    r_resolved: float = 1.0  # R_task when the tests pass
    r_unresolved: float = -0.1  # R_task otherwise
    loop_window: int = 5  # C_loop: an action repeating one of this many before it
    lambda_collab: float = 0.05  # per expert call
    charge_every_call: bool = False  # False: C_collab counts calls on failed tasks only
    # --- paper preset: loops
    loop_k1: int = 15  # allowance of the longest run of identical base commands
    loop_k2: int = 8  # allowance of every other run
    loop_floor: float = -10.0  # c_loop, the lowest R_loop
    # --- paper preset: correctness and similarity
    w_sim: float = 1.0  # chosen: weight of R_sim in R_other
    sim_threshold: float = 0.5  # R_sim = -1 below this patch/gold similarity (unresolved only)
    # --- paper preset: expert calls (judge scores u = warranted, f = followed through)
    tau: float = 0.5  # chosen: phi(u) = u if u >= tau else p_low
    p_low: float = -0.5  # chosen: phi of an unwarranted call (<= 0)
    lambda_b2b: float = 0.5  # chosen: per back-to-back call (an ask right after an ask)
    b2b_floor: float = -1.0  # R_b2b >= this
    w_expert: float = 0.3  # stage II weight of R_expert
    w_follow: float = 2.0  # stage II weight of R_follow
    tau_follow: float = 0.5  # psi(f) = f if f >= tau_follow else p_follow_low
    p_follow_low: float = -2.0
    no_call_penalty: float = -10.0  # stage II: added when the policy made no expert call
    stage1_w_expert: float = 0.0  # chosen: stage I weight of R_expert ("loop shaping only")
    stage1_w_follow: float = 0.0  # chosen: stage I weight of R_follow
    # --- paper preset: gates (chosen: the paper gives no thresholds)
    gate_loop_zero: float = -5.0  # g_loop = 1 if R_loop == 0, 0.5 if R_loop > this, else 0
    gate_follow_full: float = 0.5  # g_follow = 1 if mean f >= this (or no calls) ...
    gate_follow_half: float = 0.25  # ... 0.5 if mean f >= this, else 0
    # --- paper preset: curriculum
    curriculum: bool = True  # False: stage II from the first step
    stage2_start: float = 0.5  # stage II from this fraction of the training steps (paper: step 81 of 160)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> RewardConfig:
        """The named reward preset (REWARD_PRESETS) with field overrides (protege.core.config.resolve).

        >>> RewardConfig.preset("simple").lambda_loop, RewardConfig.preset("paper").lambda_loop
        (0.1, 0.5)
        >>> RewardConfig.preset("paper", lambda_loop=None, w_sim=0.5).w_sim
        0.5
        """
        return resolve(cls, REWARD_PRESETS, name, overrides, preset_name=name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def components(preset: str) -> tuple[str, ...]:
    """The additive components of a preset's total reward (one TRL reward function each).

    >>> components("simple"), components("paper")
    (('task', 'loop', 'collab'), ('loop', 'follow', 'gated_other', 'no_call'))
    """
    return ("task", "loop", "collab") if preset == "simple" else ("loop", "follow", "gated_other", "no_call")


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


def loop_reward(actions: list[str], k1: int = 15, k2: int = 8, lam: float = 0.5, floor: float = -10.0) -> float:
    """R_loop of the paper: runs of identical base commands beyond k1 (longest) / k2 (others).

    >>> loop_reward(["pytest -q"] * 16)
    -1.0
    >>> loop_reward(["ls", "cat a", "pytest"])
    0.0
    """
    return loop_penalty_paper(run_lengths(actions), k1=k1, k2=k2, lam=lam, floor=floor)


def changed_lines(patch: str) -> str:
    """The added and removed lines of a unified diff (headers and context left out), so that
    similarity compares what a patch changes, not its index hashes.

    >>> changed_lines("diff --git a/m.py b/m.py\\nindex 1..2\\n--- a/m.py\\n+++ b/m.py\\n"
    ...               "@@ -1 +1 @@\\n-x = 1\\n+x = 2\\n")
    '-x = 1\\n+x = 2'
    """
    keep = [ln for ln in patch.splitlines()
            if ln[:1] in "+-" and not ln.startswith(("+++ ", "--- ")) and ln not in ("+++", "---")]
    return "\n".join(keep)


def patch_similarity(patch: str, gold: str, max_chars: int = 20_000) -> float:
    """Similarity in [0, 1] of the changed lines of two patches (difflib ratio); 0 when either
    is empty.

    >>> gold = "--- a/m.py\\n+++ b/m.py\\n@@ -1 +1 @@\\n-return a - b\\n+return a + b\\n"
    >>> patch_similarity(gold, gold), patch_similarity("", gold)
    (1.0, 0.0)
    >>> round(patch_similarity(gold.replace("a + b", "b + a"), gold), 2)
    0.93
    """
    a, b = changed_lines(patch)[:max_chars], changed_lines(gold)[:max_chars]
    if not a or not b:
        return 0.0
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def similarity_reward(resolved: bool, similarity: float, threshold: float = 0.5) -> float:
    """R_sim in {-1, 0}: -1 for an unresolved patch less than `threshold` similar to the gold.

    >>> similarity_reward(False, 0.2), similarity_reward(False, 0.7), similarity_reward(True, 0.0)
    (-1.0, 0.0, 0.0)
    """
    return -1.0 if (not resolved and similarity < threshold) else 0.0


def phi(u: float, tau: float = 0.5, p_low: float = -0.5) -> float:
    """Score of one call's warranted-ness: u if u >= tau else p_low.

    >>> phi(0.8), phi(0.2)
    (0.8, -0.5)
    """
    return float(u) if u >= tau else float(p_low)


def psi(f: float, tau_follow: float = 0.5, p_follow_low: float = -2.0) -> float:
    """Score of one call's follow-through: f if f >= tau_follow else p_follow_low.

    >>> psi(1.0), psi(0.0)
    (1.0, -2.0)
    """
    return float(f) if f >= tau_follow else float(p_follow_low)


def back_to_back_count(actions: list[str]) -> int:
    """Expert calls made right after another expert call.

    >>> back_to_back_count(["ls", "ask_expert", "ask_expert", "ask_expert", "cat a", "ask_expert"])
    2
    """
    return sum(a == ASK and i > 0 and actions[i - 1] == ASK for i, a in enumerate(actions))


def back_to_back_reward(n_b2b: int, lam: float = 0.5, floor: float = -1.0) -> float:
    """R_b2b = max(floor, -lam * n_b2b).

    >>> back_to_back_reward(0), back_to_back_reward(1), back_to_back_reward(5)
    (0.0, -0.5, -1.0)
    """
    return max(floor, -lam * n_b2b) if n_b2b else 0.0


def expert_reward(warranted: list[float], n_b2b: int, config: RewardConfig) -> float:
    """R_expert = mean phi(u_i) + R_b2b (0 without calls).

    >>> expert_reward([1.0, 0.0], 1, RewardConfig.preset("paper"))
    -0.25
    >>> expert_reward([], 0, RewardConfig.preset("paper"))
    0.0
    """
    mean_phi = sum(phi(u, config.tau, config.p_low) for u in warranted) / len(warranted) if warranted else 0.0
    return mean_phi + back_to_back_reward(n_b2b, config.lambda_b2b, config.b2b_floor)


def follow_reward(followed: list[float], tau_follow: float = 0.5, p_follow_low: float = -2.0) -> float:
    """R_follow = mean psi(f_i) (0 without calls).

    >>> follow_reward([1.0, 0.0]), follow_reward([])
    (-0.5, 0.0)
    """
    if not followed:
        return 0.0
    return sum(psi(f, tau_follow, p_follow_low) for f in followed) / len(followed)


def loop_gate(r_loop: float, zero_below: float = -5.0) -> float:
    """g_loop in {0, 0.5, 1}: 1 without excess looping, 0.5 for mild, 0 for severe.

    >>> loop_gate(0.0), loop_gate(-1.5), loop_gate(-5.0)
    (1.0, 0.5, 0.0)
    """
    if r_loop >= 0:
        return 1.0
    return 0.5 if r_loop > zero_below else 0.0


def follow_gate(followed: list[float], full_at: float = 0.5, half_at: float = 0.25) -> float:
    """g_follow in {0, 0.5, 1} from the mean follow-through of the episode's calls (1 without calls).

    >>> follow_gate([]), follow_gate([1.0, 0.5]), follow_gate([0.5, 0.0]), follow_gate([0.0])
    (1.0, 1.0, 0.5, 0.0)
    """
    if not followed:
        return 1.0
    mean = sum(followed) / len(followed)
    return 1.0 if mean >= full_at else 0.5 if mean >= half_at else 0.0


def curriculum_stage(step: int, total_steps: int, config: RewardConfig) -> int:
    """Stage 1 or 2 of the paper's curriculum for a 1-based training step.

    >>> cfg = RewardConfig.preset("paper")
    >>> curriculum_stage(80, 160, cfg), curriculum_stage(81, 160, cfg)
    (1, 2)
    >>> curriculum_stage(1, 160, RewardConfig.preset("paper", curriculum=False))
    2
    """
    if config.preset_name != "paper" or not config.curriculum:
        return 2
    return 2 if step > config.stage2_start * total_steps else 1


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


def episode_facts(traj: Any, resolved: bool, gold_patch: str = "", judge: Judge | None = None,
                  problem_statement: str = "") -> EpisodeFacts:
    """Facts of a finished trajectory; the judge (if any) scores its answered expert calls."""
    scores = judge.score(call_views(traj), problem_statement) if judge is not None else []
    return EpisodeFacts(traj.actions, bool(resolved), traj.patch or "", gold_patch or "", scores, traj.action_keys)


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
                     reward_task=task_reward(facts.resolved, config.r_resolved, config.r_unresolved),
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
