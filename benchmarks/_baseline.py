"""A module of this repository as it was at an earlier commit, imported under another name, so
a benchmark can run yesterday's code and today's side by side in one process."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "6fe1094"  # main before the 2026-12-01 boundary and engine work


def baseline_module(path: str, commit: str = BASELINE):
    """`path` (e.g. "protege/sandbox.py") at `commit`, imported as `<stem>_baseline`."""
    source = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout
    name = Path(path).stem + "_baseline"
    file = Path(tempfile.mkdtemp(prefix="bench-baseline-")) / f"{name}.py"
    file.write_text(source)
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
