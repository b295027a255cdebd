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
    ("md", "Statistics: expert calls per trajectory, mean tokens by role (counted with the preset's tokenizer) and the rendered length against the SFT `max_length` (longer conversations are split into windows by notebook 03, never dropped)."),
    ("code", """stats, table = dataset_statistics(config, out)
table.T"""),
    ("code", """figs = dataset_figures(out, figures_dir or Path(run_dir) / "figures", run_id or Path(run_dir).name, config.max_length)
for f in figs:
    display(Image(filename=str(f)))"""),
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
