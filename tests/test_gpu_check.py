"""scripts/gpu_check.py, run on this CPU as the GPU box runs it: the tiny model, `transformers
serve` standing in for vLLM. Every part must report figures, none an error."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_gpu_check_runs_every_part_on_cpu(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--device", "cpu", "--serve",
                           "transformers", "--model", "tiny", "--episodes", "2", "--sft-steps", "1",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=900, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("gpu_check: ")]
    assert [ln.split(":")[1].strip() for ln in lines] == ["rollouts", "sft", "grpo"]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    for part in ("rollouts", "sft", "grpo"):
        assert "error" not in report[part], report[part]
    assert report["rollouts"]["episodes"] == 2 and report["rollouts"]["generated_tokens"] > 0
    assert (tmp_path / "server" / "server_launch.json").exists()
    assert report["sft"]["steps"] == 1 and report["sft"]["train_tok_per_s"] > 0 and report["sft"]["mode"] == "full"
    assert report["grpo"]["steps"] == 1 and report["grpo"]["peak_gib"] > 0
