# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Penalised RL
#
# The SFT protégé (stage 03) now learns from its own episodes. Each optimizer step draws training tasks, runs
# **our agent loop** (the same `protege.agent.loop.run_episodes` used for collection and evaluation) **G times per task**
# with the model being trained, grades every patch in a fresh environment, computes the reward, and updates the
# model.
#
# **Objective.** TRL 1.16 has no `PPOTrainer`, so this is **GRPO-style PPO** with `trl.GRPOTrainer`, which is what the
# paper used: the PPO clipped surrogate with *group-relative* advantages (an episode's reward minus the mean of its
# task's G episodes, over their std), asymmetric clipping of the ratio to [1 − 0.20, 1 + 0.28], no critic, and an
# optional KL penalty `beta` toward the reference (SFT) model.
#
# **One sequence per episode.** A multi-turn episode becomes one training sequence: the first prompt, then every
# generated turn with the observations and expert guidance between them. `env_mask` marks the generated tokens;
# observation and guidance tokens are context only and get no gradient.
#
# **Token protégé** (`interface="token"`): generation stops at `<<collaborate>>` as at an end of turn, the loop
# calls the expert and appends `[Expert]: ...` (notebook 02 shows one episode in both designs); the rest (rewards,
# masks, the loop metric) is unchanged. The
# blog's reward is `reward_preset="simple"` (+1 resolved / −0.1 not, λ_loop·C_loop, λ_collab·C_collab).

# %% tags=["parameters"]
preset = "smoke"  # smoke | small | full
run_dir = "runs/smoke"
model = ""  # default: {run_dir}/03_sft/merged if it exists, else the preset's model
reward_preset = "simple"  # simple | paper
lambda_loop = None  # None: the preset's (simple 0.1 per repeated action, paper 0.5)
lambda_collab = None  # None: the preset's (0.1 per expert call)
overrides = {}  # any RLRunConfig field; "reward_overrides.X" / "agent_overrides.X" set a reward / agent field
interface = None            # how the protégé asks: tool (an ask_expert call) or token (it writes <<collaborate>>); None: tool

# %%
from pathlib import Path

from IPython.display import Image

from protege.core.config import notebook_config
from protege.stages import rl, rl_config

out_dir = Path(run_dir) / "04_rl"
config = notebook_config(rl_config.RLRunConfig, preset, overrides, interface=interface, model=model or rl_config.sft_model(run_dir),
                         reward_preset=reward_preset, lambda_loop=lambda_loop, lambda_collab=lambda_collab)
config

# %% [markdown]
# ## Rewards
#
# `reward_preset = "simple"`: the popular simplified variant (not the paper's):
# $R = R_{task} - \lambda_{loop} C_{loop} - \lambda_{collab} C_{collab}$, with $R_{task}$ = +1 resolved / −0.1 not,
# $C_{loop}$ = actions repeating one of the 5 before them, $C_{collab}$ = expert calls on *failed* tasks.
#
# `reward_preset = "paper"`: the composite of METHOD.md,
# $R = R_{loop} + w_{follow} R_{follow} + g_{loop} g_{follow} R_{other}$ with
# $R_{other} = R_{correct} + w_{sim} R_{sim} + w_{expert} R_{expert}$: $R_{loop}$ penalises long runs of the same base
# command (k1 = 15, k2 = 8, λ = 0.5, floor −10), $R_{sim}$ = −1 for failed patches unlike the gold one, a judge scores
# each expert call for being *warranted* and *followed through*, the gates cut $R_{other}$ when the agent loops or
# ignores advice. Curriculum: loop shaping first, then follow gating, $(w_{expert}, w_{follow}) = (0.3, 2.0)$ and −10
# for never asking. Smoke/small runs use the offline heuristic judge; full runs the expert model.
#
# Every term is logged per step (`steps.csv`), and TRL logs each additive component as `rewards/<name>/mean`.

# %%
result = rl.train(config, out_dir)

# %% [markdown]
# ## Per-step table and training curves
#
# Means over the step's episodes: reward components, resolve rate, $C_{loop}$ and loop rate (a run longer than 10),
# expert calls, steps, rollout throughput (episodes/s, generated tokens/s) and TRL's loss, KL and clip fraction.

# %%
rl.step_table(out_dir)

# %%
Image(filename=str(out_dir / "curves.png"))

# %% [markdown]
# ## Before and after RL on held-out tasks
#
# A quick greedy check on `config.eval_tasks` (stage 05 is the full evaluation): loop rate and resolve rate of
# the starting model and of `04_rl/final`.

# %%
rl.evaluate_before_after(config, out_dir)
