"""The terms of the paper's composite reward (METHOD.md, Phase II): loop runs, patch similarity,
per-call judge scores (warranted, followed through), back-to-back calls, the gates and the
curriculum. Pure, doctested functions."""

from __future__ import annotations

import difflib

from protege.core.loop_detection import loop_penalty_paper, run_lengths
from protege.models.judges import (
    ASK,
)
from protege.stages.reward_config import RewardConfig


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
