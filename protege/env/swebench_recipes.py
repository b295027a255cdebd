"""Recipes for grading real SWE-bench instances without Docker, derived from swebench's own specs.

swebench builds each (repo, version) environment from a published specification: Python
version, conda packages or a requirements file or an environment.yml, pinned pip packages,
pre-install lines, the install command, extra eval commands. `data/swebench_specs.json` holds
those tables as swebench 4.1.0 published them (`scripts/derive_swebench_specs.py` writes it
from the wheel; swebench 5.x moved them into prebuilt images). A `Recipe` is that
specification translated to a venv and pip, with three kinds of departure, each stated:

- conda packages are installed with pip (same names; `=1.2` becomes `==1.2.*`);
- lines that need root on the host (`apt-get`, `locale-gen`) are not run; the recipe's
  `notes` name them, and a test that needs what they install fails for the gold patch too,
  which the validation (`protege tasks validate-local`) reports;
- `CONSTRAINTS` and `OVERRIDES`: a few hand-written pins and changes, each with the reason it
  was needed here.

Repositories whose build needs a compiler or conda-only packages are refused (`REFUSED`),
with the reason, rather than attempted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

SPECS_FILE = Path(__file__).parent / "data" / "swebench_specs.json"


@dataclass(frozen=True)
class Recipe:
    """How to build a working environment for one (repo, version)."""

    python: str  # major.minor
    install: str = "python -m pip install -e ."  # run in the repository at base_commit, venv active
    pip_packages: tuple[str, ...] = ()  # installed after the dependencies, as swebench does
    pre_install: tuple[str, ...] = ()  # shell lines run in the repository before `install`
    system_site_packages: bool = False  # let the venv see the interpreter's packages
    test_cmd: str | None = None  # None: the instance's own (protege.env.grading.test_command)
    deps: str = "none"  # "requirements" | "environment.yml" | "packages" | "none"
    packages: tuple[str, ...] = ()  # deps == "packages": swebench's conda packages, installed with pip
    reqs_paths: tuple[str, ...] = ()  # deps == "requirements" / "environment.yml": files read at the
    #                                   instance's environment_setup_commit, first one found
    eval_commands: tuple[str, ...] = ()  # run before the test command (exports)
    constraints: tuple[str, ...] = ()  # pip constraints for every install of the recipe (CONSTRAINTS)
    notes: tuple[str, ...] = ()  # what differs from swebench's Docker build, and why


# Repositories the local runner does not attempt, and why (shown in the error and the docs).
REFUSED: dict[str, str] = {
    "astropy/astropy": "builds C and Cython extensions at install (a compiler and numpy headers; the "
                       "1.3 specs pin Python 3.6 wheels that no longer exist)",
    "matplotlib/matplotlib": "builds C++ extensions (freetype, qhull) and takes conda packages "
                             "from environment.yml",
    "scikit-learn/scikit-learn": "builds Cython/C extensions with --no-build-isolation against "
                                 "numpy 1.19 (a compiler; Python 3.6 for 0.20-0.22)",
    "pyvista/pyvista": "needs VTK and system libraries from apt (ffmpeg, libsm6, libxext6, libxrender1) "
                       "for off-screen rendering",
    "swe-bench/humaneval": "not a repository",
}

# Hand-written departures from the derived recipes: (repo, version or "*") -> fields and why.
OVERRIDES: dict[tuple[str, str], tuple[dict, str]] = {
    ("sphinx-doc/sphinx", "*"): (
        {"constraints": ("docutils<0.22",)},
        "setup.py asks for any docutils; 0.22 (2025) removed docutils.utils.roman, which every "
        "sphinx of these versions imports (swebench's images got 0.21)"),
    ("pydicom/pydicom", "*"): (
        {"pip_packages": ("pytest<8",)},
        "swebench installs an unpinned pytest; pytest 8 no longer calls nose-style setup() "
        "methods, which pydicom's tests of these versions use"),
    # Sphinx's HTML tests before 6.1 expect Pygments' markup without whitespace tokens (2.14, Jan 2023)
    **{("sphinx-doc/sphinx", v): ({"constraints": ("Pygments<2.14",)},
                                  "setup.py asks for any Pygments; 2.14 wraps whitespace in <span class=\"w\">, which "
                                  "these versions' HTML tests do not expect (sphinx-doc__sphinx-10323's "
                                  "test_literal_include_linenos fails with 2.19, passes with 2.13)")
       for v in ("1.5", "1.6", "1.7", "1.8", "2.0", "2.1", "2.2", "2.3", "2.4", "3.0", "3.1", "3.2", "3.3", "3.4",
                 "3.5", "4.0", "4.1", "4.2", "4.3", "4.4", "4.5", "5.0", "5.1", "5.2", "5.3", "6.0")},
}

# pip constraints on every derived recipe, each with its reason: what an unpinned package
# resolves to today may be newer than anything swebench's environments were built with.
CONSTRAINTS: dict[str, str] = {
    "numpy<2": "swebench's environments were built before NumPy 2.0 (June 2024); unpinned numpy (pvlib's "
               "pandas/scipy, pydicom's numpy) now resolves to 2.x, which removed np.Inf and friends",
}

# conda package names whose PyPI name differs; None: no PyPI package (dropped, named in notes).
CONDA_TO_PIP: dict[str, str | None] = {
    "matplotlib-base": "matplotlib", "dask-core": "dask", "pytables": "tables", "iris": "scitools-iris",
    "cdms2": None, "hdf5": None,  # conda-only: cdms2 is not on PyPI; h5py's wheels carry hdf5
    "python-graphviz": "graphviz", "pynio": None, "pseudonetcdf": "PseudoNetCDF", "python": None, "pip": None,
}


@cache
def load_specs(path: str | None = None) -> dict:
    return json.loads(Path(path or SPECS_FILE).read_text())


class NoRecipe(KeyError):
    """No local recipe for an instance: refused (with the reason) or not in swebench's specs."""


def conda_to_pip(spec: str) -> str | None:
    """One conda package spec as a pip requirement (None when it has no PyPI counterpart).

    >>> conda_to_pip("numpy=1.19")
    'numpy==1.19.*'
    >>> conda_to_pip("'numpy==1.19.2'")
    'numpy==1.19.2'
    >>> conda_to_pip("matplotlib-base>=3.3")
    'matplotlib>=3.3'
    >>> conda_to_pip("pynio") is None
    True
    """
    spec = spec.strip().strip("'\"")
    m = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", spec)
    if not m:
        return spec
    name, rest = m.group(1), m.group(2).replace(" ", "")
    name = CONDA_TO_PIP.get(name.lower(), name)
    if name is None:
        return None
    if re.fullmatch(r"=[^=<>!].*", rest):  # conda's single '=' is a prefix match
        rest = "==" + rest[1:] + ("" if rest.endswith("*") else ".*")
    return name + rest


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def merge_pins(base: tuple[str, ...], extra: tuple[str, ...]) -> tuple[str, ...]:
    """`base` with each package of `extra` replacing the same package in place, or appended (old
    pip refuses a package named twice in one command).

    >>> merge_pins(("pytest", "numpy==1.2"), ("pytest<8", "six"))
    ('pytest<8', 'numpy==1.2', 'six')
    """
    pins = {_name(p): p for p in extra}
    out = tuple(pins.pop(_name(p), p) for p in base)
    return out + tuple(pins.values())


def requirements_text(read: Callable[[str], str | None], paths: tuple[str, ...]) -> str:
    """swebench's `get_requirements_by_commit` over a reader of the repository's files: the first
    of `paths` found, its `-r` includes inlined, lines `-e .`, comments and `.[test` left out,
    yanked packages replaced (`types-pkg_resources`).

    >>> files = {"requirements/dev.txt": "-r base.txt\\n-e .\\npytest==7.1\\n# a comment",
    ...          "requirements/base.txt": "click>=8\\n"}
    >>> print(requirements_text(files.get, ("requirements_dev.txt", "requirements/dev.txt")))
    click>=8
    <BLANKLINE>
    pytest==7.1
    """
    for path in paths:
        text = read(path)
        if text is not None:
            break
    else:
        raise FileNotFoundError(f"none of {list(paths)} in the repository at its environment_setup_commit")
    req_dir = path.rsplit("/", 1)[0] if "/" in path else ""

    def keep(line: str) -> bool:
        return not any(line.strip().startswith(x) for x in ("-e .", "#", ".[test"))

    original, extra = [], []
    for line in text.split("\n"):
        if line.strip().startswith("-r"):
            name = line.strip()[2:].strip()
            included = read(f"{req_dir}/{name}" if req_dir else name)
            extra += [ln for ln in (included or "").split("\n") if keep(ln)]
        elif keep(line):
            original.append(line)
    extra.append("\n".join(original))
    return re.sub(r"^types-pkg_resources([<>=!~]=?.*|$)", "types-setuptools", "\n".join(extra), flags=re.M)


def environment_yml_requirements(yml_text: str) -> tuple[list[str], list[str]]:
    """The dependencies of a conda environment.yml as pip requirements, and those dropped.

    >>> yml = "name: x\\ndependencies:\\n  - python=3.10\\n  - numpy\\n  - pynio\\n  - pip:\\n      - pytest-env\\n"
    >>> environment_yml_requirements(yml)
    (['numpy', 'pytest-env'], ['pynio'])
    """
    import yaml

    deps = (yaml.safe_load(yml_text) or {}).get("dependencies") or []
    kept, dropped = [], []
    for dep in deps:
        if isinstance(dep, dict):
            kept += [str(p) for p in dep.get("pip", [])]
            continue
        pip = conda_to_pip(str(dep))
        name = re.split(r"[<>=!~ ]", str(dep).strip(), maxsplit=1)[0]
        if pip is not None:
            kept.append(pip)
        elif name.lower() not in ("python", "pip"):
            dropped.append(name)
    return kept, dropped


def _root_only(line: str) -> bool:
    return bool(re.search(r"\bapt-get\b|\blocale-gen\b|/etc/", line))


def derive_recipe(repo: str, version: str, specs: dict | None = None) -> Recipe:
    """The local recipe for (repo, version), from swebench's specification; NoRecipe with the
    reason when the repository is refused or swebench has no such version."""
    if repo in REFUSED:
        raise NoRecipe(f"{repo} is not graded locally: {REFUSED[repo]}; use the Docker harness "
                       f"(protege.env.harness)")
    data = specs or load_specs()
    spec = data["specs"].get(repo, {}).get(version)
    if spec is None:
        known = sorted(data["specs"].get(repo, {}))
        raise NoRecipe(f"swebench {data['source']['version']} has no specification for ({repo!r}, version "
                       f"{version!r})" + (f"; its versions of {repo}: {known}" if known else
                                          "; that repository is not in swebench's Python specs"))
    notes: list[str] = []
    packages = spec.get("packages", "")
    deps, conda, paths = "none", (), ()
    if packages == "requirements.txt":
        deps, paths = "requirements", tuple(data["reqs_paths"][repo])
    elif packages == "environment.yml":
        deps, paths = "environment.yml", tuple(data["env_yml_paths"][repo])
        notes.append("environment.yml installed with pip (conda-only packages dropped) under swebench's "
                     "== pins as constraints (installed afterwards, they would downgrade numpy under "
                     "packages compiled against a newer one)")
    elif packages:
        pips = [conda_to_pip(p) for p in re.findall(r"'[^']*'|\S+", packages)]
        deps, conda = "packages", tuple(p for p in pips if p)
        notes.append(f"conda packages installed with pip: {packages}")
    pre, skipped = [], []
    for line in spec.get("pre_install", []):
        (skipped if _root_only(line) else pre).append(line)
    evals = []
    for line in spec.get("eval_commands", []):
        (skipped if _root_only(line) else evals).append(line)
    if skipped:
        notes.append("not run (needs root on the host): " + "; ".join(skipped))
    if spec.get("test_cmd", "").startswith("tox "):
        # `tox --current-env` runs `python` through a link to the venv's python; Python 3.9 looks for the
        # venv's pyvenv.cfg beside the link, not beside its target, and starts without the venv's
        # packages. The plugin passes every variable on, so the venv's site-packages go on PYTHONPATH
        # (conda environments, swebench's, need no pyvenv.cfg).
        evals.append("export PYTHONPATH=\"$(python -c 'import sysconfig; print(sysconfig.get_paths()[\"purelib\"])')"
                     "${PYTHONPATH:+:$PYTHONPATH}\"")
        notes.append("tox --current-env: the venv's site-packages on PYTHONPATH")
    recipe = Recipe(python=spec["python"], install=spec.get("install", "python -m pip install -e ."),
                    pip_packages=tuple(spec.get("pip_packages", ())), pre_install=tuple(pre),
                    deps=deps, packages=conda, reqs_paths=paths, eval_commands=tuple(evals),
                    constraints=tuple(CONSTRAINTS))
    for key in ((repo, "*"), (repo, version)):
        if key in OVERRIDES:
            fields, why = OVERRIDES[key]
            for key_ in ("pip_packages", "constraints"):
                if key_ in fields:
                    fields = {**fields, key_: merge_pins(getattr(recipe, key_), fields[key_])}
            recipe = replace(recipe, **fields)
            notes.append(f"override: {why}")
    return replace(recipe, notes=tuple(notes))


def supported_repos(specs: dict | None = None) -> list[str]:
    return sorted(r for r in (specs or load_specs())["specs"] if r not in REFUSED)
