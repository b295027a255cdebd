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
# # 06 · Figures from the recorded results
#
# Every figure here is drawn from the result files the stages wrote (CSV / JSON), never from a
# model: the same files give byte-identical PNGs. Each figure is stamped with the run id and the
# hash of the stage's `config.json`. `python -m protege.app.pipeline figures` redraws all of them
# from `papermill_runs/` alone (a clone without `runs/`).
#
# Figures of one run (each made only when its input exists; stages not run yet are skipped):
#
# | figure | input | what to look at |
# |---|---|---|
# | `02_expert_calls`, `02_tokens_by_role`, `02_lengths` | `02_insert/stats.csv` | the SFT datasets (notebook 02) |
# | `03_sft_loss` | `03_sft/train_log.csv` | train and validation loss of SFT on the protégé's own turns |
# | `04_rl_curves` | `04_rl/steps.csv` | every reward term, resolve / loop rates, expert calls and steps per RL step (paper Figs. 8-10) |
# | `05_pass1` | `05_eval/metrics.csv` | Pass@1 per condition with its bootstrap interval (paper Tables 1-2) |
# | `05_loop_rate` | `05_eval/metrics.csv` | share of trajectories with a run of more than 10 identical commands, base / SFT / SFT+RL (paper Fig. 6) |
# | `05_invocation_ablation` | `05_eval/metrics.csv` | never / every N / random / learned asking: Pass@1 against expert calls (paper Fig. 7) |
# | `05_tokens_by_role` | `05_eval/per_instance.csv` | tokens per task: protégé prompt / completion, expert in / out; expert share (paper Fig. 3) |
# | `05_cost_per_task` | `05_eval/per_instance.csv` | median cost per task (paper Fig. 4) |
# | `05_steps_and_calls` | `05_eval/per_instance.csv` | distribution of steps and expert calls per task |
#
# **ORACLE** marks a condition in which a component reads the gold patch (the reference expert,
# the scripted agent): at `smoke` / `small` scale its numbers say how well the protégé *uses*
# perfect advice, not how good a real expert would be.

# %% tags=["parameters"]
preset = "smoke"          # smoke | small | full (figures only read recorded results)
run_dir = "runs/smoke"      # a run folder, or its record papermill_runs/<run-id>/results (same layout)
run_id = ""                 # names and stamps the figures; default: the run folder's name
figures_dir = ""            # default {run_dir}/figures
sweep_dir = ""              # papermill_runs/<sweep-id>: adds the sweep heatmap and Pareto plot

# %%
from pathlib import Path

import pandas as pd
from IPython.display import display

from protege.stages import figures, figures_sweep

run_id = run_id or Path(run_dir).name
figures_dir = figures_dir or str(Path(run_dir) / "figures")

# %% [markdown]
# The run's figures (the list says which inputs existed):

# %%
made = figures.figures_for_run(run_dir, figures_dir, run_id)
pd.DataFrame({"figure": list(map(str, made))})

# %%
display(*figures.images(made))

# %% [markdown]
# ## A sweep over reward weights
#
# With `sweep_dir` (written by `python -m protege.app.pipeline sweep`), one row per sweep point: its
# parameters and the metrics of the condition it is scored by (`sft+rl+expert` when it ran). The
# heatmap shows the resolve rate over the first two swept parameters; the Pareto plot puts the
# resolve rate against the expert's share of tokens and rings the points no other point beats on
# both.

# %%
sweep_table = figures_sweep.sweep_table(sweep_dir) if sweep_dir else pd.DataFrame()
sweep_table

# %%
sweep_made = figures_sweep.figures_for_sweep(sweep_dir, figures_dir, Path(sweep_dir).name) if sweep_dir else []
display(*figures.images(sweep_made))
