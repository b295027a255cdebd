"""Real SWE-bench instances of pure-Python repositories graded without Docker.

SWE-bench's harness runs each instance in its prebuilt image; where no image registry or
Docker daemon is available, repositories whose tests need only Python are graded locally:

1. the instance's recipe is derived from swebench's own specification of its (repo, version)
   (`protege.env.swebench_recipes`); an interpreter of its Python version is found (PATH,
   pyenv, `uv python find`), or `PythonNotFound` says what to install;
2. the shared environment (swebench's environment image: venv, dependencies, pinned pip
   packages) is built once per (repo, version) in a workspace of its own at the instance's
   environment_setup_commit, with the network on, and cached (`cached_venv`);
3. per instance (swebench's instance image), the cached venv is copied into the fresh
   workspace and relocated, and the pre-install lines and the repository's install run;
4. the model patch and the test patch are applied and the instance's test command runs with
   the network off, graded by swebench's log parser (`protege.env.grading.grade`);
5. tests whose failure output shows network errors are classified `network`, listed
   separately and left out of the verdict, but only when the gold patch fails them the same
   way under the same sandbox (graded once per instance and kept): a wrong patch that makes a
   test raise `ConnectionError` is a failure, not a network test.

Differences from the harness, stated plainly: pip instead of conda, and the install runs
before the model patch is applied (an editable install, so source changes still apply;
changes to packaging metadata do not). `docs/SWEBENCH_LOCAL.md` has the validation table.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from protege.core.paths import safe_name
from protege.env.base import EnvConfig, Environment, EnvironmentError_
from protege.env.grading import GradeReport, grade, patch_sha256, report_from_log, test_command
from protege.env.local import LocalEnvironment
from protege.env.sandbox import SandboxConfig, bwrap_path, hand_over
from protege.env.swebench_recipes import (
    NoRecipe,
    Recipe,
    derive_recipe,
    environment_yml_requirements,
    requirements_text,
)
from protege.tasks.schema import Task

VENV = "../home/venv"  # in the episode's HOME beside the repository, so it never shows up in a diff


def recipe_for(task: Task, recipes: dict[tuple[str, str], Recipe] | None = None) -> Recipe:
    """The instance's recipe: `recipes[(repo, version)]` when given there, else derived from
    swebench's specification (`protege.env.swebench_recipes`); KeyError with the reason."""
    if recipes is not None and (task.repo, task.version) in recipes:
        return recipes[(task.repo, task.version)]
    try:
        return derive_recipe(task.repo, task.version)
    except NoRecipe as exc:
        raise KeyError(f"instance {task.instance_id!r}: no local recipe: {exc.args[0]}") from None


class PythonNotFound(RuntimeError):
    """No interpreter of the wanted version could be found."""


def _version_of(python: str) -> str | None:
    try:
        out = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def find_python(version: str, newer: bool = False) -> Path:
    """An interpreter for `version` ("3.9"): PATH, then pyenv, then `uv python find`; with
    `newer`, where none is found, the nearest newer minor version (3.10, 3.11, ...)."""
    if newer:
        major, minor = (int(x) for x in version.split("."))
        for m in range(minor, 15):
            try:
                return find_python(f"{major}.{m}")
            except PythonNotFound:
                continue
        newer = False  # the error below names the version asked for
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
        # pid and thread: graders run in threads of one process as well as in several processes
        tmp = staged.with_name(staged.name + f".tmp{os.getpid()}-{threading.get_ident()}")
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


_EOF = "EOF_PROTEGE_REQS"


def _constraint_lines(recipe: Recipe) -> list[str]:
    """pip reads PIP_CONSTRAINT in every install, build-isolation environments included."""
    if not recipe.constraints:
        return []
    return [f"printf '%s\\n' {' '.join(shlex.quote(c) for c in recipe.constraints)} > \"$HOME/constraints.txt\"",
            "export PIP_CONSTRAINT=\"$HOME/constraints.txt\""]


def env_script(recipe: Recipe, python: Path, requirements: str | None = None) -> str:
    """The shared part of an environment (swebench's environment image): the venv, the
    dependencies (requirements file, environment.yml or conda packages, all with pip), then the
    pinned pip packages. Run once per (repo, version) and cached (`cached_venv`)."""
    lines = [f"{python} -m venv {'--system-site-packages ' if recipe.system_site_packages else ''}{VENV}",
             f". {VENV}/bin/activate", *_constraint_lines(recipe),
             # A venv gets the interpreter's bundled pip (18.1 for 3.6): too old for today's wheels
             # (manylinux2014). swebench's conda envs had the pip of 2024; the same cap here.
             "python -c 'import sys, pip; sys.exit(int(pip.__version__.split(\".\")[0]) < 21)' || "
             "python -m pip install --upgrade 'pip<24.1'"]
    if requirements is not None:
        lines.append(f"cat > \"$HOME/requirements.txt\" <<'{_EOF}'\n{requirements}\n{_EOF}")
        pins = [p for p in recipe.pip_packages if "==" in p]
        if recipe.deps == "environment.yml" and pins:
            # conda solves the environment.yml and swebench's pins afterwards; pip installing the pins
            # afterwards would downgrade numpy under packages built against a newer one: pins as
            # constraints of this one step (not of the repository's own install, whose setup_requires
            # may want newer ones).
            lines += [f"printf '%s\\n' {' '.join(shlex.quote(p) for p in pins)} > \"$HOME/pins.txt\"",
                      "python -m pip install -r \"$HOME/requirements.txt\" -c \"$HOME/pins.txt\""]
        else:
            lines.append("python -m pip install -r \"$HOME/requirements.txt\"")
    for group in (recipe.packages, recipe.pip_packages):
        if group:
            lines.append("python -m pip install " + " ".join(shlex.quote(p) for p in group))
    return "set -e\n" + "\n".join(lines)


def instance_script(recipe: Recipe) -> str:
    """The per-instance part (swebench's instance image): pre-install lines and the install of
    the repository itself, in the venv copied from the cache."""
    lines = [f". {VENV}/bin/activate", *_constraint_lines(recipe), *recipe.pre_install, recipe.install,
             # `pytest` in the test command must be this venv's even when pytest comes from the
             # interpreter's site-packages (no script here; PATH would find the caller's).
             f"[ -e {VENV}/bin/pytest ] || {{ printf '#!/bin/sh\\nexec \"%s/bin/python\" -m pytest \"$@\"\\n' "
             f"\"$VIRTUAL_ENV\" > {VENV}/bin/pytest && chmod +x {VENV}/bin/pytest; }}"]
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
    python_version: str | None = None  # the interpreter's major.minor
    notes: list[str] = field(default_factory=list)  # the recipe's departures from swebench's build
    timings: dict[str, float] = field(default_factory=dict)  # env (build or cache hit), copy, install, total

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _network_sandbox(env: Environment, env_add: dict[str, str], timeout_s: float) -> SandboxConfig:
    return replace(env.config.sandbox, network=True, timeout_s=timeout_s,
                   extra_env={**env.config.sandbox.extra_env, **env_add, **install_env()})


def _read_or_none(env: Environment, path: str) -> str | None:
    try:
        return env.read_file(path)
    except Exception:  # absent, a link, too big: not this candidate
        return None


def dependency_text(recipe: Recipe, env: Environment) -> str | None:
    """The requirements the environment installs, read from the checkout (at the instance's
    environment_setup_commit) as swebench reads them from GitHub; None when the recipe has none."""
    if recipe.deps == "requirements":
        return requirements_text(lambda p: _read_or_none(env, p), recipe.reqs_paths)
    if recipe.deps == "environment.yml":
        text = next((t for p in recipe.reqs_paths if (t := _read_or_none(env, p)) is not None), None)
        if text is None:
            raise FileNotFoundError(f"none of {list(recipe.reqs_paths)} at the environment_setup_commit")
        return "\n".join(environment_yml_requirements(text)[0])
    return None


def env_cache_dir() -> Path:
    """Where built environments are kept (one folder per key); not under /tmp, which the sandbox
    replaces."""
    return Path(os.environ.get("PROTEGE_ENV_CACHE", "/var/tmp/protege-envs"))


def env_key(task: Task, recipe: Recipe, python: Path) -> str:
    """What the shared environment depends on: repository, environment commit, interpreter and
    the recipe's dependency fields (not the per-instance install)."""
    parts = [2, task.repo, task.version, task.environment_setup_commit or task.base_commit, str(python),
             recipe.python, recipe.deps, recipe.packages, recipe.reqs_paths, recipe.pip_packages,
             recipe.system_site_packages, recipe.constraints]
    return f"{safe_name(task.repo)}-{task.version}-" + hashlib.sha1(json.dumps(parts).encode()).hexdigest()[:12]


def cached_venv(task: Task, recipe: Recipe, python: Path, env_add: dict[str, str], env_config: EnvConfig,
                timeout_s: float, cache_dir: Path | None = None) -> Path:
    """The folder holding the (repo, version)'s built environment (`venv/` and `meta.json`),
    built once in a workspace of its own at the instance's environment_setup_commit (as swebench
    builds its environment image), under a lock so parallel graders build it once."""
    import fcntl

    cache = Path(cache_dir or env_cache_dir())
    dest = cache / env_key(task, recipe, python)
    if (dest / "meta.json").exists():
        return dest
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f"{dest.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (dest / "meta.json").exists():
            return dest
        commit = task.environment_setup_commit or task.base_commit
        builder = replace(task, instance_id=f"{task.instance_id}.env", base_commit=commit)
        start = time.monotonic()
        with LocalEnvironment(builder, env_config) as env:
            try:
                requirements = dependency_text(recipe, env)
            except FileNotFoundError as exc:
                raise EnvironmentError_(f"instance {task.instance_id!r}: field 'environment_setup_commit': "
                                        f"{exc}") from None
            result = env.run_with(_network_sandbox(env, env_add, timeout_s),
                                  env_script(recipe, python, requirements), timeout_s=timeout_s)
            if not result.ok:
                raise EnvironmentError_(f"building the {task.repo} {task.version} environment (Python "
                                        f"{recipe.python}) failed:\n{result.observation()[-2000:]}")
            tmp = cache / f"{dest.name}.tmp{os.getpid()}-{threading.get_ident()}"
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(env.box / "home" / "venv", tmp / "venv", symlinks=True)
            (tmp / "meta.json").write_text(json.dumps({
                "prefix": str((env.box / "home" / "venv").resolve()), "repo": task.repo, "version": task.version,
                "commit": commit, "python": str(python), "recipe": asdict(recipe),
                "build_s": round(time.monotonic() - start, 1)}, indent=1))
        subprocess.run(["chmod", "-R", "a+rX,go-w", str(tmp)], check=True)
        tmp.rename(dest)
    return dest


def place_venv(cached: Path, env: Environment) -> float:
    """Copy a cached environment into the episode's HOME and point its scripts at the new place
    (a venv writes its absolute path into `bin/` and `pyvenv.cfg`); returns the seconds taken."""
    start = time.monotonic()
    old = json.loads((cached / "meta.json").read_text())["prefix"].encode()
    target = env.box / "home" / "venv"
    shutil.copytree(cached / "venv", target, symlinks=True)
    new = str(target.resolve()).encode()
    for path in [*(target / "bin").iterdir(), target / "pyvenv.cfg", *target.glob("lib/python*/site-packages/*.pth")]:
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if old in data:
                path.write_bytes(data.replace(old, new))
    hand_over(target, env.config.sandbox, env.lease.uid if env.lease else None)
    return time.monotonic() - start


def _setup(task: Task, recipe: Recipe, python: Path, env_add: dict[str, str], timeout_s: float,
           timings: dict[str, float]):
    def setup(env: Environment) -> None:
        if not hasattr(env, "run_with"):
            raise EnvironmentError_("local SWE-bench grading needs a LocalEnvironment (backend 'local')")
        start = time.monotonic()
        cached = cached_venv(task, recipe, python, env_add, env.config, timeout_s)
        timings["env_s"] = time.monotonic() - start
        timings["copy_s"] = place_venv(cached, env)
        start = time.monotonic()
        result = env.run_with(_network_sandbox(env, env_add, timeout_s), instance_script(recipe), timeout_s=timeout_s)
        timings["install_s"] = time.monotonic() - start
        if not result.ok:
            raise EnvironmentError_(f"installing {task.instance_id} into the {recipe.python} environment "
                                    f"failed:\n{result.observation()[-2000:]}")
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
                model_name: str = "model", python_fallback: bool = False) -> LocalReport:
    """Grade one patch for a real (pure-Python) SWE-bench instance without Docker.
    `python_fallback`: where the recipe's Python is not installed, use the nearest newer one
    (reported in `python`; swebench's pins may not install on it)."""
    env_config = env_config or EnvConfig()
    if env_config.backend != "local":
        raise ValueError("grade_local runs without Docker: use EnvConfig(backend='local')")
    try:
        recipe = recipe or recipe_for(task)
        found = find_python(recipe.python, newer=python_fallback)
        if (used := _version_of(str(found))) != recipe.python:
            recipe = replace(recipe, python=used, notes=(*recipe.notes, f"Python {used} stands in for "
                                                                         f"{recipe.python} (--python-fallback)"))
        python, env_add = sandbox_python(found)
    except (KeyError, PythonNotFound) as exc:
        return LocalReport(task.instance_id, "error", False, error=str(exc.args[0]))
    except (OSError, subprocess.SubprocessError) as exc:  # staging the interpreter
        return LocalReport(task.instance_id, "error", False, error=f"{type(exc).__name__}: {exc}")
    timings: dict[str, float] = {}
    sb: SandboxConfig = env_config.sandbox
    isolated = not sb.network and sb.isolation != "none" and bwrap_path() is not None
    prologue = "".join(f"{line}\n" for line in (f". {VENV}/bin/activate", *recipe.eval_commands))
    local_task = replace(task, extra={**task.extra, "test_cmd": prologue + (recipe.test_cmd or test_command(task))})
    config = replace(env_config, sandbox=replace(sb, extra_env={**sb.extra_env, **env_add}))
    report = grade(local_task, model_patch, config, log_dir=log_dir, model_name=model_name,
                   test_timeout_s=test_timeout_s, setup=_setup(task, recipe, python, env_add, install_timeout_s, timings))
    timings["total_s"] = report.duration_s or 0.0
    base = LocalReport(task.instance_id, "error", False, network_isolated=isolated, python=str(python),
                       grade=report, error=report.error, python_version=recipe.python, notes=list(recipe.notes),
                       timings={k: round(v, 1) for k, v in timings.items()})
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
