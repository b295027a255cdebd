"""Derive protege/env/data/swebench_specs.json from swebench's own published specifications.

swebench <= 4.x ships, per repository and version, the Python version, conda and pip
packages, pre-install lines, install command and test command it builds each Docker
environment from (`swebench/harness/constants/python.py`); swebench 5.x moved them into its
prebuilt images. This script downloads that wheel from the package index (no install),
reads the file without importing swebench, and writes the tables as JSON with their
provenance, so the local runner's recipes are derived, not copied by hand:

    python scripts/derive_swebench_specs.py [--version 4.1.0] [--out protege/env/data/swebench_specs.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import runpy
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

MEMBER = "swebench/harness/constants/python.py"
TABLES = ("MAP_REPO_VERSION_TO_SPECS_PY", "MAP_REPO_TO_REQS_PATHS", "MAP_REPO_TO_ENV_YML_PATHS")


def derive(version: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", f"swebench=={version}", "--no-deps",
                        "--only-binary", ":all:", "-q", "-d", tmp], check=True)
        wheel = next(Path(tmp).glob("swebench-*.whl"))
        sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
        source = Path(tmp) / "python.py"
        with zipfile.ZipFile(wheel) as zf:
            source.write_bytes(zf.read(MEMBER))
        # The file is plain data (dict literals and loops, no imports): run it as a script.
        tables = runpy.run_path(str(source))
    specs, reqs, ymls = (tables[name] for name in TABLES)
    return {
        "source": {"package": "swebench", "version": version, "wheel": wheel.name, "wheel_sha256": sha,
                   "member": MEMBER, "tables": list(TABLES),
                   "made_by": "scripts/derive_swebench_specs.py"},
        "specs": {repo: {v: specs[repo][v] for v in sorted(specs[repo])} for repo in sorted(specs)},
        "reqs_paths": reqs,
        "env_yml_paths": ymls,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default="4.1.0")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "protege/env/data/swebench_specs.json"))
    args = parser.parse_args()
    data = derive(args.version)
    Path(args.out).write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    print(f"wrote {args.out}: {sum(len(v) for v in data['specs'].values())} (repo, version) specs "
          f"from {data['source']['wheel']} (sha256 {data['source']['wheel_sha256'][:12]})")


if __name__ == "__main__":
    main()
