"""Where things live. Functions, not module constants, so importing creates nothing."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent
BENCHMARK_DIR = PACKAGE_DIR / "bugbench"
BUNDLED_PACKAGES_DIR = BENCHMARK_DIR / "packages"
BUNDLED_DATA_DIR = BENCHMARK_DIR / "data"


def project_root() -> Path:
    """The checkout root (parent of the package); meaningful in a source checkout only."""
    return PACKAGE_DIR.parent


def cache_dir() -> Path:
    """Cache for converted models and built artifacts; `PROTEGE_CACHE` overrides."""
    env = os.environ.get("PROTEGE_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "protege"


def shared_data_dir() -> Path | None:
    """`../shared/data` beside the checkout, where CI and developers keep real SWE-bench
    files; None when absent (a user's fresh clone)."""
    env = os.environ.get("PROTEGE_SHARED_DATA")
    candidate = Path(env) if env else project_root().parent / "shared" / "data"
    return candidate if candidate.is_dir() else None


def safe_name(instance_id: str) -> str:
    """A file name for an instance id, whatever it holds: one path component, never hidden.

    >>> safe_name("django__django-11099")
    'django__django-11099'
    >>> safe_name("../../etc/x")
    '_..__..__etc__x'
    """
    name = "".join(c if c.isalnum() or c in "._-" else "_" for c in instance_id.replace("/", "__"))
    if len(name) > 180:  # file names stop at 255 bytes
        import hashlib

        name = name[:160] + "-" + hashlib.sha256(instance_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return "_" + name if name.startswith(".") or not name else name
