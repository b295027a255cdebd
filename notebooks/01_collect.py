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
# # 01 · Collect trajectories with live expert calls
#
# A **demonstrator** solves training tasks with the `ask_expert` tool switched on; every patch is
# graded by the repository's tests and only **resolved** trajectories are kept (rejection
# sampling). A second collection with the tool **switched off** gives *expert-only* trajectories:
# the input of notebook 02, which inserts expert calls after the fact.
#
# * `smoke` / `small`: the demonstrator is the **ORACLE** `ReferenceDemonstrator`. It reads the
#   gold patch (so its success says nothing about any model) and acts like an agent that explores,
#   reproduces the failure, sometimes tries a wrong fix, asks the expert when stuck, fixes, re-tests
#   and submits. The expert is the **ORACLE** `ReferenceExpert`. Every kept row says
#   `"oracle_demonstrator": true`.
# * `full`: any OpenAI-compatible model is the demonstrator, and the expert also sees the gold
#   patch, told never to reveal it verbatim (METHOD.md, Phase I).
#
# Test-split tasks are refused: they are held out for evaluation.

# %% tags=["parameters"]
preset = "smoke"          # smoke | small | full
run_dir = "runs/smoke"      # this pipeline run's folder; this stage writes {run_dir}/01_collect
overrides = {}              # CollectConfig fields, e.g. {"limit": 20}
interface = None            # how the protégé asks: tool (an ask_expert call) or token (it writes <<collaborate>>); None: tool

# %%
from pathlib import Path

import pandas as pd

from protege.core.config import notebook_config
from protege.stages.collect import CollectConfig, run_collection, steps_table

config = notebook_config(CollectConfig, preset, overrides, interface=interface)
config

# %% [markdown]
# Run both collections (resumable: finished instances are skipped on a re-run).

# %%
out = Path(run_dir) / "01_collect"
summary = pd.DataFrame(run_collection(config, out)).set_index("collection")
summary

# %% [markdown]
# One kept live trajectory, step by step (note the `ask_expert` step and what follows it):

# %%
steps_table(out / "live" / "kept.jsonl", index=0)
