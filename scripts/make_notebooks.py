"""Write the committed notebooks (no outputs) from the cell sources below.

    python scripts/make_notebooks.py            # rewrite notebooks/0*.ipynb
    python scripts/make_notebooks.py --check    # exit 1 if a committed notebook differs

Notebooks stay thin: a `parameters` cell for papermill, markdown, and short calls into
`protege`. Keeping their sources here makes review diffs readable."""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS: dict[str, list[tuple[str, str]]] = {}

NOTEBOOKS["01_collect.ipynb"] = [
    ("md", """# 01 · Collect trajectories with live expert calls

A **demonstrator** solves training tasks with the `ask_expert` tool switched on; every patch is
graded by the repository's tests and only **resolved** trajectories are kept (rejection
sampling). A second collection with the tool **switched off** gives *expert-only* trajectories:
the input of notebook 02, which inserts expert calls after the fact.

* `smoke` / `small`: the demonstrator is the **ORACLE** `ReferenceDemonstrator`. It reads the
  gold patch (so its success says nothing about any model) and acts like an agent that explores,
  reproduces the failure, sometimes tries a wrong fix, asks the expert when stuck, fixes, re-tests
  and submits. The expert is the **ORACLE** `ReferenceExpert`. Every kept row says
  `"oracle_demonstrator": true`.
* `full`: any OpenAI-compatible model is the demonstrator, and the expert also sees the gold
  patch, told never to reveal it verbatim (METHOD.md, Phase I).

Test-split tasks are refused: they are held out for evaluation."""),
    ("params", """preset = "smoke"          # smoke | small | full
run_dir = "runs/smoke"      # this pipeline run's folder; this stage writes {run_dir}/01_collect
overrides = {}              # CollectConfig fields, e.g. {"limit": 20}"""),
    ("code", """from pathlib import Path

import pandas as pd

from protege.collect import CollectConfig, run_collection, steps_table

config = CollectConfig.preset(preset, **overrides)
config"""),
    ("md", "Run both collections (resumable: finished instances are skipped on a re-run)."),
    ("code", """out = Path(run_dir) / "01_collect"
summary = pd.DataFrame(run_collection(config, out)).set_index("collection")
summary"""),
    ("md", "One kept live trajectory, step by step (note the `ask_expert` step and what follows it):"),
    ("code", """steps_table(out / "live" / "kept.jsonl", index=0)"""),
]

NOTEBOOKS["02_insert_calls.ipynb"] = [
    ("md", """# 02 · Insert expert calls, and build the SFT datasets

From the **expert-only** trajectories of notebook 01, insert `ask_expert` turns *post hoc*:

* `stall`: where the trajectory is stuck (a test still failing after an edit, an edit that did
  not apply, the loop heuristic firing; else before the first edit after long exploration);
* `every_n`: before every n-th step;
* `random`: before each step with probability p.

Each inserted question is written from what the trajectory did *before* the call; the guidance
is written by the expert from the trajectory's *own later edits* (hindsight), so the advice
agrees with what the trajectory does next. METHOD.md reports this as weaker than live
collaboration; the datasets keep both sources apart so notebook 03 can train on either.

Datasets are in TRL's conversational tool-calling format (`messages` with `tool_calls`, a
`tools` column), saved as JSONL and as a Hugging Face `DatasetDict`, split by instance into
train / validation. Test-split packages are refused."""),
    ("params", """preset = "smoke"          # smoke | small | full
run_dir = "runs/smoke"      # reads {run_dir}/01_collect, writes {run_dir}/02_insert
figures_dir = ""            # default {run_dir}/figures
run_id = ""                 # names the figures; default: the run folder's name
overrides = {}              # DataConfig fields, e.g. {"strategies": ["every_n"], "every_n": 3}"""),
    ("code", """from pathlib import Path

import pandas as pd
from IPython.display import Image, display

from protege.insert_calls import DataConfig, dataset_figures, dataset_statistics, insertion_examples, run_insertion

config = DataConfig.preset(preset, **overrides)
out = Path(run_dir) / "02_insert"
config"""),
    ("code", """result = run_insertion(config, Path(run_dir) / "01_collect", out)
pd.DataFrame(result["insertion"]).set_index("strategy")"""),
    ("md", "Inserted calls next to the trajectory's own next actions: the guidance should point where the trajectory goes."),
    ("code", """pd.set_option("display.max_colwidth", 200)
insertion_examples(out / f"inserted_{config.strategies[0]}.jsonl", n=4)"""),
    ("md", "The datasets written (rows by split and source):"),
    ("code", """pd.DataFrame(result["datasets"]).T[["n_train", "n_validation", "sources", "held_out_packages"]]"""),
    ("md", "Statistics: expert calls per trajectory, mean tokens by role (counted with the preset's tokenizer) and the rendered length against the SFT `max_length` (notebook 03 splits longer conversations into windows; a turn that fits in no window is counted as dropped, never silently lost)."),
    ("code", """stats, table = dataset_statistics(config, out)
table.T"""),
    ("code", """figs = dataset_figures(out, figures_dir or Path(run_dir) / "figures", run_id or Path(run_dir).name, config.max_length)
for f in figs:
    display(Image(filename=str(f)))"""),
]

NOTEBOOKS["03_sft.ipynb"] = [
    ("md", """# 03 · Supervised fine-tuning (SFT) of the protégé

Phase I of SWE-Protégé: the small model imitates resolved, expert-augmented trajectories
(notebook 02's datasets). Each row is rendered **exactly as the agent loop shows it to the policy**
(`protege.dataset.agent_messages` + the tokenizer's chat template with the tool schemas), so the
model trains on the token sequences it will see at inference.

**Loss only on the protégé's own turns.** Its reasoning, its `<tool_call>` and the end-of-turn
token (so it learns to stop) carry loss; the system prompt, the task, tool observations, expert
guidance and context notes are masked (label -100). The turn boundaries come from rendering
prefixes of the conversation with the chat template, so any template works."""),
    ("params", """preset = "smoke"          # smoke (tiny model) | small (SmolLM2-135M, CPU) | full (Qwen2.5-Coder-7B, GPU)
run_dir = "runs/smoke"      # reads {run_dir}/02_insert/datasets/{data}, writes {run_dir}/03_sft
data = ""                   # which dataset of notebook 02; "" = the preset's (SFTRunConfig.dataset)
overrides = {}              # SFTRunConfig fields, e.g. {"mode": "qlora", "max_steps": 20}
out_name = "03_sft"         # the model's folder in run_dir
ablation_data = "auto"      # data ablation: a second model on this dataset into {run_dir}/03_sft_inserted
                            # ("auto": inserted-stall at smoke and full, none at small; "" = none)"""),
    ("code", """from pathlib import Path

import pandas as pd
from IPython.display import Image, display

from protege.sft import SFTRunConfig, dry_run, mask_preview, metrics_table, train

config = SFTRunConfig.preset(preset, **overrides)
data_dir = Path(run_dir) / "02_insert" / "datasets" / (data or config.dataset)
out = Path(run_dir) / out_name
pd.Series(config.to_dict(), name=f"config {config.hash()}").to_frame()"""),
    ("md", """Which text carries loss, in the first window of one training conversation (`loss = True`:
the protégé's turns; everything else is context):"""),
    ("code", """pd.set_option("display.max_colwidth", 120)
mask_preview(config, data_dir, index=0)"""),
    ("md", """**Long conversations: the window policy.** A conversation longer than `max_length` tokens is
split into windows, each shaped exactly like what the agent's `context_view` shows at inference
when the history is too long: system prompt + task, the note *"[N earlier messages left out to
fit the context]"*, every expert guidance given so far, then the most recent messages. Every
protégé turn is trained in exactly one window. A turn that does not fit even with its minimal
context (the latest exchange) is **counted** as dropped, never silently lost; `long_policy="drop"`
leaves long conversations out whole, `"error"` refuses them.

The resolved plan before any weight is loaded (TRL `SFTConfig`, LoRA / quantisation configs and
the windows the data makes):"""),
    ("code", """plan = dry_run(config, data_dir)
pd.Series(plan["data"], name="train split").to_frame()"""),
    ("md", """**Modes** (one config field, `mode`): `lora` trains low-rank adapters on every linear layer;
`qlora` does the same on a 4-bit NF4-quantised base (it runs on CPU here, slowly); `full` trains
every weight (what the paper did, at 32k context). LoRA / QLoRA adapters are merged into a full,
non-quantised model in `03_sft/merged/`, which notebook 04 and 05 load as the policy.
Training resumes from the last checkpoint in `03_sft/checkpoints/` if one is there."""),
    ("code", """metrics = train(config, data_dir, out)"""),
    ("md", """Counts and metrics (`train.*` / `validation.*`: what tokenisation made of each split;
`throughput_tokens_per_s`: every input token of the windows seen, over the training wall time):"""),
    ("code", """metrics_table(out)"""),
    ("code", """display(Image(filename=str(out / "loss.png")))"""),
    ("md", """**Data ablation.** The paper found post-hoc inserted calls weaker than live collaboration;
to let notebook 05 compare them (`sft-inserted+expert`), the same config trains a second model on
the inserted-calls dataset into `03_sft_inserted/`."""),
    ("code", """from protege.sft import ablation_dataset

ablation = ablation_dataset(preset, ablation_data)
if ablation:
    ablation_metrics = train(config, Path(run_dir) / "02_insert" / "datasets" / ablation,
                             Path(run_dir) / "03_sft_inserted")
    display(metrics_table(Path(run_dir) / "03_sft_inserted"))
else:
    print(f"no data-ablation model at preset {preset!r} (ablation_data = {ablation_data!r})")"""),
]

NOTEBOOKS["04_rl.ipynb"] = [
    ("md", """# 04 · Penalised RL

The SFT protégé (stage 03) now learns from its own episodes. Each optimizer step draws training tasks, runs
**our agent loop** (the same `protege.agent.run_episodes` used for collection and evaluation) **G times per task**
with the model being trained, grades every patch in a fresh environment, computes the reward, and updates the
model.

**Objective.** TRL 1.16 has no `PPOTrainer`, so this is **GRPO-style PPO** with `trl.GRPOTrainer`, which is what the
paper used: the PPO clipped surrogate with *group-relative* advantages (an episode's reward minus the mean of its
task's G episodes, over their std), asymmetric clipping of the ratio to [1 − 0.20, 1 + 0.28], no critic, and an
optional KL penalty `beta` toward the reference (SFT) model.

**One sequence per episode.** A multi-turn episode becomes one training sequence: the first prompt, then every
generated turn with the observations and expert guidance between them. `env_mask` marks the generated tokens;
observation and guidance tokens are context only and get no gradient."""),
    ("params", """preset = "smoke"  # smoke | small | full
run_dir = "runs/smoke"
model = ""  # default: {run_dir}/03_sft/merged if it exists, else the preset's model
reward_preset = "simple"  # simple | paper
lambda_loop = None  # None: the preset's (simple 0.1 per repeated action, paper 0.5)
lambda_collab = None  # None: the preset's (0.1 per expert call)
overrides = {}  # any RLRunConfig field; "reward.X" / "agent.X" set a reward / agent field"""),
    ("code", """from pathlib import Path

from IPython.display import Image

from protege import rl

out_dir = Path(run_dir) / "04_rl"
config = rl.notebook_config(preset, run_dir, model, reward_preset, lambda_loop, lambda_collab, overrides)
config"""),
    ("md", '## Rewards\n\n`reward_preset = "simple"`: the popular simplified variant (not the paper\'s):\n$R = R_{task} - \\lambda_{loop} C_{loop} - \\lambda_{collab} C_{collab}$, with $R_{task}$ = +1 resolved / −0.1 not,\n$C_{loop}$ = actions repeating one of the 5 before them, $C_{collab}$ = expert calls on *failed* tasks.\n\n`reward_preset = "paper"`: the composite of METHOD.md,\n$R = R_{loop} + w_{follow} R_{follow} + g_{loop} g_{follow} R_{other}$ with\n$R_{other} = R_{correct} + w_{sim} R_{sim} + w_{expert} R_{expert}$: $R_{loop}$ penalises long runs of the same base\ncommand (k1 = 15, k2 = 8, λ = 0.5, floor −10), $R_{sim}$ = −1 for failed patches unlike the gold one, a judge scores\neach expert call for being *warranted* and *followed through*, the gates cut $R_{other}$ when the agent loops or\nignores advice. Curriculum: loop shaping first, then follow gating, $(w_{expert}, w_{follow}) = (0.3, 2.0)$ and −10\nfor never asking. Smoke/small runs use the offline heuristic judge; full runs the expert model.\n\nEvery term is logged per step (`steps.csv`), and TRL logs each additive component as `rewards/<name>/mean`.'),
    ("code", """result = rl.train(config, out_dir)"""),
    ("md", """## Per-step table and training curves

Means over the step's episodes: reward components, resolve rate, $C_{loop}$ and loop rate (a run longer than 10),
expert calls, steps, rollout throughput (episodes/s, generated tokens/s) and TRL's loss, KL and clip fraction."""),
    ("code", """rl.step_table(out_dir)"""),
    ("code", """Image(filename=str(out_dir / "curves.png"))"""),
    ("md", """## Before and after RL on held-out tasks

A quick greedy check on `config.eval_tasks` (stage 05 is the full evaluation): loop rate and resolve rate of
the starting model and of `04_rl/final`."""),
    ("code", """rl.evaluate_before_after(config, out_dir)"""),
]

NOTEBOOKS["05_evaluate.ipynb"] = [
    ("md", """# 05 · Evaluate: Pass@1 with intervals, expert use, loops, cost

Every **condition** runs the same agent loop on the **held-out** tasks (the bundled `test` split
at `smoke` / `small`; SWE-bench Verified at `full`), once per seed; every patch is graded by the
task's tests in a fresh environment. Conditions (default list):

| condition | protégé | expert | who decides when to ask |
|---|---|---|---|
| `base` | the untrained model | none (no `ask_expert` tool) | - |
| `base+expert` | the untrained model | the expert | the protégé |
| `sft+expert` | after SFT on live-collaboration data (`03_sft/merged`) | the expert | the protégé |
| `sft+rl+expert` | after SFT and RL (`04_rl/final`) | the expert | the protégé |
| `expert-as-agent` | the expert acting alone | none | - |
| `ablate-never` / `ablate-every5` / `ablate-random0.2` | best trained model (RL, else SFT) | the expert | a fixed baseline (the protégé's own asks are refused) |
| `ablate-learned` | best trained model | the expert | the protégé (the same run as its main condition) |
| `sft-inserted+expert` | after SFT on post-hoc *inserted* calls (`03_sft_inserted/merged`) | the expert | the protégé |
| `noisy-expert` | best trained model | an expert that misleads with p = 0.3 | the protégé |

**ORACLE components** (rows marked `oracle = 1`): at `smoke` / `small` the expert is the
`ReferenceExpert`, built from the gold patch, and `expert-as-agent` is the scripted policy,
which *reads the gold patch*: it is an upper reference, not a model. At `full` both are an
OpenAI-compatible model that never sees the gold patch.

A condition whose model folder does not exist yet (e.g. RL not run) is **skipped**, with the
reason in `metrics.csv`. Re-running resumes: finished instances are not run again."""),
    ("params", """preset = "smoke"          # smoke | small | full
run_dir = "runs/smoke"      # pipeline run folder (03_sft/, 04_rl/ ...); this stage writes {run_dir}/05_eval
conditions = []             # empty: the preset's list; names of defaults and/or Condition dicts
seeds = []                  # empty: the preset's seeds (smoke and small [0], full [0, 1, 2])
overrides = {}              # EvalConfig fields, e.g. {"limit": 4, "temperature": 0.0}"""),
    ("code", """from pathlib import Path

import pandas as pd

from protege.evaluate import (EvalConfig, conditions_table, load_metrics, resolve_conditions, resolved_pivot,
                              run_evaluation)

config = EvalConfig.preset(preset, conditions=conditions, seeds=seeds, **overrides)
out = Path(run_dir) / "05_eval"
config"""),
    ("md", """What will run, what is skipped and why (`run_as`: an identical earlier condition whose runs are reused):"""),
    ("code", """pd.set_option("display.max_colwidth", 120)
conditions_table(resolve_conditions(config, run_dir))[["policy", "expert", "invocation", "block_policy_asks", "skipped", "run_as", "notes"]]"""),
    ("md", """Run every condition x seed into `05_eval/<condition>/seed<k>/` (trajectories, SWE-bench
`preds.jsonl`, `report.json` with the grading), then write `per_instance.csv` and `metrics.csv`."""),
    ("code", """result = run_evaluation(config, run_dir, out)"""),
    ("md", """## Metrics, one row per condition

* `pass1_mean`: the mean over instances of each instance's resolve rate across seeds (= the mean
  over seeds of per-seed Pass@1). `pass1_lo` / `pass1_hi`: a **95% percentile bootstrap over
  instances** (2000 resamples of the tasks with replacement, each carrying its mean over seeds).
  It measures how much the score depends on which tasks were drawn; with 16 tasks it is wide.
  It collapses to a point when every instance has the same rate (e.g. the oracle's 100%).
* `expert_calls_per_task`; `expert_token_share`: expert tokens / all tokens, summed over
  trajectories (paper: ~11%); `loop_rate`: share of trajectories with a run of more than 10
  identical base commands (paper: 31% after SFT, 0.8% after RL); `steps_per_task`;
  `cost_per_task` (USD; the local protégé is free, the expert priced as a Sonnet-class model);
  `format_error_rate`: malformed actions per step.
* `oracle`: 1 when a component reads the gold patch (see above)."""),
    ("code", """metrics = load_metrics(out)
metrics"""),
    ("md", """Per instance: the resolve rate over seeds, one column per condition that ran."""),
    ("code", """resolved_pivot(out)"""),
    ("md", """**Selectivity, by tier.** The bundled tasks come in tiers by how much the issue reveals:
`pinpointed` issues name the file, line and what is wrong (the protégé can fix them alone),
`easy` / `medium` / `hard` reveal less and less. A selective protégé asks the expert where the issue
leaves the bug unknown and works alone where it can: compare `expert_calls_per_task` across tiers.
Pass@1 per mutation kind is in `metrics_by_mutation.csv` (the bugs come from a fixed set of
mutation kinds, so a protégé may learn to invert them rather than to debug)."""),
    ("code", """pd.read_csv(out / "metrics_by_tier.csv").pivot(index="condition", columns="group",
                                                values=["pass1_mean", "expert_calls_per_task"]).round(2)"""),
    ("md", """Every episode's counts (tokens by role, expert calls, exit status):"""),
    ("code", """pd.read_csv(out / "per_instance.csv").head(20)"""),
    ("md", """## Watch the episodes

`protege view` writes a self-contained HTML report of every condition's episodes (opens from
disk): an index you can sort and filter, and each conversation with the expert's guidance
highlighted (ORACLE badge when the expert read the gold patch), format errors and loop runs
marked, the final patch as a diff and its grading."""),
    ("code", """from IPython.display import Markdown

from protege.viewer import write_report

report = write_report(out)
Markdown(f"Episode report: [{report}]({report.resolve().as_uri()})")"""),
]

NOTEBOOKS["06_figures.ipynb"] = [
    ("md", """# 06 · Figures from the recorded results

Every figure here is drawn from the result files the stages wrote (CSV / JSON), never from a
model: the same files give byte-identical PNGs. Each figure is stamped with the run id and the
hash of the stage's `config.json`. `python -m protege.pipeline figures` redraws all of them
from `papermill_runs/` alone (a clone without `runs/`).

Figures of one run (each made only when its input exists; stages not run yet are skipped):

| figure | input | what to look at |
|---|---|---|
| `02_expert_calls`, `02_tokens_by_role`, `02_lengths` | `02_insert/stats.csv` | the SFT datasets (notebook 02) |
| `03_sft_loss` | `03_sft/train_log.csv` | train and validation loss of SFT on the protégé's own turns |
| `04_rl_curves` | `04_rl/steps.csv` | every reward term, resolve / loop rates, expert calls and steps per RL step (paper Figs. 8-10) |
| `05_pass1` | `05_eval/metrics.csv` | Pass@1 per condition with its bootstrap interval (paper Tables 1-2) |
| `05_loop_rate` | `05_eval/metrics.csv` | share of trajectories with a run of more than 10 identical commands, base / SFT / SFT+RL (paper Fig. 6) |
| `05_invocation_ablation` | `05_eval/metrics.csv` | never / every N / random / learned asking: Pass@1 against expert calls (paper Fig. 7) |
| `05_tokens_by_role` | `05_eval/per_instance.csv` | tokens per task: protégé prompt / completion, expert in / out; expert share (paper Fig. 3) |
| `05_cost_per_task` | `05_eval/per_instance.csv` | median cost per task (paper Fig. 4) |
| `05_steps_and_calls` | `05_eval/per_instance.csv` | distribution of steps and expert calls per task |

**ORACLE** marks a condition in which a component reads the gold patch (the reference expert,
the scripted agent): at `smoke` / `small` scale its numbers say how well the protégé *uses*
perfect advice, not how good a real expert would be."""),
    ("params", """preset = "smoke"          # smoke | small | full (figures only read recorded results)
run_dir = "runs/smoke"      # a run folder, or its record papermill_runs/<run-id>/results (same layout)
run_id = ""                 # names and stamps the figures; default: the run folder's name
figures_dir = ""            # default {run_dir}/figures
sweep_dir = ""              # papermill_runs/<sweep-id>: adds the sweep heatmap and Pareto plot"""),
    ("code", """from pathlib import Path

import pandas as pd
from IPython.display import display

from protege import figures

run_id = run_id or Path(run_dir).name
figures_dir = figures_dir or str(Path(run_dir) / "figures")"""),
    ("md", """The run's figures (the list says which inputs existed):"""),
    ("code", """made = figures.figures_for_run(run_dir, figures_dir, run_id)
pd.DataFrame({"figure": list(map(str, made))})"""),
    ("code", """display(*figures.images(made))"""),
    ("md", """## A sweep over reward weights

With `sweep_dir` (written by `python -m protege.pipeline sweep`), one row per sweep point: its
parameters and the metrics of the condition it is scored by (`sft+rl+expert` when it ran). The
heatmap shows the resolve rate over the first two swept parameters; the Pareto plot puts the
resolve rate against the expert's share of tokens and rings the points no other point beats on
both."""),
    ("code", """sweep_table = figures.sweep_table(sweep_dir) if sweep_dir else pd.DataFrame()
sweep_table"""),
    ("code", """sweep_made = figures.figures_for_sweep(sweep_dir, figures_dir, Path(sweep_dir).name) if sweep_dir else []
display(*figures.images(sweep_made))"""),
]


def build(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                   "language_info": {"name": "python"}}
    for kind, src in cells:
        if kind == "md":
            nb.cells.append(nbformat.v4.new_markdown_cell(src))
        else:
            cell = nbformat.v4.new_code_cell(src)
            if kind == "params":
                cell.metadata["tags"] = ["parameters"]
            nb.cells.append(cell)
    for i, cell in enumerate(nb.cells):  # stable ids: a rewrite with the same sources is byte-identical
        cell["id"] = f"cell-{i:02d}"
    return nb


def main() -> int:
    check = "--check" in sys.argv
    bad = 0
    for name, cells in NOTEBOOKS.items():
        path = ROOT / "notebooks" / name
        text = nbformat.writes(build(cells)) + "\n"
        if check:
            if not path.exists() or path.read_text() != text:
                print(f"{path} differs from scripts/make_notebooks.py")
                bad = 1
        else:
            path.write_text(text)
    return bad


if __name__ == "__main__":
    sys.exit(main())
