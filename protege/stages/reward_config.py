"""The reward's settings: the two presets (`simple`, the popular variant; `paper`, METHOD.md's
composite) as one table, and every weight, threshold and gate value."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from protege.core.config import resolve

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
    # R_task of an unresolved episode that ended on consecutive format errors (None: r_unresolved). With the
    # loop penalty alone, quitting that way costs less than a loop: the pilot's penalised protégé traded
    # loops for format-error exits (docs/RESULTS.md "The RL half"); a lower value closes that way out.
    r_gave_up: float | None = None
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
