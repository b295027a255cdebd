"""How fast the run report's index opens with thousands of episodes, in headless Chromium.

    python benchmarks/bench_viewer.py [--episodes 3000]

Builds a run folder of N episodes (copies of real scripted-oracle trajectories on bundled
tasks, spread over 6 conditions), writes the report, opens it from disk in Chromium and prints
the time from navigation start to the rendered index (`performance.now()` after the first
render), the HTML size and the size of one episode file (loaded only when opened)."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tempfile
import time
from functools import partial
from pathlib import Path

from protege.agent.config import AgentConfig
from protege.agent.loop import run_episodes
from protege.app.viewer import write_report
from protege.core.trajectory import TrajectoryWriter
from protege.env.base import EnvConfig
from protege.env.factory import make_environment
from protege.models.reference_expert import ReferenceExpert
from protege.models.scripted import ScriptedPolicy
from protege.tasks.bundled import load_bundled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=3000)
    args = parser.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        raise SystemExit("needs chromium (apt-get install chromium)")
    work = Path(tempfile.mkdtemp(prefix="bench-viewer-"))
    tasks = load_bundled("test")[:4]
    seed_run = work / "seed"
    run_episodes(tasks, ScriptedPolicy(tasks), ReferenceExpert(), partial(make_environment, config=EnvConfig()),
                 AgentConfig.preset("smoke"), writer=TrajectoryWriter(seed_run))
    sources = sorted((seed_run / "trajectories").glob("*.json"))
    run = work / "run"
    for n in range(args.episodes):
        dest = run / f"cond{n % 6}" / "seed0" / "trajectories" / f"ep{n:05d}.json"
        dest.parent.mkdir(parents=True, exist_ok=True)
        text = sources[n % len(sources)].read_text()
        dest.write_text(re.sub(r'"instance_id": "[^"]+"', f'"instance_id": "ep{n:05d}"', text, count=1))
    start = time.perf_counter()
    report = write_report(run)
    write_s = time.perf_counter() - start
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
                          "--dump-dom", report.resolve().as_uri()], capture_output=True, text=True, timeout=300).stdout
    index_ms = re.search(r'data-index-ms="(\d+)"', dom)
    files = list((report.parent / (report.stem + "_files")).iterdir())
    print(f"episodes {args.episodes}; report written in {write_s:.1f} s; html {report.stat().st_size / 1e6:.2f} MB; "
          f"one episode file ~{sum(f.stat().st_size for f in files) / len(files) / 1e3:.0f} kB")
    print(f"index rendered at {index_ms.group(1) if index_ms else '?'} ms after navigation start (Chromium, from disk)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
