"""Wall time of one sandboxed `echo`: the sandbox before the episode-boundary work (issue 12,
loaded from git at BASELINE) against today's, interleaved in one process on the same machine.

    python benchmarks/bench_sandbox.py [--n 200] [--baseline 6fe1094]

Today's path is what an episode runs: a LocalEnvironment's command (per-episode uid, private
/tmp folder, memory and disk watchdog) under bubblewrap where installed. The last line is
`sandbox echo slowdown: N.NNx` (today's median / the baseline's median)."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _baseline import baseline_module

from protege.env.base import EnvConfig
from protege.env.local import LocalEnvironment
from protege.env.sandbox import bwrap_path
from protege.tasks.bundled import load_bundled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="commands per path")
    parser.add_argument("--baseline", default="6fe1094", help="commit of the baseline sandbox")
    args = parser.parse_args()
    old = baseline_module("protege/sandbox.py", args.baseline)
    task = load_bundled("test")[0]
    with LocalEnvironment(task, EnvConfig()) as env:
        old_ws = Path(tempfile.mkdtemp(prefix="bench-old-"))
        (old_ws / "repo").mkdir()
        (old_ws / "home").mkdir()
        old_cfg = old.SandboxConfig()
        old.hand_over(old_ws, old_cfg)
        times: dict[str, list[float]] = {"baseline": [], "today": []}
        for i in range(args.n):  # interleaved, so load on the machine hits both paths alike
            order = [("baseline", lambda: old.run_command("echo hi", old_ws / "repo", old_ws / "home", old_cfg,
                                                          writable=[old_ws])),
                     ("today", lambda: env.run("echo hi"))]
            for name, call in order if i % 2 else reversed(order):
                start = time.perf_counter()
                result = call()
                times[name].append(time.perf_counter() - start)
                assert result.output.strip() == "hi", (name, result.observation())
    print(f"python {sys.version.split()[0]}, bwrap {'yes' if bwrap_path() else 'no'}, uid {os.geteuid()}, "
          f"cpus {os.cpu_count()}, load {os.getloadavg()[0]:.2f}, n {args.n} per path")
    for name, values in times.items():
        print(f"{name:9s} median {1000 * statistics.median(values):7.2f} ms   p90 "
              f"{1000 * sorted(values)[int(0.9 * len(values))]:7.2f} ms")
    print(f"sandbox echo slowdown: {statistics.median(times['today']) / statistics.median(times['baseline']):.2f}x")


if __name__ == "__main__":
    main()
