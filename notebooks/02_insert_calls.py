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
# # 02 · Insert expert calls, and build the SFT datasets
#
# From the **expert-only** trajectories of notebook 01, insert `ask_expert` turns *post hoc*:
#
# * `stall`: where the trajectory is stuck (a test still failing after an edit, an edit that did
#   not apply, the loop heuristic firing; else before the first edit after long exploration);
# * `every_n`: before every n-th step;
# * `random`: before each step with probability p.
#
# Each inserted question is written from what the trajectory did *before* the call; the guidance
# is written by the expert from the trajectory's *own later edits* (hindsight), so the advice
# agrees with what the trajectory does next. METHOD.md reports this as weaker than live
# collaboration; the datasets keep both sources apart so notebook 03 can train on either.
#
# Datasets are in TRL's conversational tool-calling format (`messages` with `tool_calls`, a
# `tools` column), saved as JSONL and as a Hugging Face `DatasetDict`, split by instance into
# train / validation. Test-split packages are refused.
#
# **Two ways of asking** (`interface`, set in notebook 01 and read from the trajectories here). The
# paper's protégé calls a tool; the blog's design (METHOD.md) writes a token, and the loop answers:
#
# | interface | the protégé writes | it reads back |
# |---|---|---|
# | `tool` | `<tool_call>{"name": "ask_expert", "arguments": {"question": "..."}}</tool_call>` | `<expert_guidance>...</expert_guidance>` |
# | `token` | `... question ... <<collaborate>>` | `[Expert]: ...` |
#
# Inserted calls take the form of the run's interface (`protege.agent.loop.render_ask`).

# %% tags=["parameters"]
preset = "smoke"          # smoke | small | full
run_dir = "runs/smoke"      # reads {run_dir}/01_collect, writes {run_dir}/02_insert
figures_dir = ""            # default {run_dir}/figures
run_id = ""                 # names the figures; default: the run folder's name
overrides = {}              # DataConfig fields, e.g. {"strategies": ["every_n"], "every_n": 3}

# %%
from pathlib import Path

import pandas as pd
from IPython.display import Image, display

from protege.core.config import notebook_config
from protege.stages.insert_datasets import (
    DataConfig,
    dataset_figures,
    dataset_statistics,
    insertion_examples,
    interface_example,
    run_insertion,
)

config = notebook_config(DataConfig, preset, overrides)
out = Path(run_dir) / "02_insert"
config

# %%
result = run_insertion(config, Path(run_dir) / "01_collect", out)
pd.DataFrame(result["insertion"]).set_index("strategy")

# %% [markdown]
# Inserted calls next to the trajectory's own next actions: the guidance should point where the trajectory goes.

# %%
pd.set_option("display.max_colwidth", 200)
insertion_examples(out / f"inserted_{config.strategies[0]}.jsonl", n=4)

# %% [markdown]
# **One episode, both designs.** A collected episode around its first expert call, written as each interface
# writes it: the same question and the same reply, asked by a tool call or by the token. Everything else
# in an episode (the tool calls, observations, masks, rewards) is the same under either design.

# %%
interface_example(Path(run_dir) / "01_collect")

# %% [markdown]
# The datasets written (rows by split and source):

# %%
pd.DataFrame(result["datasets"]).T[["n_train", "n_validation", "sources", "held_out_packages"]]

# %% [markdown]
# Statistics: expert calls per trajectory, mean tokens by role (counted with the preset's tokenizer) and the rendered length against the SFT `max_length` (notebook 03 splits longer conversations into windows; a turn that fits in no window is counted as dropped, never silently lost).

# %%
stats, table = dataset_statistics(config, out)
table.T

# %%
figs = dataset_figures(out, figures_dir or Path(run_dir) / "figures", run_id or Path(run_dir).name, config.max_length)
for f in figs:
    display(Image(filename=str(f)))
