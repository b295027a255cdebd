"""The HTML run report: what it reads from real run folders, and (marked `browser`) what a real
headless Chromium renders from it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest

from protege.agent.config import AgentConfig
from protege.agent.loop import run_episodes
from protege.app.viewer import episode_record, find_trajectories, write_report
from protege.core.protocols import ExpertReply, ExpertRequest
from protege.core.trajectory import TrajectoryWriter
from protege.env.factory import make_environment
from protege.models.scripted import ScriptedPolicy
from protege.stages.evaluate import grade_run


@dataclass
class OracleHint:
    """An expert that reads the gold patch (so its calls must carry the ORACLE badge)."""

    oracle: bool = True
    name: str = "oracle-hint"
    requests: list[ExpertRequest] = field(default_factory=list)

    def advise(self, request: ExpertRequest) -> ExpertReply:
        return ExpertReply("Edit tinycalc/ranges.py: range(start, stop) should include stop.", 40, 12, oracle=True)


@pytest.fixture
def eval_run(tiny_tasks, env_config, tmp_path):
    """An evaluation-shaped run folder: one condition, one seed, graded (report.json)."""
    tasks = tiny_tasks(2)
    run = tmp_path / "runs" / "r1" / "05_eval" / "sft+expert" / "seed0"
    run_episodes(tasks, ScriptedPolicy(tasks), OracleHint(), partial(make_environment, config=env_config),
                 AgentConfig.preset("smoke"), writer=TrajectoryWriter(run))
    grade_run(run, tasks, env_config)
    return tmp_path / "runs" / "r1", tasks


def test_index_rows_come_from_trajectories_and_grades(eval_run):
    root, tasks = eval_run
    out = write_report(root)
    html = out.read_text()
    index = json.loads(re.search(r"const INDEX = (.*?);</script>", html, re.S).group(1))
    rows = sorted(index["rows"], key=lambda r: r["instance_id"])
    assert [r["instance_id"] for r in rows] == sorted(t.instance_id for t in tasks)
    assert all(r["group"] == "05_eval/sft+expert/seed0" and r["seed"] == 0 for r in rows)
    assert all(r["resolved"] is True and r["exit_status"] == "submitted" and r["expert_calls"] == 1 for r in rows)
    assert all(r["oracle"] and r["expert_tokens"] == 52 for r in rows)
    assert index["summary"][0]["resolved"] == "2/2" and index["summary"][0]["oracle"]
    files = sorted((root / "report_files").iterdir())
    assert len(files) == 2 and all(f.read_text().startswith("window.protegeEpisode(") for f in files)


def test_episode_view_marks_guidance_loops_and_grades(eval_run):
    root, _ = eval_run
    path = find_trajectories(root)[0]
    view = episode_record(root, path)["view"]
    asks = [s for s in view["steps"] if s["expert"]]
    assert len(asks) == 1 and asks[0]["expert"]["oracle"] and "<expert_guidance>" in asks[0]["observation"]
    assert view["grade"]["resolved"] and view["grade"]["fail_to_pass"]["success"]
    assert "+    return list(range(start, stop + 1))" in view["patch"]
    # a looping episode: the same command four times is one marked run
    traj = json.loads(path.read_text())
    traj["steps"] = [{**traj["steps"][0], "index": i, "action": {"name": "bash", "arguments": {"command": "ls -la"}}}
                     for i in range(4)]
    looped = path.with_name("looped.json")
    looped.write_text(json.dumps(traj))
    record = episode_record(root, looped)
    assert record["row"]["loop_runs"] == 1 and [s["loop"] for s in record["view"]["steps"]] == [4, 4, 4, 4]


def test_rl_steps_show_their_reward_terms(eval_run):
    root, _ = eval_run
    src = find_trajectories(root)[0]
    rl = root / "04_rl"
    dest = rl / "trajectories" / "step-000002" / f"001-{src.stem}.json"
    dest.parent.mkdir(parents=True)
    shutil.copy(src, dest)
    (rl / "rollouts.jsonl").write_text(json.dumps({"step": 2, "k": 1, "instance_id": src.stem, "resolved": True,
                                                   "grade_status": "RESOLVED_FULL",
                                                   "terms": {"reward": 0.9, "r_loop": -0.1}}) + "\n")
    record = episode_record(root, dest)
    assert record["row"]["group"] == "04_rl step-000002" and record["row"]["resolved"] is True
    assert record["view"]["rl"] == {"step": 2, "k": 1, "terms": {"reward": 0.9, "r_loop": -0.1}}


def test_a_broken_trajectory_is_listed_not_fatal(eval_run):
    root, _ = eval_run
    bad = root / "05_eval" / "sft+expert" / "seed0" / "trajectories" / "broken.json"
    bad.write_text("{not json")
    index = json.loads(re.search(r"const INDEX = (.*?);</script>", write_report(root).read_text(), re.S).group(1))
    assert len(index["rows"]) == 2 and "broken.json" in index["problems"][0]


def test_view_cli_writes_the_report(eval_run, tmp_path):
    from typer.testing import CliRunner

    from protege.app.cli import app

    root, _ = eval_run
    result = CliRunner().invoke(app, ["view", str(root), "--out", str(tmp_path / "out" / "r.html")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "r.html").exists() and (tmp_path / "out" / "r_files").is_dir()


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.browser
def test_report_renders_in_a_real_browser(eval_run, tmp_path):
    """Headless Chromium (Debian's package) opens the report from disk, with an episode open."""
    browser = chromium()
    assert browser, "the browser test needs Chromium: apt-get install chromium (make test-browser does it)"
    root, _ = eval_run
    out = write_report(root)
    index = json.loads(re.search(r"const INDEX = (.*?);</script>", out.read_text(), re.S).group(1))
    url = out.resolve().as_uri() + "#ep=0"
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
             "--window-size=1400,1000"]
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    assert all(r["instance_id"] in dom for r in index["rows"]), "the episode list did not render"
    assert 'class="msg guidance expert-call"' in dom and 'class="badge oracle">ORACLE' in dom
    assert '<span class="add">+    return list(range(start, stop + 1))</span>' in dom
    assert "FAIL_TO_PASS" in dom and "resolved" in dom
    shot = Path(__file__).resolve().parents[1] / "tests" / "artifacts" / "viewer.png"
    shot.parent.mkdir(exist_ok=True)
    subprocess.run([*flags, f"--screenshot={shot}", url], capture_output=True, timeout=120)
    assert shot.stat().st_size > 10_000
