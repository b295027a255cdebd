"""The main job: `python -m protege.main --preset small`, the same as `protege pipeline run
--preset small` (what `make small` runs), kept for scripts that call it.

Notebooks 01-06 executed with papermill for one preset into `papermill_runs/<run-id>/`
(artifacts in `runs/<run-id>/`, figures in `figures/`), resumable: run it again after an
interruption and it goes on from the unfinished notebook (`protege.pipeline`). The offline
presets use the ORACLE reference demonstrator and reference expert (they read the gold patch);
`full` uses an OpenAI-compatible expert and a GPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from protege.paths import project_root


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=("smoke", "small", "full"), default="small")
    parser.add_argument("--run-id", default=None, help="default: the preset name")
    parser.add_argument("--notebooks", default=None, help="comma-separated numbers (default: all)")
    parser.add_argument("--root", type=Path, default=None, help="checkout holding notebooks/ (default: this one)")
    parser.add_argument("-p", "--param", action="append", default=[], help="key=value for the notebooks")
    parser.add_argument("--reuse-records", action="store_true",
                        help="skip notebooks recorded done in papermill_runs/ even when their artifacts were "
                             "not made on this machine (default: such notebooks run again)")
    args = parser.parse_args(argv)
    from protege import pipeline

    start = time.monotonic()
    try:
        record = pipeline.run_pipeline(args.preset, args.run_id, pipeline.parse_assignments(args.param),
                                       args.notebooks.split(",") if args.notebooks else None,
                                       root=args.root or project_root(), reuse_records=args.reuse_records)
    except pipeline.PipelineError as exc:
        sys.exit(f"main job: {exc}")
    print(pipeline.run_summary(record))
    print(f"main job ({args.preset}): {time.monotonic() - start:.0f} s wall")
    return record


if __name__ == "__main__":
    main()
