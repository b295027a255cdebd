"""The main job: `python -m protege.main --preset small` is the `protege pipeline run --preset small`
command (what `make small` runs), kept for scripts that call it.

Notebooks 01-06 executed with papermill for one preset into `papermill_runs/<run-id>/`
(artifacts in `runs/<run-id>/`, figures in `figures/`), resumable: run it again after an
interruption and it goes on from the unfinished notebook (`protege.pipeline`). The offline
presets use the ORACLE reference demonstrator and reference expert (they read the gold patch);
`full` uses an OpenAI-compatible expert and a GPU.
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> dict:
    """`protege pipeline run` with `small` as the default preset; returns the run record."""
    from protege.cli import invoke
    from protege.paths import project_root

    return invoke(["pipeline", "run", "--preset", "small", "--root", str(project_root())], argv,
                  "protege")


if __name__ == "__main__":
    main()
