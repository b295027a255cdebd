"""The notebooks: committed without outputs, parameterised, and the smoke preset runs through papermill."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill as pm
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_committed_notebooks_are_thin_and_output_free():
    assert len(NOTEBOOKS) >= 2
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        assert nb.metadata["kernelspec"]["name"] == "python3", path
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert "parameters" in code[0].metadata.get("tags", []), path
        assert "preset" in code[0].source and "run_dir" in code[0].source, path
        for cell in code:
            assert not cell.get("outputs") and cell.get("execution_count") is None, path
            assert not any(line.lstrip().startswith(("def ", "class ")) for line in cell.source.splitlines()), path
    # each is generated from its jupytext source, and matches it
    assert all(path.with_suffix(".py").exists() for path in NOTEBOOKS)
    check = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_notebooks.py"), "--check"], check=False,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_an_edited_notebook_source_is_caught_until_regenerated(tmp_path):
    """--check fails when a .py source and its .ipynb disagree; regenerating pairs them again."""
    import shutil

    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "make_notebooks.py", tmp_path / "scripts")
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    source = tmp_path / "notebooks" / "03_sft.py"
    source.write_text(source.read_text().replace('out_name = "03_sft"', 'out_name = "03_sft_b"'))
    script = [sys.executable, str(tmp_path / "scripts" / "make_notebooks.py")]
    check = subprocess.run([*script, "--check"], capture_output=True, text=True, check=False)
    assert check.returncode == 1 and "03_sft.ipynb differs" in check.stdout
    subprocess.run(script, check=True)
    assert subprocess.run([*script, "--check"], check=False).returncode == 0
    nb = nbformat.read(tmp_path / "notebooks" / "03_sft.ipynb", as_version=4)
    assert 'out_name = "03_sft_b"' in nb.cells[1].source and "parameters" in nb.cells[1].metadata["tags"]


def _outputs(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return json.dumps([o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])])


@pytest.mark.timeout(900)
def test_smoke_notebooks_01_02_run_through_papermill(tmp_path):
    run_dir = tmp_path / "run"
    for name in ("01_collect.ipynb", "02_insert_calls.ipynb"):
        pm.execute_notebook(str(ROOT / "notebooks" / name), str(tmp_path / name), kernel_name="python3",
                            parameters={"preset": "smoke", "run_dir": str(run_dir)}, cwd=str(ROOT),
                            progress_bar=False)
    assert len((run_dir / "01_collect" / "live" / "kept.jsonl").read_text().splitlines()) == 6
    for name in ("live", "inserted-stall", "mixed"):
        assert (run_dir / "02_insert" / "datasets" / name / "hf" / "dataset_dict.json").exists()
    figs = sorted(p.name for p in (run_dir / "figures").glob("*.png"))
    assert figs == ["run_02_expert_calls.png", "run_02_lengths.png", "run_02_tokens_by_role.png"]
    out = _outputs(tmp_path / "02_insert_calls.ipynb")
    assert "calls_per_traj" in out and "tok_protege" in out and "image/png" in out
