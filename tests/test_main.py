import json
import shutil
from pathlib import Path

from protege.app.cli import app

ROOT = Path(__file__).resolve().parent.parent


def test_main_job_runs_the_pipeline_notebooks(tmp_path):
    """The README's main job is the papermill pipeline: at smoke scale, notebook 01 executed into
    papermill_runs/<run-id>/ with its record, real (oracle) trajectories graded and kept."""
    (tmp_path / "notebooks").mkdir()
    shutil.copy(ROOT / "notebooks" / "01_collect.ipynb", tmp_path / "notebooks")
    record = app(["pipeline", "run", "--preset", "smoke", "--run-id", "t", "--notebooks", "01", "--root", str(tmp_path)],
                 standalone_mode=False)
    assert record["status"] == "done" and record["notebooks"] == {"01_collect.ipynb": "done"}
    run = json.loads((tmp_path / "papermill_runs" / "t" / "run.json").read_text())
    assert run["preset"] == "smoke" and run["run_dir"] == "runs/t"
    assert (tmp_path / "papermill_runs" / "t" / "01_collect.ipynb").exists()
    kept = (tmp_path / "runs" / "t" / "01_collect" / "live" / "kept.jsonl").read_text().splitlines()
    assert kept and all(json.loads(line)["oracle_demonstrator"] for line in kept)
