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
# # 05 · Evaluate: Pass@1 with intervals, expert use, loops, cost
#
# Every **condition** runs the same agent loop on the **held-out** tasks (the bundled `test` split
# at `smoke` / `small`; SWE-bench Verified at `full`), once per seed; every patch is graded by the
# task's tests in a fresh environment. Conditions (default list):
#
# | condition | protégé | expert | who decides when to ask |
# |---|---|---|---|
# | `base` | the untrained model | none (no `ask_expert` tool) | - |
# | `base+expert` | the untrained model | the expert | the protégé |
# | `sft+expert` | after SFT on live-collaboration data (`03_sft/merged`) | the expert | the protégé |
# | `sft+rl+expert` | after SFT and RL (`04_rl/final`) | the expert | the protégé |
# | `expert-as-agent` | the expert acting alone | none | - |
# | `ablate-never` / `ablate-every5` / `ablate-random0.2` | best trained model (RL, else SFT) | the expert | a fixed baseline (the protégé's own asks are refused) |
# | `ablate-learned` | best trained model | the expert | the protégé (the same run as its main condition) |
# | `sft-inserted+expert` | after SFT on post-hoc *inserted* calls (`03_sft_inserted/merged`) | the expert | the protégé |
# | `noisy-expert` | best trained model | an expert that misleads with p = 0.3 | the protégé |
#
# **ORACLE components** (rows marked `oracle = 1`): at `smoke` / `small` the expert is the
# `ReferenceExpert`, built from the gold patch, and `expert-as-agent` is the scripted policy,
# which *reads the gold patch*: it is an upper reference, not a model. At `full` both are an
# OpenAI-compatible model that never sees the gold patch.
#
# A condition whose model folder does not exist yet (e.g. RL not run) is **skipped**, with the
# reason in `metrics.csv`. Re-running resumes: finished instances are not run again.
#
# **Out of distribution.** The bundled bugs come from eight mutation kinds, so a protégé may learn
# to invert them. To evaluate on real bugs it never trained on, point `tasks` at a task file of
# SWE-bench rows (e.g. `protege tasks filter SWE-bench_Verified_test.parquet --single-hunk --repos
# pytest-dev/pytest,pallets/flask --out ood.jsonl`), `mirror_template` at local clones
# (`/srv/mirrors/{owner}__{name}`) and `runner` at `swebench-local` (a venv per instance from its
# recipe, no Docker): `overrides = {"tasks": "ood.jsonl", "mirror_template": "...", "runner": "swebench-local"}`.

# %% tags=["parameters"]
preset = "smoke"          # smoke | small | full
run_dir = "runs/smoke"      # pipeline run folder (03_sft/, 04_rl/ ...); this stage writes {run_dir}/05_eval
conditions = []             # empty: the preset's list; names of defaults and/or Condition dicts
seeds = []                  # empty: the preset's seeds (smoke and small [0], full [0, 1, 2])
overrides = {}              # EvalConfig fields, e.g. {"limit": 4, "temperature": 0.0}
interface = None            # how the protégé asks: tool (an ask_expert call) or token (it writes <<collaborate>>); None: tool

# %%
from pathlib import Path

import pandas as pd

from protege.core.config import notebook_config
from protege.stages.compare import load_metrics, resolved_pivot
from protege.stages.evaluate import run_evaluation
from protege.stages.evaluate_config import EvalConfig, conditions_table, resolve_conditions

config = notebook_config(EvalConfig, preset, overrides, conditions=conditions, seeds=seeds, interface=interface)
out = Path(run_dir) / "05_eval"
config

# %% [markdown]
# What will run, what is skipped and why (`run_as`: an identical earlier condition whose runs are reused):

# %%
pd.set_option("display.max_colwidth", 120)
conditions_table(resolve_conditions(config, run_dir))[["policy", "expert", "invocation", "block_policy_asks", "skipped", "run_as", "notes"]]

# %% [markdown]
# Run every condition x seed into `05_eval/<condition>/seed<k>/` (trajectories, SWE-bench
# `preds.jsonl`, `report.json` with the grading), then write `per_instance.csv` and `metrics.csv`.

# %%
result = run_evaluation(config, run_dir, out)

# %% [markdown]
# ## Metrics, one row per condition
#
# * `pass1_mean`: the mean over instances of each instance's resolve rate across seeds (= the mean
#   over seeds of per-seed Pass@1). `pass1_lo` / `pass1_hi`: a **95% percentile bootstrap over
#   instances** (2000 resamples of the tasks with replacement, each carrying its mean over seeds).
#   It measures how much the score depends on which tasks were drawn; with 16 tasks it is wide.
#   It collapses to a point when every instance has the same rate (e.g. the oracle's 100%).
# * `expert_calls_per_task`; `expert_token_share`: expert tokens / all tokens, summed over
#   trajectories (paper: ~11%); `loop_rate`: share of trajectories with a run of more than 10
#   identical base commands (paper: 31% after SFT, 0.8% after RL; at `small` an episode ends at its
#   11th identical step, `repeat_limit`, where this metric has already fired); `steps_per_task`;
#   `cost_per_task` (USD; the local protégé is free, the expert priced as a Sonnet-class model);
#   `format_error_rate`: malformed actions per step.
# * `oracle`: 1 when a component reads the gold patch (see above).

# %%
metrics = load_metrics(out)
metrics

# %% [markdown]
# Per instance: the resolve rate over seeds, one column per condition that ran.

# %%
resolved_pivot(out)

# %% [markdown]
# **Selectivity, by tier.** The bundled tasks come in tiers by how much the issue reveals:
# `pinpointed` issues name the file, line and what is wrong (the protégé can fix them alone),
# `easy` / `medium` / `hard` reveal less and less. A selective protégé asks the expert where the issue
# leaves the bug unknown and works alone where it can: compare `expert_calls_per_task` across tiers.
# Pass@1 per mutation kind is in `metrics_by_mutation.csv` (the bugs come from a fixed set of
# mutation kinds, so a protégé may learn to invert them rather than to debug).

# %%
pd.read_csv(out / "metrics_by_tier.csv").pivot(index="condition", columns="group",
                                                values=["pass1_mean", "expert_calls_per_task"]).round(2)

# %% [markdown]
# ## Paired comparisons: the study's questions
#
# Every condition ran on the same tasks, so two of them are best compared task by task: `diff` is
# B - A with a 95% bootstrap interval that resamples tasks and keeps each task's pair together
# (much narrower than two separate intervals, which overlap even when B wins task after task);
# `b_better` / `a_better` count the tasks where one did better, and `p_sign` is the exact sign test
# on them (McNemar's test for Pass@1). Any two conditions, also across runs or sweep points:
# `protege compare A/05_eval B/05_eval --a-condition X --b-condition Y` (per tier by default).

# %%
pd.read_csv(out / "paired.csv").round(3)

# %% [markdown]
# Every episode's counts (tokens by role, expert calls, exit status):

# %%
pd.read_csv(out / "per_instance.csv").head(20)

# %% [markdown]
# ## Watch the episodes
#
# `protege view` writes a self-contained HTML report of every condition's episodes (opens from
# disk): an index you can sort and filter, and each conversation with the expert's guidance
# highlighted (ORACLE badge when the expert read the gold patch), format errors and loop runs
# marked, the final patch as a diff and its grading.

# %%
from IPython.display import Markdown

from protege.app.viewer import write_report

report = write_report(out)
Markdown(f"Episode report: [{report}]({report.resolve().as_uri()})")
