import json

from protege.main import main


def test_main_job_smoke_preset_runs_and_grades(tmp_path):
    """The README's main job at the smoke scale: a real (tiny) model, real episodes, real grading."""
    main(["--preset", "smoke", "--run-dir", str(tmp_path / "run")])
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert len(report) == 2 and all(r["status"] in ("RESOLVED_FULL", "RESOLVED_NO", "RESOLVED_PARTIAL") for r in report.values())
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["policy"] == "transformers:tiny" and config["agent"]["step_limit"] == 6
