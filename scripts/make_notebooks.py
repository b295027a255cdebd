"""Write the committed notebooks (no outputs) from their jupytext sources, notebooks/NN_*.py.

    python scripts/make_notebooks.py            # rewrite notebooks/NN_*.ipynb from notebooks/NN_*.py
    python scripts/make_notebooks.py --check    # exit 1 if a committed notebook differs from its source

The `.py` files (jupytext percent format, paired with the `.ipynb` that papermill runs) are what
you edit, review and lint (`make lint`); the `.ipynb` are generated, with stable cell ids so that
the same sources always give the same bytes. Notebooks stay thin: a `parameters` cell for
papermill, markdown, and short calls into `protege`."""
from __future__ import annotations

import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = ROOT / "notebooks"


def sources() -> list[Path]:
    return sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.py"))


def build(source: Path) -> nbformat.NotebookNode:
    """The .ipynb of one jupytext source: its cells, the parameters tag, nothing else."""
    parsed = jupytext.read(source, fmt="py:percent")
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"jupytext": {"formats": "ipynb,py:percent"},
                   "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                   "language_info": {"name": "python"}}
    for i, cell in enumerate(parsed.cells):
        if cell.cell_type == "markdown":
            new = nbformat.v4.new_markdown_cell(cell.source)
        else:
            new = nbformat.v4.new_code_cell(cell.source)
            if "parameters" in cell.metadata.get("tags", []):
                new.metadata["tags"] = ["parameters"]
        new["id"] = f"cell-{i:02d}"  # stable ids: a rewrite with the same sources is byte-identical
        nb.cells.append(new)
    return nb


def main() -> int:
    check = "--check" in sys.argv
    bad = 0
    if not sources():
        print(f"no notebook sources (NN_*.py) in {NOTEBOOKS_DIR}")
        return 1
    for source in sources():
        path = source.with_suffix(".ipynb")
        text = nbformat.writes(build(source)) + "\n"
        if check:
            if not path.exists() or path.read_text() != text:
                print(f"{path} differs from its source {source.name} (run python scripts/make_notebooks.py)")
                bad = 1
        else:
            path.write_text(text)
    return bad


if __name__ == "__main__":
    sys.exit(main())
