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
# # 03 · Supervised fine-tuning (SFT) of the protégé
#
# Phase I of SWE-Protégé: the small model imitates resolved, expert-augmented trajectories
# (notebook 02's datasets). Each row is rendered **exactly as the agent loop shows it to the policy**
# (`protege.stages.dataset.agent_messages` + the tokenizer's chat template with the tool schemas), so the
# model trains on the token sequences it will see at inference.
#
# **Loss only on the protégé's own turns.** Its reasoning, its `<tool_call>` and the end-of-turn
# token (so it learns to stop) carry loss; the system prompt, the task, tool observations, expert
# guidance and context notes are masked (label -100). The turn boundaries come from rendering
# prefixes of the conversation with the chat template, so any template works.
#
# **The token interface.** When the data holds `<<collaborate>>` (notebook 01 with `interface="token"`),
# it becomes one added token of the tokenizer before tokenising (`protege.models.engine.add_collaborate_token`):
# its embedding row starts at the mean of "ask", "help", "expert", ... and, under LoRA, trains in full
# beside the adapters (peft's trainable tokens); the merged model and its tokenizer keep it. The token is
# part of the protégé's turn, so it carries loss; the `[Expert]:` reply is context only (notebook 02 shows one
# episode in both designs). Under `tool` the `ask_expert` call is ordinary tool-call text: nothing is added.

# %% tags=["parameters"]
preset = "smoke"          # smoke (tiny model) | small (SmolLM2-135M, CPU) | full (Qwen2.5-Coder-7B, GPU)
run_dir = "runs/smoke"      # reads {run_dir}/02_insert/datasets/{data}, writes {run_dir}/03_sft
data = ""                   # which dataset of notebook 02; empty: the preset default (SFTRunConfig.dataset)
overrides = {}              # SFTRunConfig fields, e.g. {"mode": "qlora", "max_steps": 20}
out_name = "03_sft"         # the model's folder in run_dir
ablation_data = "auto"      # data ablation: a second model on this dataset into {run_dir}/03_sft_inserted
                            # ("auto": inserted-stall at smoke and full, none at small; "" = none)

# %%
from pathlib import Path

import pandas as pd
from IPython.display import Image, display

from protege.core.config import notebook_config
from protege.stages.sft import dry_run, mask_preview, metrics_table, train
from protege.stages.sft_config import SFTRunConfig

config = notebook_config(SFTRunConfig, preset, overrides)
data_dir = Path(run_dir) / "02_insert" / "datasets" / (data or config.dataset)
out = Path(run_dir) / out_name
pd.Series(config.to_dict(), name=f"config {config.hash()}").to_frame()

# %% [markdown]
# Which text carries loss, in the first window of one training conversation (`loss = True`:
# the protégé's turns; everything else is context):

# %%
pd.set_option("display.max_colwidth", 120)
mask_preview(config, data_dir, index=0)

# %% [markdown]
# **Long conversations: the window policy.** A conversation longer than `max_length` tokens is
# split into windows, each shaped exactly like what the agent's `context_view` shows at inference
# when the history is too long: system prompt + task, the note *"[N earlier messages left out to
# fit the context]"*, every expert guidance given so far, then the most recent messages. Every
# protégé turn is trained in exactly one window. A turn that does not fit even with its minimal
# context (the latest exchange) is **counted** as dropped, never silently lost; `long_policy="drop"`
# leaves long conversations out whole, `"error"` refuses them.
#
# The resolved plan before any weight is loaded (TRL `SFTConfig`, LoRA / quantisation configs and
# the windows the data makes):

# %%
plan = dry_run(config, data_dir)
pd.Series(plan["data"], name="train split").to_frame()

# %% [markdown]
# **Modes** (one config field, `mode`): `lora` trains low-rank adapters on every linear layer;
# `qlora` does the same on a 4-bit NF4-quantised base (it runs on CPU here, slowly); `full` trains
# every weight (what the paper did, at 32k context). LoRA / QLoRA adapters are merged into a full,
# non-quantised model in `03_sft/merged/`, which notebook 04 and 05 load as the policy.
# Training resumes from the last checkpoint in `03_sft/checkpoints/` if one is there.

# %%
metrics = train(config, data_dir, out)

# %% [markdown]
# Counts and metrics (`train.*` / `validation.*`: what tokenisation made of each split;
# `throughput_tokens_per_s`: every input token of the windows seen, over the training wall time):

# %%
metrics_table(out)

# %%
display(Image(filename=str(out / "loss.png")))

# %% [markdown]
# **Data ablation.** The paper found post-hoc inserted calls weaker than live collaboration;
# to let notebook 05 compare them (`sft-inserted+expert`), the same config trains a second model on
# the inserted-calls dataset into `03_sft_inserted/`.

# %%
from protege.stages.sft_config import ablation_dataset

ablation = ablation_dataset(preset, ablation_data)
if ablation:
    ablation_metrics = train(config, Path(run_dir) / "02_insert" / "datasets" / ablation,
                             Path(run_dir) / "03_sft_inserted")
    display(metrics_table(Path(run_dir) / "03_sft_inserted"))
else:
    print(f"no data-ablation model at preset {preset!r} (ablation_data = {ablation_data!r})")
