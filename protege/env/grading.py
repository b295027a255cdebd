"""Grade a model patch: fresh checkout, apply the patch, restore and patch the tests, run them,
and let `swebench`'s own log parser and report functions decide (resolved / partial / no).

One grader for bundled instances and for real SWE-bench instances run locally; only the
environment differs. The test log is written in the swebench harness format (the same
markers its eval scripts print), so `swebench.harness.grading.get_eval_report` reads it as
it reads a harness log.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import secrets
import shlex
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from protege.core.paths import safe_name
from protege.core.text import terminal_safe
from protege.env.base import EnvConfig, Environment
from protege.env.factory import make_environment
from protege.tasks.schema import Task

GRADING_OUTPUT_CHARS = 50_000_000  # test logs of real repositories run to megabytes
_TEST_FILE_RE = re.compile(r"^diff --git a/(\S+) b/(\S+)$", re.M)


def test_command(task: Task) -> str:
    """The instance's test command: `extra['test_cmd']`, else the line(s) its swebench eval
    script runs between the Start/End Test Output markers, else pytest on the test files."""
    if task.extra.get("test_cmd"):
        return task.extra["test_cmd"]
    from swebench.harness.constants import END_TEST_OUTPUT, START_TEST_OUTPUT

    if START_TEST_OUTPUT in task.eval_script:
        body = task.eval_script.split(START_TEST_OUTPUT, 1)[1].split(END_TEST_OUTPUT, 1)[0]
        lines = [ln for ln in body.splitlines()[1:] if ln.strip() and not ln.startswith(": '")]
        if lines:
            return "\n".join(lines)
    files = sorted({t.split("::")[0] for t in task.FAIL_TO_PASS + task.PASS_TO_PASS if "::" in t})
    return "python -m pytest -rA -p no:cacheprovider " + " ".join(files or ["."])


def test_files(task: Task) -> list[str]:
    """Files the grader restores to base_commit before applying the test patch: those the
    test patch touches plus the files named by FAIL_TO_PASS / PASS_TO_PASS ids, so a model
    cannot pass by editing the tests."""
    files = {m.group(2) for m in _TEST_FILE_RE.finditer(task.test_patch)}
    files |= {t.split("::")[0] for t in task.FAIL_TO_PASS + task.PASS_TO_PASS
              if "::" in t and t.split("::")[0].endswith(".py")}
    return sorted(files)


# Files that change how tests are collected or run rather than what the code does. A model
# patch that adds or edits one could make the grader pay for a bug left in place (a
# conftest.py that marks every report "passed"), so they are put back as they were at
# base_commit (new ones removed) before the tests run, and the report lists them.
TEST_INFRA_NAMES = frozenset({"conftest.py", "pytest.ini", ".pytest.ini", "tox.ini", "setup.cfg", "pyproject.toml",
                              "sitecustomize.py", "usercustomize.py", "pytest.toml", ".pytest.toml"})
_PATCH_PATH_RE = re.compile(r"^(?:diff --git a/(\S+) b/(\S+)|\+\+\+ b/(\S+)|--- a/(\S+)|rename to (\S+)|copy to (\S+))$", re.M)


def patch_paths(patch: str) -> set[str]:
    """Every path a unified diff names (both sides of renames).

    >>> sorted(patch_paths("diff --git a/x.py b/tests/conftest.py\\nrename from x.py\\nrename to tests/conftest.py\\n"))
    ['tests/conftest.py', 'x.py']
    """
    return {p for m in _PATCH_PATH_RE.finditer(patch) for p in m.groups() if p}


def test_infra_files(patch: str) -> list[str]:
    """The paths of a patch that the grader restores before running tests (TEST_INFRA_NAMES,
    and any `.pth` file).

    >>> test_infra_files("diff --git a/conftest.py b/conftest.py\\n--- /dev/null\\n+++ b/conftest.py\\n")
    ['conftest.py']
    >>> test_infra_files("diff --git a/src/m.py b/src/m.py\\n")
    []
    """
    return sorted(p for p in patch_paths(patch)
                  if p.rsplit("/", 1)[-1] in TEST_INFRA_NAMES or p.endswith(".pth"))


# Git in the workspace as the grader runs it: no hooks, fsmonitor or other commands taken from
# config (the model's `.git` never reaches the grader's fresh checkout, and these settings win
# over a repository's own config in any case).
SAFE_GIT = ("git -c core.hooksPath=/dev/null -c core.fsmonitor=false -c core.sshCommand=false "
            "-c diff.external= -c core.pager=cat -c protocol.allow=never")
_SYMLINK_MODE_RE = re.compile(r"^(?:new file mode|new mode|old mode|deleted file mode|index \S+) 120000$", re.M)


def refused_patch(patch: str) -> str | None:
    """Why the grader will not apply this patch, or None. A path with a `.git` component
    writes the repository's own git data (hooks, config) that the grader's git would run.

    >>> refused_patch("diff --git a/.git/hooks/post-checkout b/.git/hooks/post-checkout\\n")
    "it writes inside .git ('.git/hooks/post-checkout'): git data is not part of a fix"
    >>> refused_patch("diff --git a/src/m.py b/src/m.py\\n") is None
    True
    """
    for path in sorted(patch_paths(patch)):
        if any(part.lower() == ".git" for part in path.split("/")):
            return f"it writes inside .git ({path!r}): git data is not part of a fix"
    return None


def _canary_names() -> tuple[str, str]:
    """A function and a TestCase class named like any test, random per grading: reporting code
    that the patch changed cannot tell them from the task's own tests."""
    token = secrets.token_hex(6)
    return f"test_{token}", f"Test{token.upper()}"


def plant_canary(env: Environment, task: Task) -> dict[str, str] | None:
    """A test that must fail (a function, and a unittest class for unittest runners), planted
    after the test patch: {'file', 'token', 'command'}, or None when the task names no test file.
    `canary_verdict` then reads how the run reported it.

    Where the test command names the task's test files, the canary is a new file beside the
    first one, added to the command: the task's own files stay as the test patch left them (a
    test that lints or reads its own source, pylint's runners, is not disturbed). Otherwise (module
    labels such as django's) it is appended to the first test file."""
    function, cls = _canary_names()
    command = test_command(task)
    lines = command.rstrip("\n").split("\n")
    # Modules that hold graded tests first: a file the test patch touches may be data (sphinx's
    # tests/roots/*, whole folders that a test builds), where a new file changes what is built.
    graded = [t.split("::")[0] for t in task.FAIL_TO_PASS + task.PASS_TO_PASS if "::" in t]
    for path in dict.fromkeys([*graded, *test_files(task)]):
        if not path.endswith(".py"):
            continue
        try:
            text = env.read_file(path)
        except OSError:
            continue
        token = function[len("test_"):]
        if _runs_file(lines[-1], path) and path in shlex.split(lines[-1]):
            own = posixpath.join(posixpath.dirname(path), f"test_{token}.py")
            # A function only: the runners that take file paths (pytest, tox, sympy's bin/test) collect
            # functions, and a unittest class in the session changed a pytester test's outcome
            # (pytest-dev__pytest-10081: its FAIL_TO_PASS test passed without the fix beside one).
            env.write_file(own, CANARY_FUNCTION.format(function=function).lstrip("\n"))
            return {"file": own, "token": token, "command": "\n".join([*lines[:-1], f"{lines[-1]} {own}"])}
        env.write_file(path, text.rstrip("\n") + CANARY.format(function=function, cls=cls))
        return {"file": path, "token": token, "command": command}
    return None


CANARY_FUNCTION = '''


def {function}():
    assert 2 + 2 == 5
'''

CANARY = '''


def {function}():
    assert 2 + 2 == 5


import unittest as _unittest_{function}  # noqa: E402


class {cls}(_unittest_{function}.TestCase):
    def {function}(self):
        self.assertEqual(2 + 2, 5)
'''


def canary_verdict(task: Task, log_path: Path, canary: dict[str, str], resolved: bool) -> str | None:
    """Why the run's report cannot be trusted, or None: the canary was reported passed, or (for a
    resolved verdict) not reported at all although the test command runs its file."""
    from swebench.harness.grading import get_logs_eval
    from swebench.types import TestSpec

    spec = TestSpec(instance_id=task.instance_id, image=task.image, eval_script_list=[], repo=task.repo,
                    version=task.version, FAIL_TO_PASS=task.FAIL_TO_PASS, PASS_TO_PASS=task.PASS_TO_PASS,
                    log_parser=task.log_parser, eval_type=task.eval_type)
    status_map, _ = get_logs_eval(spec, str(log_path))
    token = canary["token"].lower()
    seen = {name: status for name, status in status_map.items() if token in name.lower()}
    if any(status in ("PASSED", "XFAIL") for status in seen.values()):
        return f"the grader's canary test in {canary['file']}, which must fail, was reported {sorted(seen.values())}"
    if resolved and not seen and _runs_file(canary.get("command") or test_command(task), canary["file"]):
        return f"the grader's canary test in {canary['file']} was run but not reported"
    return None


def _runs_file(command: str, path: str) -> bool:
    """Whether a test command names `path` or a folder above it.

    >>> _runs_file("python -m pytest -rA tests", "tests/test_a.py"), _runs_file("pytest tests/test_b.py", "tests/test_a.py")
    (True, False)
    """
    words = {w.rstrip("/") for w in shlex.split(command.replace("\n", " "), posix=True)} if command else set()
    parts = path.split("/")
    return any("/".join(parts[:i]) in words for i in range(1, len(parts) + 1))


# Not pytest tests, despite their names (test modules import them).
test_command.__test__ = False
test_files.__test__ = False
test_infra_files.__test__ = False


@dataclass
class GradeReport:
    instance_id: str
    resolved: bool
    status: str  # swebench ResolvedStatus value: RESOLVED_FULL / RESOLVED_PARTIAL / RESOLVED_NO, or ERROR
    patch_applied: bool
    fail_to_pass: dict[str, list[str]] = field(default_factory=dict)  # success / failure
    pass_to_pass: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None  # why grading could not run the tests (environment, patch...)
    test_exit_code: int | None = None
    log_path: str | None = None
    duration_s: float = 0.0
    reverted_files: list[str] = field(default_factory=list)  # test infrastructure the patch touched, restored
    patch_sha256: str = ""  # which patch this report grades (a different patch is graded again)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _harness_log(apply_ok: bool, apply_log: str, test_output: str, exit_code: int | None) -> str:
    from swebench.harness.constants import (
        APPLY_PATCH_FAIL,
        APPLY_PATCH_PASS,
        END_TEST_OUTPUT,
        START_TEST_OUTPUT,
        TEST_EXIT_CODE,
    )

    if not apply_ok:
        return f"{APPLY_PATCH_FAIL}\n{apply_log}\n"
    parts = [f"{APPLY_PATCH_PASS}\n{apply_log}", START_TEST_OUTPUT, test_output, END_TEST_OUTPUT]
    if exit_code is not None:
        parts.append(f"{TEST_EXIT_CODE}: {exit_code}")
    return "\n".join(parts) + "\n"


def report_from_log(task: Task, model_patch: str | None, log_text: str, log_path: Path,
                    model_name: str = "model") -> tuple[dict, dict]:
    """swebench's `get_eval_report` on a harness-format log; returns (instance report, tests)."""
    from swebench.harness.grading import get_eval_report
    from swebench.types import TestSpec

    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text(log_text, encoding="utf-8")
    spec = TestSpec(instance_id=task.instance_id, image=task.image, eval_script_list=[],
                    repo=task.repo, version=task.version, FAIL_TO_PASS=task.FAIL_TO_PASS,
                    PASS_TO_PASS=task.PASS_TO_PASS, log_parser=task.log_parser,
                    eval_type=task.eval_type)
    pred = {"instance_id": task.instance_id, "model_name_or_path": model_name, "model_patch": model_patch}
    report = get_eval_report(spec, pred, str(log_path), include_tests_status=True)[task.instance_id]
    return report, report.get("tests_status", {})


def grade(task: Task, model_patch: str | None, env_config: EnvConfig | None = None,
          log_dir: str | Path | None = None, model_name: str = "model",
          test_timeout_s: float = 900, setup=None) -> GradeReport:
    """Grade one patch in a fresh environment. Never raises for bad patches or broken
    environments: those become a not-resolved report with `error` set. `setup(env)`, when
    given, prepares the fresh environment first (e.g. a venv for a real instance)."""
    import time

    from swebench.harness.grading import get_resolution_status

    start = time.monotonic()
    log_dir = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="protege-grade-"))
    log_path = log_dir / f"{safe_name(task.instance_id)}.log"
    if model_patch is None:
        return GradeReport(task.instance_id, False, "RESOLVED_NO", False, error="no patch (None)")
    if not isinstance(model_patch, str):
        return GradeReport(task.instance_id, False, "ERROR", False,
                           error=f"field 'model_patch': a {type(model_patch).__name__}, not a string")
    sha = patch_sha256(model_patch)
    if reason := refused_patch(model_patch):
        return GradeReport(task.instance_id, False, "RESOLVED_NO", False, error=f"patch refused: {reason}",
                           duration_s=time.monotonic() - start, patch_sha256=sha)
    reverted = test_infra_files(model_patch)
    env: Environment | None = None
    # The grader reads every test's status line: the model-facing output cap must not apply.
    env_config = env_config or EnvConfig()
    env_config = replace(env_config, sandbox=replace(
        env_config.sandbox, output_limit_chars=max(env_config.sandbox.output_limit_chars, GRADING_OUTPUT_CHARS),
        output_kill_bytes=max(env_config.sandbox.output_kill_bytes, 4 * GRADING_OUTPUT_CHARS)))
    try:
        env = make_environment(task, env_config)
        if setup is not None:
            setup(env)
        apply_ok, apply_log = _apply_in(env, model_patch)
        exit_code, output, canary = _run_tests(env, task, reverted, test_timeout_s) if apply_ok else (None, "", None)
        log = _harness_log(apply_ok, apply_log, output, exit_code)
        report, tests = report_from_log(task, model_patch, log, log_path, model_name)
        status = get_resolution_status(tests) if tests else "RESOLVED_NO"
        if apply_ok and canary and (tampered := canary_verdict(task, log_path, canary, bool(report["resolved"]))):
            return GradeReport(task.instance_id, False, "ERROR", True, error=f"test reporting tampered: {tampered}",
                               test_exit_code=exit_code, log_path=str(log_path), duration_s=time.monotonic() - start,
                               reverted_files=reverted, patch_sha256=sha)
        return GradeReport(task.instance_id, bool(report["resolved"]), status, apply_ok,
                           fail_to_pass=tests.get("FAIL_TO_PASS", {}), pass_to_pass=tests.get("PASS_TO_PASS", {}),
                           error=None if apply_ok else f"patch does not apply: {apply_log[-300:]}",
                           test_exit_code=exit_code, log_path=str(log_path),
                           duration_s=time.monotonic() - start, reverted_files=reverted, patch_sha256=sha)
    except Exception as exc:  # a broken environment must not stop a batch of gradings
        return GradeReport(task.instance_id, False, "ERROR", False, error=f"{type(exc).__name__}: {exc}",
                           log_path=str(log_path) if log_path.exists() else None,
                           duration_s=time.monotonic() - start, reverted_files=reverted, patch_sha256=sha)
    finally:
        if env is not None:
            env.close()


def _run_tests(env: Environment, task: Task, reverted: list[str],
               test_timeout_s: float) -> tuple[int | None, str, dict[str, str] | None]:
    """After the model patch: test files and reverted infrastructure back as at base_commit, the
    test patch, the canary, then the test command. Returns (exit code, output, canary)."""
    restore = [*test_files(task), *reverted]
    if restore:
        # Each path back as at base_commit, or removed where base_commit has none.
        env.run("for f in " + " ".join(shlex.quote(f) for f in restore) + "; do "
                f"{SAFE_GIT} checkout -q {shlex.quote(task.base_commit)} -- \"$f\" 2>/dev/null || rm -rf -- \"$f\"; "
                "done; true", timeout_s=120)
    if task.test_patch.strip():
        ok, log = _apply_in(env, task.test_patch)
        if not ok:
            raise RuntimeError(f"field 'test_patch' does not apply: {log[-300:]}")
    canary = plant_canary(env, task)
    result = env.run(canary["command"] if canary else test_command(task), timeout_s=test_timeout_s)
    output = terminal_safe(result.output) + ("\n>>>>> Tests Timed Out" if result.timed_out else "")
    return result.exit_code, output, canary


def _apply_in(env: Environment, patch: str) -> tuple[bool, str]:
    """Apply a patch inside the environment (the same way for local and Docker)."""
    if not patch.strip():
        return True, "empty patch"
    name = ".protege_patch.diff"
    env.write_file(name, patch if patch.endswith("\n") else patch + "\n")
    # GNU patch writes through links that the patch itself creates (`x -> .git`, then
    # `x/hooks/...`); git apply refuses that. So patch's fuzz is a fallback only without links.
    fallback = "" if _SYMLINK_MODE_RE.search(patch) else f" || patch --batch --fuzz=5 -p1 -i {name} 2>&1"
    result = env.run(f"{{ {SAFE_GIT} apply --verbose --whitespace=nowarn {name} 2>&1{fallback}; }}; rc=$?; "
                     f"rm -f {name}; exit $rc", timeout_s=120)
    return result.exit_code == 0, terminal_safe(result.output)


def patch_sha256(patch: str | None) -> str:
    return hashlib.sha256((patch or "").encode("utf-8", "surrogatepass")).hexdigest()


