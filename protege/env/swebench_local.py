"""Real SWE-bench instances of pure-Python repositories graded without Docker.

SWE-bench's harness runs each instance in its prebuilt image; where no image registry is
reachable, repositories whose tests need only Python can be graded locally instead:

1. find an interpreter of the version the instance's recipe names (PATH, pyenv, `uv python
   find`); a clear `PythonNotFound` otherwise;
2. in the fresh workspace (`LocalEnvironment`), create a venv beside the repository and
   install the version-pinned recipe, with the network on (pip needs an index);
3. apply the model patch and the test patch and run the instance's test command with the
   network off, graded by swebench's log parser (`protege.env.grading.grade`);
4. tests whose failure output shows network errors are classified `network`, listed
   separately and left out of the verdict, but only when the gold patch fails them the same
   way under the same sandbox (graded once per instance and kept): a wrong patch that makes a
   test raise `ConnectionError` is a failure, not a network test.

Differences from the harness, stated plainly: pip instead of conda, and the install runs
before the model patch is applied (an editable install, so source changes still apply;
changes to packaging metadata do not).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from protege.core.paths import safe_name
from protege.env.base import EnvConfig, Environment, EnvironmentError_
from protege.env.grading import GradeReport, grade, patch_sha256, report_from_log, test_command
from protege.env.sandbox import SandboxConfig, bwrap_path
from protege.tasks.schema import Task

VENV = "../home/venv"  # in the episode's HOME beside the repository, so it never shows up in a diff


@dataclass(frozen=True)
class Recipe:
    """How to build a working environment for one (repo, version)."""

    python: str  # major.minor
    install: str = "python -m pip install -e ."  # run in the repository, venv active
    pip_packages: tuple[str, ...] = ()  # installed first, pinned
    pre_install: tuple[str, ...] = ()  # shell lines run before anything else
    system_site_packages: bool = False  # let the venv see the interpreter's packages
    test_cmd: str | None = None  # None: the instance's own (protege.env.grading.test_command)


# Pins from swebench's MAP_REPO_VERSION_TO_SPECS (swebench/harness/constants/python.py,
# versions <= 4.x; swebench 5.x moved them into its prebuilt images).
_PYTEST_PINS: dict[str, tuple[str, ...]] = {
    "4.4": ("atomicwrites==1.4.1", "attrs==23.1.0", "more-itertools==10.1.0", "pluggy==0.13.1",
            "py==1.11.0", "setuptools==68.0.0", "six==1.16.0"),
    "4.5": ("atomicwrites==1.4.1", "attrs==23.1.0", "more-itertools==10.1.0", "pluggy==0.11.0",
            "py==1.11.0", "setuptools==68.0.0", "six==1.16.0", "wcwidth==0.2.6"),
    "4.6": ("atomicwrites==1.4.1", "attrs==23.1.0", "more-itertools==10.1.0", "packaging==23.1",
            "pluggy==0.13.1", "py==1.11.0", "six==1.16.0", "wcwidth==0.2.6"),
    **{v: ("atomicwrites==1.4.1", "attrs==23.1.0", "more-itertools==10.1.0", "packaging==23.1",
           "pluggy==0.13.1", "py==1.11.0", "wcwidth==0.2.6") for v in ("5.0", "5.1", "5.2")},
    "5.3": ("attrs==23.1.0", "more-itertools==10.1.0", "packaging==23.1", "pluggy==0.13.1",
            "py==1.11.0", "wcwidth==0.2.6"),
    "5.4": ("py==1.11.0", "packaging==23.1", "attrs==23.1.0", "more-itertools==10.1.0", "pluggy==0.13.1"),
    "6.0": ("attrs==23.1.0", "iniconfig==2.0.0", "more-itertools==10.1.0", "packaging==23.1",
            "pluggy==0.13.1", "py==1.11.0", "toml==0.10.2"),
    **{v: ("attrs==23.1.0", "iniconfig==2.0.0", "packaging==23.1", "pluggy==0.13.1", "py==1.11.0",
           "toml==0.10.2") for v in ("6.2", "6.3")},
    "7.0": ("attrs==23.1.0", "iniconfig==2.0.0", "packaging==23.1", "pluggy==0.13.1", "py==1.11.0"),
    **{v: ("attrs==23.1.0", "iniconfig==2.0.0", "packaging==23.1", "pluggy==0.13.1", "py==1.11.0",
           "tomli==2.0.1") for v in ("7.1", "7.2")},
    **{v: ("iniconfig==2.0.0", "packaging==23.1", "pluggy==1.3.0", "exceptiongroup==1.1.3",
           "tomli==2.0.1") for v in ("7.4", "8.0")},
}
_FLASK_PINS = ("click==8.1.3", "itsdangerous==2.1.2", "Jinja2==3.1.2", "MarkupSafe==2.1.1", "Werkzeug==2.3.7",
               "pytest<8")  # swebench took pytest from the repo's requirements files; not a swebench pin

RECIPES: dict[tuple[str, str], Recipe] = {
    **{("pytest-dev/pytest", v): Recipe("3.9", pip_packages=pins) for v, pins in _PYTEST_PINS.items()},
    ("pallets/flask", "2.0"): Recipe("3.9", pip_packages=("Werkzeug==2.3.7", "Jinja2==3.0.1",
                                                          "itsdangerous==2.1.2", "click==8.0.1",
                                                          "MarkupSafe==2.1.3", "pytest<8")),
    ("pallets/flask", "2.1"): Recipe("3.10", pip_packages=_FLASK_PINS),
    **{("pallets/flask", v): Recipe("3.11", pip_packages=_FLASK_PINS) for v in ("2.2", "2.3")},
    **{("marshmallow-code/marshmallow", v): Recipe("3.9", install="python -m pip install -e '.[dev]'")
       for v in ("2.18", "2.19", "2.20", "3.0", "3.1", "3.2", "3.4", "3.8", "3.9", "3.10", "3.11",
                 "3.12", "3.13", "3.15", "3.16", "3.19")},
}


class PythonNotFound(RuntimeError):
    """No interpreter of the wanted version could be found."""


def recipe_for(task: Task, recipes: dict[tuple[str, str], Recipe] | None = None) -> Recipe:
    recipes = RECIPES if recipes is None else recipes
    try:
        return recipes[(task.repo, task.version)]
    except KeyError:
        known = sorted({repo for repo, _ in recipes})
        raise KeyError(f"instance {task.instance_id!r}: no local recipe for ({task.repo!r}, version "
                       f"{task.version!r}); local grading covers {known}; use the Docker harness "
                       f"(protege.env.harness) for the rest") from None


def _version_of(python: str) -> str | None:
    try:
        out = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def find_python(version: str) -> Path:
    """An interpreter for `version` ("3.9"): PATH, then pyenv, then `uv python find`."""
    candidates: list[str] = []
    if found := shutil.which(f"python{version}"):
        candidates.append(found)
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    for prefix in sorted((pyenv_root / "versions").glob(f"{version}.*"), reverse=True):
        candidates.append(str(prefix / "bin" / f"python{version}"))
    if uv := shutil.which("uv"):
        out = subprocess.run([uv, "python", "find", version], capture_output=True, text=True, timeout=60,
                             check=False)
        if out.returncode == 0 and out.stdout.strip():
            candidates.append(out.stdout.strip())
    for python in candidates:
        if Path(python).exists() and _version_of(python) == version:
            # pyenv shims on PATH re-dispatch; the real binary is what a venv should point at.
            real = subprocess.run([python, "-c", "import sys; print(sys.executable)"],
                                  capture_output=True, text=True, timeout=30, check=False).stdout.strip()
            return Path(real or python)
    raise PythonNotFound(f"no Python {version} found (tried python{version} on PATH, "
                         f"{pyenv_root}/versions/{version}.*, `uv python find {version}`); install one "
                         f"with `pyenv install {version}` or `uv python install {version}`")


def _prefix(python: Path) -> Path:
    out = subprocess.run([str(python), "-c", "import sys; print(sys.base_prefix)"],
                         capture_output=True, text=True, timeout=30, check=True)
    return Path(out.stdout.strip())


def sandbox_python(python: Path, cache_dir: str | Path | None = None) -> tuple[Path, dict[str, str]]:
    """The interpreter as the sandbox can run it, and env additions for it.

    The sandbox hides the caller's HOME (where pyenv keeps its builds) and runs commands as
    an unprivileged uid; an installation under HOME is copied once into a shared,
    world-readable cache (pythons find their prefix relative to the executable). The cache
    must not be under /tmp, which the sandbox replaces with a private one.
    """
    prefix = _prefix(python)
    home = Path.home().resolve()
    exposed = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()}
    if home == Path("/") or not prefix.resolve().is_relative_to(home) or prefix.resolve() in exposed:
        return python, {}
    cache = Path(cache_dir or os.environ.get("PROTEGE_PYTHON_CACHE", "/var/tmp/protege-pythons"))
    staged = cache / f"{prefix.name}-{hashlib.sha1(str(prefix).encode()).hexdigest()[:8]}"
    if not (staged / ".complete").exists():
        cache.mkdir(parents=True, exist_ok=True)
        tmp = staged.with_name(staged.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(prefix, tmp, symlinks=True)
        subprocess.run(["chmod", "-R", "a+rX", str(tmp)], check=True)
        (tmp / ".complete").write_text(str(prefix))
        try:
            tmp.rename(staged)
        except OSError:  # another process staged it first
            shutil.rmtree(tmp, ignore_errors=True)
    # Builds with a shared libpython carry an absolute RUNPATH into the old prefix.
    return staged / python.relative_to(prefix), {"LD_LIBRARY_PATH": str(staged / "lib")}


def install_env() -> dict[str, str]:
    """pip's index settings from the caller, for the install step only (no other variables)."""
    keys = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_TRUSTED_HOST")
    return {k: os.environ[k] for k in keys if os.environ.get(k)}


def setup_script(recipe: Recipe, python: Path) -> str:
    lines = [*recipe.pre_install,
             f"{python} -m venv {'--system-site-packages ' if recipe.system_site_packages else ''}{VENV}",
             f". {VENV}/bin/activate"]
    if recipe.pip_packages:
        lines.append("python -m pip install " + " ".join(f"'{p}'" for p in recipe.pip_packages))
    lines.append(recipe.install)
    # `pytest` in the test command must be this venv's even when pytest comes from the
    # interpreter's site-packages (no script here; PATH would find the caller's).
    lines.append(f"[ -e {VENV}/bin/pytest ] || {{ printf '#!/bin/sh\\nexec \"%s/bin/python\" -m pytest \"$@\"\\n' "
                 f"\"$VIRTUAL_ENV\" > {VENV}/bin/pytest && chmod +x {VENV}/bin/pytest; }}")
    return "set -e\n" + "\n".join(lines)


# What a test's failure looks like when it needed the internet and the sandbox had none.
NETWORK_RE = re.compile(
    r"ConnectionError|ConnectionRefusedError|NewConnectionError|MaxRetryError|socket\.gaierror|gaierror"
    r"|Name or service not known|Temporary failure in name resolution|No address associated with hostname"
    r"|urlopen error|URLError|Network is unreachable|nodename nor servname|getaddrinfo failed"
    r"|Failed to establish a new connection|Could not resolve host")
_SECTION_RE = re.compile(r"^_{3,} (?P<name>.+?) _{3,}$", re.MULTILINE)


def failure_text(log: str, test_id: str) -> str:
    """Everything the pytest log says about one test: its failure section and summary lines."""
    parts = test_id.split("::")
    headline = ".".join(parts[1:]) if len(parts) > 1 else test_id
    texts = [ln for ln in log.splitlines() if test_id in ln]
    heads = list(_SECTION_RE.finditer(log))
    for i, m in enumerate(heads):
        if m.group("name") in (headline, parts[-1]):
            end = heads[i + 1].start() if i + 1 < len(heads) else len(log)
            body = log[m.end():end]
            texts.append(re.split(r"\n={3,} ", body, maxsplit=1)[0])  # up to the next === header
    return "\n".join(texts)


def network_failures(log: str, failed: list[str]) -> list[str]:
    """The failed tests whose output shows a network error."""
    return [t for t in failed if NETWORK_RE.search(failure_text(log, t))]


@dataclass
class LocalReport:
    """A local grade: swebench's raw verdict plus network-failing tests set apart."""

    instance_id: str
    outcome: str  # "resolved" | "unresolved" | "network" (the verdict hinges on network tests) | "error"
    resolved: bool  # swebench's verdict on the tests that are not network-classified
    network_tests: list[str] = field(default_factory=list)  # failed with network errors: no verdict
    network_isolated: bool = True  # False: the sandbox could not turn the network off
    python: str | None = None
    grade: GradeReport | None = None  # swebench's verdict on every test, network ones included
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _setup(recipe: Recipe, python: Path, env_add: dict[str, str], timeout_s: float):
    def setup(env: Environment) -> None:
        if not hasattr(env, "run_with"):
            raise EnvironmentError_("local SWE-bench grading needs a LocalEnvironment (backend 'local')")
        sb = replace(env.config.sandbox, network=True, timeout_s=timeout_s,
                     extra_env={**env.config.sandbox.extra_env, **env_add, **install_env()})
        result = env.run_with(sb, setup_script(recipe, python), timeout_s=timeout_s)
        if not result.ok:
            raise EnvironmentError_(f"installing the {recipe.python} environment failed:\n"
                                    f"{result.observation()[-2000:]}")
    return setup


_GOLD_NETWORK: dict[tuple[str, str], list[str]] = {}  # (instance, sandbox settings) -> gold's network tests


def _gold_network_tests(task: Task, env_config: EnvConfig, recipe: Recipe, log_dir: str | Path | None,
                        install_timeout_s: float, test_timeout_s: float) -> list[str] | str:
    """The tests that fail with network errors under the gold patch in the same sandbox (graded
    once per instance and settings, kept beside the logs), or why the gold run failed."""
    key = (task.instance_id, repr(env_config.sandbox))
    cached = Path(log_dir) / "gold" / f"{safe_name(task.instance_id)}.network.json" if log_dir else None
    if key not in _GOLD_NETWORK:
        if cached is not None and cached.exists() and json.loads(cached.read_text()).get("key") == key[1]:
            _GOLD_NETWORK[key] = json.loads(cached.read_text())["network_tests"]
        else:
            gold = grade_local(task, task.patch, env_config, recipe, Path(log_dir) / "gold" if log_dir else None,
                               install_timeout_s, test_timeout_s, model_name="gold")
            if gold.outcome == "error":
                return f"the gold patch could not be graded to check the network tests: {gold.error}"
            _GOLD_NETWORK[key] = gold.network_tests
            if cached is not None:
                cached.parent.mkdir(parents=True, exist_ok=True)
                cached.write_text(json.dumps({"key": key[1], "network_tests": gold.network_tests}))
    return _GOLD_NETWORK[key]


def grade_local(task: Task, model_patch: str | None, env_config: EnvConfig | None = None,
                recipe: Recipe | None = None, log_dir: str | Path | None = None,
                install_timeout_s: float = 1800, test_timeout_s: float = 900,
                model_name: str = "model") -> LocalReport:
    """Grade one patch for a real (pure-Python) SWE-bench instance without Docker."""
    env_config = env_config or EnvConfig()
    if env_config.backend != "local":
        raise ValueError("grade_local runs without Docker: use EnvConfig(backend='local')")
    try:
        recipe = recipe or recipe_for(task)
        python, env_add = sandbox_python(find_python(recipe.python))
    except (KeyError, PythonNotFound) as exc:
        return LocalReport(task.instance_id, "error", False, error=str(exc.args[0]))
    sb: SandboxConfig = env_config.sandbox
    isolated = not sb.network and sb.isolation != "none" and bwrap_path() is not None
    activate = f". {VENV}/bin/activate\n"
    local_task = replace(task, extra={**task.extra,
                                      "test_cmd": activate + (recipe.test_cmd or test_command(task))})
    config = replace(env_config, sandbox=replace(sb, extra_env={**sb.extra_env, **env_add}))
    report = grade(local_task, model_patch, config, log_dir=log_dir, model_name=model_name,
                   test_timeout_s=test_timeout_s, setup=_setup(recipe, python, env_add, install_timeout_s))
    base = LocalReport(task.instance_id, "error", False, network_isolated=isolated, python=str(python),
                       grade=report, error=report.error)
    if report.status == "ERROR" or not report.log_path or not report.patch_applied:
        return replace(base, outcome="error" if report.status == "ERROR" else "unresolved")
    log = Path(report.log_path).read_text(encoding="utf-8", errors="replace")
    failed = report.fail_to_pass.get("failure", []) + report.pass_to_pass.get("failure", [])
    network = network_failures(log, failed)
    if network and patch_sha256(model_patch) != patch_sha256(task.patch):
        gold = _gold_network_tests(task, env_config, recipe, log_dir, install_timeout_s, test_timeout_s)
        if isinstance(gold, str):
            return replace(base, outcome="error", error=gold)
        network = [t for t in network if t in gold]
    if not network:
        return replace(base, outcome="resolved" if report.resolved else "unresolved", resolved=report.resolved)
    # swebench's own report functions on the same log, without the network-classified tests.
    rest = replace(task, FAIL_TO_PASS=[t for t in task.FAIL_TO_PASS if t not in network],
                   PASS_TO_PASS=[t for t in task.PASS_TO_PASS if t not in network])
    verdict, _ = report_from_log(rest, model_patch, log, Path(report.log_path).with_suffix(".nonet.log"),
                                 model_name)
    resolved = bool(verdict["resolved"]) and bool(rest.FAIL_TO_PASS)
    outcome = "network" if not rest.FAIL_TO_PASS else ("resolved" if resolved else "unresolved")
    return replace(base, outcome=outcome, resolved=resolved, network_tests=network)


RUNNERS = ("sandbox", "swebench-local")


def grade_entry(task: Task, patch: str | None, env_config: EnvConfig | None, runner: str = "sandbox",
                log_dir: str | Path | None = None, model_name: str = "model") -> dict:
    """One report entry, graded by `runner`: "sandbox" (bundled or prepared repositories: the task's
    own test command) or "swebench-local" (real pure-Python SWE-bench instances: a venv from the
    instance's recipe; outcome resolved / unresolved / network (no verdict) / error)."""
    if runner == "swebench-local":
        local = grade_local(task, patch, env_config, log_dir=log_dir, model_name=model_name)
        return {**local.to_dict(), "status": "ERROR" if local.outcome == "error" else local.outcome}
    if runner != "sandbox":
        raise ValueError(f"unknown runner {runner!r}; use one of: {', '.join(RUNNERS)}")
    return grade(task, patch, env_config, log_dir=log_dir, model_name=model_name).to_dict()
