"""The papermill pipeline on trivial notebooks written here: execution, records, resuming,
parameter routing, sweeps with shared upstream stages, figures regenerated from records only."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from protege.app import params, pipeline, pipeline_cli, sweep
from protege.app.params import PipelineError
from protege.stages import figures_sweep

ROOT = Path(__file__).resolve().parent.parent


def write_notebook(path: Path, params: str, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    first = nbformat.v4.new_code_cell(params)
    first.metadata["tags"] = ["parameters"]
    nb.cells = [first] + [nbformat.v4.new_code_cell(c) for c in cells]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


MAKE = '''import json, pathlib
out = pathlib.Path(run_dir) / "01_make"
out.mkdir(parents=True, exist_ok=True)
(out / "config.json").write_text(json.dumps({"alpha": alpha, "overrides": overrides, "preset": preset}))
(out / "weights.bin").write_text("not a result file")
count = out / "count"
count.write_text(str(int(count.read_text()) + 1 if count.exists() else 1))'''

CHECK = '''import json, pathlib
assert not pathlib.Path("FAIL").exists(), "asked to fail"
(pathlib.Path(run_dir) / "02_check").mkdir(parents=True, exist_ok=True)
(pathlib.Path(run_dir) / "02_check" / "metrics.json").write_text(json.dumps({"ok": 1, "run_id": run_id}))'''

SCORE = '''import csv, json, pathlib
assert (pathlib.Path(run_dir) / "01_make" / "config.json").exists()  # the shared upstream stage
out = pathlib.Path(run_dir) / "05_eval"
out.mkdir(parents=True, exist_ok=True)
(out / "config.json").write_text(json.dumps({"lambda_loop": lambda_loop, "lambda_collab": lambda_collab}))
with open(out / "metrics.csv", "w", newline="") as fh:
    w = csv.writer(fh)
    w.writerow(["condition", "pass1_mean", "pass1_lo", "pass1_hi", "expert_token_share", "loop_rate", "oracle", "skipped"])
    w.writerow(["base", 0.1, 0.0, 0.2, 0.0, 0.3, 0, ""])
    w.writerow(["sft+rl+expert", 0.4 + lambda_loop - lambda_collab, 0.2, 0.8, 0.1 + lambda_collab, 0.1, 1, ""])'''


@pytest.fixture()
def two_notebooks(tmp_path):
    write_notebook(tmp_path / "notebooks" / "01_make.ipynb",
                   'preset = "smoke"\nrun_dir = "runs/x"\nalpha = 1  # a stage knob\noverrides = {}', MAKE)
    write_notebook(tmp_path / "notebooks" / "02_check.ipynb", 'preset = "smoke"\nrun_dir = "runs/x"\nrun_id = ""',
                   CHECK)
    return tmp_path


def injected(path: Path) -> str:
    nb = nbformat.read(str(path), as_version=4)
    return "".join(c.source for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))


def test_parameters_are_checked_before_anything_runs(two_notebooks):
    root = two_notebooks
    with pytest.raises(PipelineError, match="beta.*declared by none"):
        pipeline.run_pipeline("smoke", "r0", {"beta": 1}, root=root, progress=False)
    with pytest.raises(PipelineError, match="set by the pipeline"):
        pipeline.run_pipeline("smoke", "r0", {"run_dir": "elsewhere"}, root=root, progress=False)
    with pytest.raises(PipelineError, match="preset"):
        pipeline.run_pipeline("huge", root=root, progress=False)
    with pytest.raises(PipelineError, match="no notebook 07"):
        pipeline.run_pipeline("smoke", "r0", notebooks=["07"], root=root, progress=False)
    assert not (root / "papermill_runs" / "r0" / "status.json").exists()
    assert params.declared_parameters(root / "notebooks" / "01_make.ipynb") == {
        "preset": "smoke", "run_dir": "runs/x", "alpha": 1, "overrides": {}}


def test_run_records_fails_then_resumes(two_notebooks):
    root = two_notebooks
    (root / "FAIL").write_text("")
    with pytest.raises(PipelineError, match="02_check.ipynb failed"):
        pipeline.run_pipeline("smoke", "r1", {"alpha": 3, "overrides.lr": 0.5}, root=root, progress=False)
    pm_dir = root / "papermill_runs" / "r1"
    status = json.loads((pm_dir / "status.json").read_text())["notebooks"]
    assert status["01_make.ipynb"]["status"] == "done" and status["02_check.ipynb"]["status"] == "failed"
    assert "asked to fail" in status["02_check.ipynb"]["error"]
    assert "asked to fail" in (pm_dir / "02_check.ipynb").read_text()  # the partial notebook is kept
    assert json.loads((pm_dir / "run.json").read_text())["status"] == "failed"
    # only declared parameters: alpha and overrides go to 01, run_id only to 02
    assert "alpha = 3" in injected(pm_dir / "01_make.ipynb") and "run_id" not in injected(pm_dir / "01_make.ipynb")
    assert "alpha" not in injected(pm_dir / "02_check.ipynb") and 'run_id = "r1"' in injected(pm_dir / "02_check.ipynb")
    assert json.loads((root / "runs/r1/01_make/config.json").read_text())["overrides"] == {"lr": 0.5}

    (root / "FAIL").unlink()  # "fixed": the resumed run skips 01 and re-executes 02
    record = pipeline.run_pipeline("smoke", "r1", {"alpha": 3, "overrides.lr": 0.5}, root=root, progress=False)
    assert (root / "runs/r1/01_make/count").read_text() == "1"
    assert record["status"] == "done" and set(record["wall_s"]) == {"01_make.ipynb", "02_check.ipynb"}
    assert record["notebooks"] == {"01_make.ipynb": "done", "02_check.ipynb": "done"}
    assert record["machine"]["cpu_count"] >= 1 and record["versions"]["papermill"]
    assert record["params"] == {"alpha": 3, "overrides.lr": 0.5} and record["run_dir"] == "runs/r1"
    status = json.loads((pm_dir / "status.json").read_text())["notebooks"]
    assert status["02_check.ipynb"]["parameters"] == {"preset": "smoke", "run_dir": "runs/r1", "run_id": "r1"}
    assert {"protege", "papermill", "wall_s"} <= set(status["01_make.ipynb"])
    # small result files copied with their relative paths; artifacts are not
    assert sorted(record["results"]) == ["01_make/config.json", "02_check/metrics.json"]
    assert (pm_dir / "results/02_check/metrics.json").exists() and not (pm_dir / "results/01_make/weights.bin").exists()
    assert record["figures"] == []  # no figure inputs in these notebooks

    # a re-run that executes nothing keeps when and where the stages were made
    made = {**record, "finished": "2001-01-01T00:00:00+00:00", "git_commit": "made-at-this-commit"}
    (pm_dir / "run.json").write_text(json.dumps(made))
    status = json.loads((pm_dir / "status.json").read_text())
    for entry in status["notebooks"].values():
        entry["finished"] = "2000-12-31T00:00:00+00:00"
    (pm_dir / "status.json").write_text(json.dumps(status))
    again = pipeline.run_pipeline("smoke", "r1", {"alpha": 3, "overrides.lr": 0.5}, root=root, progress=False)
    assert again["status"] == "done" and (root / "runs/r1/01_make/count").read_text() == "1"
    assert again["finished"] == made["finished"] and again["git_commit"] == "made-at-this-commit"
    with pytest.raises(PipelineError, match="finished with parameters"):
        pipeline.run_pipeline("smoke", "r1", {"alpha": 4, "overrides.lr": 0.5}, root=root, progress=False)


def test_records_from_elsewhere_do_not_skip_a_stage(two_notebooks):
    """A committed record (papermill_runs/ without runs/, as in a fresh clone) never makes the run a
    no-op: each notebook runs again unless the user asks to reuse records."""
    root = two_notebooks
    pipeline.run_pipeline("smoke", "ref", {"alpha": 2}, root=root, progress=False)
    assert (root / "runs/ref/01_make/count").read_text() == "1"
    shutil.rmtree(root / "runs")  # what a fresh clone of a committed run looks like
    reused = pipeline.run_pipeline("smoke", "ref", {"alpha": 2}, root=root, progress=False, reuse_records=True)
    assert reused["status"] == "done" and not (root / "runs/ref/01_make").exists()
    committed = json.loads((root / "papermill_runs/ref/run.json").read_text())
    committed["started"] = "2000-01-01T00:00:00+00:00"
    (root / "papermill_runs/ref/run.json").write_text(json.dumps(committed))
    record = pipeline.run_pipeline("smoke", "ref", {"alpha": 5}, root=root, progress=False)  # other params: fine
    assert record["started"] > "2026", "a run that replaced a committed record keeps the record's start time"
    assert record["status"] == "done" and (root / "runs/ref/01_make/count").read_text() == "1"
    assert json.loads((root / "runs/ref/01_make/config.json").read_text())["alpha"] == 5
    assert pipeline.stage_marker(root / "runs/ref", "02_check.ipynb").exists()
    again = pipeline.run_pipeline("smoke", "ref", {"alpha": 5}, root=root, progress=False)  # now made here: skipped
    assert again["status"] == "done" and (root / "runs/ref/01_make/count").read_text() == "1"


@pytest.fixture()
def sweep_root(tmp_path):
    write_notebook(tmp_path / "notebooks" / "01_make.ipynb",
                   'preset = "smoke"\nrun_dir = "runs/x"\nalpha = 1\noverrides = {}', MAKE)
    write_notebook(tmp_path / "notebooks" / "05_score.ipynb",
                   'preset = "smoke"\nrun_dir = "runs/x"\nlambda_loop = 0.1\nlambda_collab = 0.1', SCORE)
    write_notebook(tmp_path / "notebooks" / "06_fig.ipynb",
                   'preset = "smoke"\nrun_dir = "runs/x"\nsweep_dir = ""',
                   'import pathlib\nassert (pathlib.Path(sweep_dir) / "sweep.json").exists()')
    return tmp_path


def test_sweep_shares_upstream_and_aggregates(sweep_root, tmp_path_factory, monkeypatch):
    root = sweep_root
    with pytest.raises(PipelineError, match="--reuse-from base"):
        sweep.run_sweep("smoke", {"lambda_loop": [0.0]}, "sw", reuse_from="base", root=root, progress=False)
    pipeline.run_pipeline("smoke", "base", notebooks=["01"], root=root, progress=False)
    with pytest.raises(PipelineError, match="gamma"):
        sweep.run_sweep("smoke", {"gamma": [1, 2]}, "sw", reuse_from="base", root=root, progress=False)
    grid = {"lambda_loop": [0.0, 0.2], "lambda_collab": [0, 0.2]}
    record = sweep.run_sweep("smoke", grid, "sw", reuse_from="base", root=root, progress=False)
    ids = [p["id"] for p in record["points"]]
    assert ids == ["lambda_loop=0,lambda_collab=0", "lambda_loop=0,lambda_collab=0.2",
                   "lambda_loop=0.2,lambda_collab=0", "lambda_loop=0.2,lambda_collab=0.2"]
    assert all(p["status"] == "done" for p in record["points"]) and record["notebooks"] == ["05_score.ipynb"]
    sweep_pm = root / "papermill_runs" / "sw"
    assert sorted(p.name for p in sweep_pm.iterdir() if p.is_dir()) == sorted(ids)
    for pid in ids:
        assert (root / "runs/sw" / pid / "01_make").is_symlink()  # shared, not re-run
        assert (sweep_pm / pid / "results/01_make/config.json").exists()
        assert (sweep_pm / pid / "results/05_eval/metrics.csv").exists()
        assert not (sweep_pm / pid / "01_make.ipynb").exists() and (sweep_pm / pid / "05_score.ipynb").exists()
    assert (root / "runs/base/01_make/count").read_text() == "1"
    assert json.loads((sweep_pm / "sweep.json").read_text())["reuse_from"] == "base"
    table = (sweep_pm / "sweep_metrics.csv").read_text().splitlines()
    assert len(table) == 5 and "sft+rl+expert" in table[1]
    assert record["figures"] == ["figures/sw_sweep_heatmap.png", "figures/sw_sweep_pareto.png"]
    assert json.loads((sweep_pm / "status.json").read_text())["notebooks"]["06_fig.ipynb"]["status"] == "done"
    first = {p: (root / p).read_bytes() for p in record["figures"]}

    from typer.testing import CliRunner  # resumed from the command line: every point is skipped

    statuses = [(sweep_pm / pid / "status.json").read_text() for pid in ids]

    result = CliRunner().invoke(pipeline_cli.app, ["sweep", "--preset", "smoke", "--grid", "lambda_loop=0.0,0.2", "--grid",
                                               "lambda_collab=0,0.2", "--sweep-id", "sw", "--reuse-from", "base",
                                               "--root", str(root)])
    assert result.exit_code == 0 and "4/4 points done" in result.output, result.output
    assert [(sweep_pm / pid / "status.json").read_text() for pid in ids] == statuses  # nothing re-executed
    assert {p: (root / p).read_bytes() for p in record["figures"]} == first
    with pytest.raises(PipelineError, match="defines another sweep"):
        sweep.run_sweep("smoke", {"lambda_loop": [0.5]}, "sw", reuse_from="base", root=root, progress=False)

    # a reviewer's clone: papermill_runs/ only, no runs/
    clone = tmp_path_factory.mktemp("clone")
    shutil.copytree(root / "papermill_runs", clone / "papermill_runs", symlinks=False)
    from test_figures import write_results

    write_results(clone / "papermill_runs" / "synthetic" / "results")
    made = pipeline.regenerate_figures(clone / "papermill_runs", clone / "figures")
    names = sorted(p.name for p in made)
    assert "sw_sweep_heatmap.png" in names and "synthetic_05_pass1.png" in names and len(names) == 2 + 11
    for rel, data in first.items():
        assert (clone / rel).read_bytes() == data  # byte-identical to what the pipeline made
    again = pipeline.regenerate_figures(clone / "papermill_runs", clone / "figures2")
    assert [p.read_bytes() for p in made] == [p.read_bytes() for p in again]

    # a user's fresh clone runs the committed sweep's own grid and stops after one point: its table and
    # figures hold that point only, not the committed points whose folders are still there
    user = tmp_path_factory.mktemp("user")
    shutil.copytree(root / "papermill_runs", user / "papermill_runs")
    shutil.copytree(root / "notebooks", user / "notebooks")
    pipeline.run_pipeline("smoke", "base", notebooks=["01"], root=user, progress=False)
    one_run, calls = pipeline.one_run, []

    def stopped_after_one(*args, **kwargs):
        calls.append(args[1])
        if len(calls) > 1:
            raise KeyboardInterrupt
        return one_run(*args, **kwargs)

    monkeypatch.setattr(sweep, "one_run", stopped_after_one)
    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep("smoke", grid, "sw", reuse_from="base", root=user, progress=False)
    monkeypatch.undo()
    user_pm = user / "papermill_runs" / "sw"
    assert [p["status"] for p in json.loads((user_pm / "sweep.json").read_text())["points"]] == ["done"] + ["pending"] * 3
    assert (user_pm / ids[1] / "results/05_eval/metrics.csv").exists()  # the committed record, not yet replaced
    assert (user_pm / "sweep_metrics.csv").read_text().splitlines()[1].startswith(f'"{ids[0]}"')
    assert len((user_pm / "sweep_metrics.csv").read_text().splitlines()) == 2
    assert figures_sweep.sweep_table(user_pm)["point"].tolist() == [ids[0]]
    resumed = sweep.run_sweep("smoke", grid, "sw", reuse_from="base", root=user, progress=False)
    assert all(p["status"] == "done" for p in resumed["points"])
    assert len((user_pm / "sweep_metrics.csv").read_text().splitlines()) == 5

    # a user's fresh clone of the committed sweep (papermill_runs/ only) runs another grid under its id
    shutil.copytree(root / "notebooks", clone / "notebooks")
    pipeline.run_pipeline("smoke", "base", notebooks=["01"], root=clone, progress=False)
    other = sweep.run_sweep("smoke", {"lambda_loop": [0.5]}, "sw", reuse_from="base", root=clone, progress=False)
    assert [p["id"] for p in other["points"]] == ["lambda_loop=0.5"] and other["points"][0]["status"] == "done"
    assert json.loads((clone / "papermill_runs/sw/sweep.json").read_text())["grid"] == {"lambda_loop": [0.5]}


def test_cli_run_and_figures(two_notebooks, monkeypatch):
    from typer.testing import CliRunner

    root = two_notebooks
    runner = CliRunner()
    result = runner.invoke(pipeline_cli.app, ["run", "--preset", "smoke", "--run-id", "c1", "-p", "alpha=2",
                                          "--notebooks", "01", "--root", str(root)])
    assert result.exit_code == 0, result.output
    assert "run c1: done" in result.output
    assert json.loads((root / "runs/c1/01_make/config.json").read_text())["alpha"] == 2
    bad = runner.invoke(pipeline_cli.app, ["run", "--run-id", "c1", "-p", "nope=1", "--root", str(root)])
    assert bad.exit_code == 1 and "nope" in bad.output
    monkeypatch.chdir(root)
    result = runner.invoke(pipeline_cli.app, ["figures"])
    assert result.exit_code == 0 and "0 figures in figures" in result.output


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_real_notebooks_01_02_smoke(tmp_path):
    """The runner end to end over the real notebooks 01-02 at the smoke preset (about a minute)."""
    (tmp_path / "notebooks").mkdir()
    for name in ("01_collect.ipynb", "02_insert_calls.ipynb"):
        shutil.copy(ROOT / "notebooks" / name, tmp_path / "notebooks" / name)
    record = pipeline.run_pipeline("smoke", "e2e", root=tmp_path, progress=False)
    assert record["status"] == "done"
    assert "02_insert/stats.csv" in record["results"] and "01_collect/config.json" in record["results"]
    assert sorted(Path(f).name for f in record["figures"]) == ["e2e_02_expert_calls.png", "e2e_02_lengths.png",
                                                               "e2e_02_tokens_by_role.png"]
    # the notebook's own figures (runs/e2e/figures) equal the ones made from the records
    for f in record["figures"]:
        assert (tmp_path / f).read_bytes() == (tmp_path / "runs/e2e/figures" / Path(f).name).read_bytes()
