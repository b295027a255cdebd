"""The episode boundary, tried as an attacker would: hostile commands and edits through the
project's own tool path, hostile model outputs through `run_episodes`, against the real
sandbox, real git and the real grader (no mocks). One test per class of issue 12."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import pytest

from protege.agent.config import AgentConfig
from protege.agent.loop import run_episodes
from protege.agent.tools import execute, format_tool_call
from protege.core.actions import Action
from protege.core.protocols import Generation
from protege.core.trajectory import TrajectoryWriter, load_trajectory, read_jsonl
from protege.env import processes, sandbox
from protege.env.base import EnvConfig, PatchTooLarge
from protege.env.factory import make_environment
from protege.env.grading import grade
from protege.env.local import LocalEnvironment, sweep_stale_workspaces
from protege.env.reports import grade_predictions
from protege.env.sandbox import SandboxConfig, SandboxUnavailable, bwrap_path, run_command
from protege.models.exact_edits import file_diffs
from protege.models.reference_expert import ReferenceExpert

needs_bwrap = pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is not installed (apt-get install bubblewrap)")
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="per-episode uids and host-side privilege tests need root")


def bash(env, command: str) -> str:
    return execute(env, Action("bash", {"command": command}))


def edit(env, **args) -> str:
    return execute(env, Action("str_replace_editor", args))


# ---------------------------------------------------------------- 1. git on the host

@as_root
def test_planted_git_config_and_hooks_never_run_on_the_host(tiny_task, env_config, tmp_path, monkeypatch):
    """Hooks, fsmonitor, clean filters, textconv, an external diff, core.worktree and
    hooksPath planted by a model command: the diff runs none of them and sees no host file."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-host-secret")
    marks = tmp_path / "marks"
    marks.mkdir(mode=0o777)
    secret = tmp_path / "root-only.txt"
    secret.write_text("root secret\n")
    secret.chmod(0o600)
    with LocalEnvironment(tiny_task, env_config) as env:
        env.write_file(".git/evil.sh", f'#!/bin/sh\necho "$(id -u) $OPENAI_API_KEY" >> {marks}/ran-$$\ncat\n')
        evil = f"{env.workdir}/.git/evil.sh"
        planted = bash(env, "\n".join([
            "chmod +x .git/evil.sh",
            f"git config core.fsmonitor {evil}",
            f"git config filter.x.clean {evil}",
            f"git config diff.x.textconv {evil}",
            f"git config diff.external {evil}",
            "git config core.hooksPath .git/hooks",
            "printf '* filter=x diff=x\\n' > .gitattributes",
            *[f"cp .git/evil.sh .git/hooks/{h}" for h in ("post-index-change", "pre-commit", "post-checkout",
                                                          "reference-transaction")],
            "echo 'print(1)' > new_module.py",
            "sed -i 's/range(start, stop))/range(start, stop + 1))/' tinycalc/ranges.py",
            f"git config core.worktree {tmp_path}",
            "grep -c fsmonitor .git/config",
        ]))
        assert planted.strip().endswith("1"), planted  # the model's own .git did take the settings
        patch = env.diff()
    assert list(marks.iterdir()) == [], "a planted git command ran on the host"
    assert "range(start, stop + 1)" in patch and "new_module.py" in patch and ".gitattributes" in patch
    assert "root secret" not in patch and "sk-host-secret" not in patch and "root-only" not in patch


def test_hidden_edits_still_appear_in_the_patch(tiny_task, env_config):
    """exclude, skip-worktree, assume-unchanged and replace refs cannot hide a change."""
    with LocalEnvironment(tiny_task, env_config) as env:
        bash(env, "\n".join([
            "echo secret_helper = 1 > hidden.py && echo hidden.py >> .git/info/exclude",
            "git update-index --skip-worktree tinycalc/ranges.py",
            "git update-index --assume-unchanged tests/test_ranges.py",
            "echo '# edited' >> tinycalc/ranges.py && echo '# edited' >> tests/test_ranges.py",
            "git replace -f HEAD $(git commit-tree HEAD^{tree} -m fake) 2>&1 || true",
        ]))
        assert "hidden.py" not in bash(env, "git status --short")  # hidden from the model's own git
        patch = env.diff()
    assert "hidden.py" in patch and "+# edited" in patch and "tests/test_ranges.py" in patch


def test_a_fifo_or_nested_repo_does_not_block_the_diff(tiny_task, env_config):
    with LocalEnvironment(tiny_task, env_config) as env:
        bash(env, "mkfifo pipe && mkdir -p sub && cd sub && git init -q && git config core.fsmonitor 'touch /x' "
                  "&& mkfifo .git/HEAD.fifo && echo x > f")
        start = time.monotonic()
        patch = env.diff()
    assert time.monotonic() - start < 30
    assert "pipe" not in patch  # git records regular files, links and folders only


def test_patch_size_cap_is_a_clear_status(tiny_task, env_config):
    cfg = replace(env_config, max_patch_bytes=200_000)
    with LocalEnvironment(tiny_task, cfg) as env:
        bash(env, "head -c 3000000 /dev/urandom | base64 > big.txt")
        with pytest.raises(PatchTooLarge, match="larger than 200,000 bytes"):
            env.diff()


# ---------------------------------------------------------------- 2. the grader's test infrastructure

HACK = '''import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    report.outcome = "passed"
'''


@pytest.mark.parametrize("where", ["conftest.py", "tests/conftest.py", "sitecustomize.py"])
def test_conftest_reward_hack_is_not_paid(tiny_task, env_config, tmp_path, where):
    with LocalEnvironment(tiny_task, env_config) as env:
        env.write_file(where, HACK if "conftest" in where else "import os\nos.environ['PYTEST_ADDOPTS'] = '-p no:python'\n")
        hack = env.diff()
    report = grade(tiny_task, hack, env_config, log_dir=tmp_path)
    assert not report.resolved and report.reverted_files == [where]
    # the same hack beside the real fix: the fix is graded, the hack is reverted
    both = grade(tiny_task, hack + tiny_task.patch, env_config, log_dir=tmp_path)
    assert both.resolved and both.reverted_files == [where]


# ---------------------------------------------------------------- 3. temp folders and the interpreter

NESTED_TEST = '''import subprocess, sys, tempfile, os

def test_nested_pytest_run():
    d = tempfile.mkdtemp()
    with open(os.path.join(d, "test_inner.py"), "w") as fh:
        fh.write("def test_ok():\\n    assert True\\n")
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", d],
                         capture_output=True, text=True, cwd=d)
    assert out.returncode == 0, out.stdout + out.stderr


def test_tmp_path(tmp_path):
    (tmp_path / "x").write_text("y")
'''


def test_nested_pytest_runs_grade_resolved(tmp_path):
    """A repository whose pytest config would break a nested run that lands inside it (as on
    pytest-dev's own SWE-bench instances): its gold patch resolves, and the temp files stay
    out of the patch."""
    from protege.env.base import RepoSource, git
    from protege.tasks.schema import Task

    repo = tmp_path / "mirror"
    (repo / "tests").mkdir(parents=True)
    (repo / "lib.py").write_text("def inc(x):\n    return x\n")
    (repo / "tests" / "test_lib.py").write_text("import sys, os\nsys.path.insert(0, os.getcwd())\nfrom lib import inc\n\n"
                                                 "def test_inc():\n    assert inc(1) == 2\n")
    (repo / "tests" / "test_nested.py").write_text(NESTED_TEST)
    # A nested run whose temp folder lands inside the repository picks this up and collects nothing.
    (repo / "pytest.ini").write_text("[pytest]\npython_files = test_lib.py test_nested.py\n")
    git(["init", "-q"], repo)
    git(["add", "-A"], repo)
    git(["commit", "-q", "--no-gpg-sign", "-m", "base"], repo)
    base = git(["rev-parse", "HEAD"], repo).stdout.strip()
    (repo / "lib.py").write_text("def inc(x):\n    return x + 1\n")
    gold = git(["diff"], repo).stdout
    git(["checkout", "-q", "--", "."], repo)
    task = Task("local__nested-1", "local/nested", base, gold, "inc(1) should be 2",
                FAIL_TO_PASS=["tests/test_lib.py::test_inc"],
                PASS_TO_PASS=["tests/test_nested.py::test_nested_pytest_run", "tests/test_nested.py::test_tmp_path"],
                extra={"test_cmd": "python -m pytest -rA -p no:cacheprovider tests"})
    cfg = EnvConfig(repos=RepoSource(mirror_template=str(repo)))
    report = grade(task, gold, cfg, log_dir=tmp_path / "logs")
    assert report.resolved, Path(report.log_path).read_text()[-3000:]
    with LocalEnvironment(task, cfg) as env:
        out = bash(env, "python -c 'import tempfile; print(tempfile.gettempdir())' && python -m pytest -q tests")
        assert out.splitlines()[0] == "/tmp"
        patch = env.diff()
    assert patch == "" or "pytest-of" not in patch


@needs_bwrap
def test_interpreter_reached_through_a_symlink(tmp_path):
    import sys

    link = Path("/tmp") / f"protege-venv-link-{os.getpid()}"
    link.symlink_to(Path(sys.prefix).resolve())
    try:
        env = sandbox.scrubbed_env(tmp_path, SandboxConfig())
        assert str(Path(sys.executable).parent.resolve()) in env["PATH"].split(os.pathsep)[0]
    finally:
        link.unlink()


# ---------------------------------------------------------------- 4. malformed model outputs

@dataclass
class ReplayPolicy:
    """Plays a fixed list of hostile generations (one per step, for every episode)."""

    outputs: list[Generation]
    name: str = "hostile-replay"
    step: dict = field(default_factory=dict)

    def generate(self, conversations, tools):
        out = []
        for conv in conversations:
            n = sum(m["role"] == "assistant" for m in conv)
            out.append(self.outputs[min(n, len(self.outputs) - 1)])
        return out


def test_hostile_generations_never_sink_the_batch(tiny_tasks, env_config, tmp_path):
    deep = "<tool_call>" + "[" * 1500 + "]" * 1500 + "</tool_call>"
    hostile = [
        Generation("<tool_call>{\"name\": \"bash\", \"arguments\": {\"command\": \"echo " + chr(0xD800) + "\"}}</tool_call>"),
        Generation('<tool_call>{"name": "str_replace_editor", "arguments": {"command": "insert", "path": "a", '
                   '"new_str": "x", "insert_line": Infinity}}</tool_call>'),
        Generation(deep),
        Generation('<tool_call>{"name": "bash", "arguments": ' + "{\"a\":" * 1200 + "1" + "}" * 1200 + '}</tool_call>'),
        Generation(None),  # type: ignore[arg-type]
        Generation("", tool_calls=[{"function": "not a dict"}]),
        Generation("", tool_calls="garbage"),  # type: ignore[arg-type]
        Generation("", tool_calls=[{"id": ["x"], "function": {"name": "bash", "arguments": {"command": "echo a\x00b"}}}]),
        Generation(format_tool_call("bash", {"command": "echo a\x00b"})),
        Generation(format_tool_call("str_replace_editor", {"command": "view", "path": "a\x00b"})),
        Generation(format_tool_call("submit", {})),
    ]
    tasks = tiny_tasks(4)
    config = replace(AgentConfig.preset("smoke"), step_limit=len(hostile) + 2, max_consecutive_format_errors=-1,
                     max_parallel=4)
    run = tmp_path / "run"
    trajs = run_episodes(tasks, ReplayPolicy(hostile), None, partial(make_environment, config=env_config), config,
                         writer=TrajectoryWriter(run))
    assert [t.exit_status for t in trajs] == ["submitted"] * 4, [(t.exit_status, t.error) for t in trajs]
    assert len(read_jsonl(run / "preds.jsonl")) == 4
    for traj in trajs:
        assert traj.counts.format_errors >= 6
        loaded = load_trajectory(TrajectoryWriter(run).path(traj.instance_id))
        assert loaded.steps[0].text == traj.steps[0].text and "\ufffd" in loaded.steps[0].text
    assert "NUL" in trajs[0].steps[8].observation


def test_trajectories_store_invalid_unicode_losslessly(tmp_path):
    from protege.core.trajectory import Trajectory

    traj = Trajectory("x-1", patch="bad byte: " + b"\xff".decode("utf-8", "surrogateescape"), exit_status="submitted")
    writer = TrajectoryWriter(tmp_path)
    writer.finish(traj)
    assert load_trajectory(writer.path("x-1")).patch == traj.patch
    assert read_jsonl(tmp_path / "preds.jsonl")[0]["model_patch"] == traj.patch


def test_run_command_never_raises_on_its_input(tmp_path):
    for command in ["echo a\x00b", "echo " + chr(0xD800), 42]:
        res = run_command(command, tmp_path, tmp_path, SandboxConfig(isolation="none"))  # type: ignore[arg-type]
        assert res.error and not res.ok


# ---------------------------------------------------------------- 5. the editor

def test_editor_refuses_special_files_and_never_blocks(tiny_task, env_config):
    with LocalEnvironment(tiny_task, env_config) as env:
        bash(env, "mkfifo fifo")
        done: list[str] = []
        worker = threading.Thread(target=lambda: done.extend([
            edit(env, command="view", path="fifo"), edit(env, command="create", path="fifo", file_text="x"),
            edit(env, command="str_replace", path="fifo", old_str="a", new_str="b")]))
        worker.start()
        worker.join(10)
        assert not worker.is_alive(), "the editor blocked on a FIFO"
        assert all(out.startswith("Error:") for out in done) and "regular file" in done[0]


def test_editor_caps_reads_and_keeps_bytes_it_does_not_edit(tiny_task, env_config):
    cfg = replace(env_config, editor_max_bytes=100_000)
    with LocalEnvironment(tiny_task, cfg) as env:
        bash(env, "head -c 5000000 /dev/zero | tr '\\0' a > big.txt")
        assert "more than the editor opens" in edit(env, command="view", path="big.txt")
        bash(env, "printf 'caf\\xe9 = 1\\nvalue = 2\\n' > latin1.py")
        out = edit(env, command="str_replace", path="latin1.py", old_str="value = 2", new_str="value = 3")
        assert "has been edited" in out
        assert (Path(env.workdir) / "latin1.py").read_bytes() == b"caf\xe9 = 1\nvalue = 3\n"


@as_root
def test_editor_folders_belong_to_the_episode(tiny_task, env_config):
    with LocalEnvironment(tiny_task, env_config) as env:
        assert "created" in edit(env, command="create", path="pkg/sub/mod.py", file_text="x = 1\n")
        assert (Path(env.workdir) / "pkg" / "sub").stat().st_uid == env.uid
        assert bash(env, "echo y > pkg/sub/other.py && cat pkg/sub/other.py").strip() == "y"
        assert "outside" in edit(env, command="create", path="../home/escape.py", file_text="x")


# ---------------------------------------------------------------- 6. per-episode totals

def test_disk_quota_stops_a_command(tiny_task, env_config):
    cfg = replace(env_config, sandbox=replace(SandboxConfig(), disk_mb=100, max_file_mb=64, watch_interval_s=0.05))
    with LocalEnvironment(tiny_task, cfg) as env:
        res = env.run("for i in $(seq 20); do head -c 60000000 /dev/zero > f$i.bin; done; echo done", timeout_s=120)
        assert res.disk_killed and "disk quota" in res.observation()
        assert processes.disk_usage_mb([env.box]) < 100 + 250  # one poll's overshoot at most
        assert env.run("rm -f f*.bin && echo freed").output.strip() == "freed"  # shrinking is allowed


def test_memory_of_all_processes_together_is_capped(tmp_path):
    cfg = SandboxConfig(memory_mb=300, watch_interval_s=0.05)
    cmd = ("for i in 1 2 3 4; do python -c 'import time; x = bytearray(150 * 2**20); time.sleep(20)' & done; wait")
    start = time.monotonic()
    res = run_command(cmd, tmp_path, tmp_path, cfg, tmp_dir=None, timeout_s=60)
    assert res.memory_killed and time.monotonic() - start < 30, res.observation()


@as_root
def test_fork_bomb_in_one_episode_does_not_starve_another(tiny_task, env_config):
    cfg = replace(env_config, sandbox=replace(SandboxConfig(), max_processes=64))
    with LocalEnvironment(tiny_task, cfg) as a, LocalEnvironment(tiny_task, cfg) as b:
        assert a.uid != b.uid
        bomb = threading.Thread(target=lambda: a.run("b(){ b | b & }; b", timeout_s=8))
        bomb.start()
        time.sleep(1.5)
        res = b.run("for i in $(seq 20); do (sleep 0.1 &); done; wait; echo ok")
        bomb.join()
        assert res.output.strip().endswith("ok") and "Resource temporarily unavailable" not in res.output


@as_root
def test_stale_workspaces_are_swept(tiny_task, env_config, tmp_path):
    root = tmp_path / "ws"
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = root / "protege-ws-stale"
    (stale / "box").mkdir(parents=True)
    (stale / "owner.json").write_text(json.dumps({"pid": dead.pid, "start_ticks": 1, "uid": 1_299_999}))
    with LocalEnvironment(tiny_task, replace(env_config, workspace_root=str(root))) as env:
        alive = env.root
    assert not stale.exists() and not alive.exists()
    assert sweep_stale_workspaces(root) == []


# ---------------------------------------------------------------- 7. isolation never drops silently

def test_auto_isolation_refuses_without_bwrap(tiny_task, env_config, monkeypatch, tmp_path):
    monkeypatch.setattr(sandbox, "bwrap_path", lambda: None)
    with pytest.raises(SandboxUnavailable, match="isolation='none' explicitly"):
        LocalEnvironment(tiny_task, env_config)
    res = run_command("echo hi", tmp_path, tmp_path, SandboxConfig())
    assert res.error and "bubblewrap" in res.error and res.output == ""
    with pytest.warns(RuntimeWarning, match="isolation='none'"):
        assert run_command("echo hi", tmp_path, tmp_path, SandboxConfig(isolation="none")).output.strip() == "hi"


def test_unisolated_runs_are_flagged_in_their_records(tiny_task, env_config):
    from protege.models.scripted import ScriptedPolicy

    cfg = replace(env_config, sandbox=replace(SandboxConfig(), isolation="none"))
    with pytest.warns(RuntimeWarning):
        [traj] = run_episodes([tiny_task], ScriptedPolicy([tiny_task]), None, partial(make_environment, config=cfg),
                              AgentConfig.preset("smoke"))
    assert traj.environment["isolation"] == "none" and "without bubblewrap" in traj.environment["warnings"][0]
    [isolated] = run_episodes([tiny_task], ScriptedPolicy([tiny_task]), None,
                              partial(make_environment, config=env_config), AgentConfig.preset("smoke"))
    assert isolated.environment["isolation"] == "auto" and "warnings" not in isolated.environment


# ---------------------------------------------------------------- 8. grading resume

def test_grade_reports_are_keyed_by_patch_and_errors_are_retried(tiny_task, env_config, tmp_path):
    calls: list[str] = []

    def one(task, patch, name):
        calls.append(patch)
        return grade(task, patch, env_config, log_dir=tmp_path).to_dict()

    tasks, iid = {tiny_task.instance_id: tiny_task}, tiny_task.instance_id
    entries: dict = {}
    view = grade_predictions([{"instance_id": iid, "model_patch": tiny_task.patch}], tasks, entries, one)
    assert view[iid]["resolved"] and len(calls) == 1
    grade_predictions([{"instance_id": iid, "model_patch": tiny_task.patch}], tasks, entries, one)
    assert len(calls) == 1  # same patch: reused
    other = tiny_task.patch.replace("stop + 1", "stop + 2")
    view = grade_predictions([{"instance_id": iid, "model_patch": other}], tasks, entries, one)
    assert len(calls) == 2 and not view[iid]["resolved"]  # different patch: graded again
    assert len(entries) == 2  # and both grades are kept
    entries[next(k for k in entries if entries[k] is view[iid])]["status"] = "ERROR"
    grade_predictions([{"instance_id": iid, "model_patch": other}], tasks, entries, one)
    assert len(calls) == 3  # errored: retried


# ================================================================ round 2 (issue 36)
# ---------------------------------------------------------------- 9. host-side I/O stays in the workspace

@pytest.fixture
def canary(tmp_path):
    """A root-only file and folder on the host: what host-side I/O must never read, change or create in."""
    folder = tmp_path / "host-secrets"
    folder.mkdir(mode=0o700)
    secret = folder / "canary.txt"
    secret.write_text("CANARY-4f1d9 root secret\n")
    secret.chmod(0o600)
    return secret


# Each route tries to point a repository path at the host's "/": the path the editor is then
# given is the canary's path below "/" behind that route.
SWAP_ROUTES = {
    "repository folder swapped for a link": ("cd .. && mv repo repo.orig && ln -s / repo", ""),
    "repository folder renamed and rebuilt": ("cd .. && mv repo repo.orig && mkdir repo && ln -s / repo/r", "r/"),
    "link inside the repository": ("ln -s / root_link", "root_link/"),
    "link deeper in the path": ("mkdir -p a && ln -s / a/b", "a/b/"),
    "folder swapped for a link": ("mkdir -p pkg && rmdir pkg && ln -s / pkg", "pkg/"),
}


@as_root
@pytest.mark.parametrize("route", list(SWAP_ROUTES))
def test_host_side_io_never_follows_a_swapped_workspace(tiny_task, env_config, canary, route):
    command, prefix = SWAP_ROUTES[route]
    target = prefix + str(canary.relative_to("/"))
    created = canary.parent / "created.txt"
    with LocalEnvironment(tiny_task, env_config) as env:
        bash(env, command)
        outs = [edit(env, command="view", path=target),
                edit(env, command="str_replace", path=target, old_str="root secret", new_str="changed"),
                edit(env, command="insert", path=target, insert_line=0, new_str="inserted"),
                edit(env, command="create", path=prefix + str(created.relative_to("/")), file_text="x"),
                edit(env, command="view", path=str(Path(env.workdir) / target))]
        try:
            patch = env.diff()
        except Exception as exc:  # noqa: BLE001 - a refusal is fine; a leak is not
            patch = str(exc)
    assert all("CANARY" not in out for out in outs), outs
    assert "CANARY" not in patch
    assert canary.read_text() == "CANARY-4f1d9 root secret\n" and not created.exists()


@as_root
def test_hard_links_are_refused_by_the_editor(tiny_task, env_config, canary):
    """A hard link to a host file (on a machine without fs.protected_hardlinks, or made from
    outside) is neither read nor written: a root-only one by the episode's permissions, a
    readable one because the editor opens only files with one name."""
    readable = canary.parent.parent / "readable.txt"
    readable.write_text("READABLE host file\n")
    readable.chmod(0o644)
    with LocalEnvironment(tiny_task, env_config) as env:
        os.link(canary, Path(env.workdir) / "secret.txt")
        os.link(readable, Path(env.workdir) / "public.txt")
        outs = [edit(env, command=c, path=p, old_str="e", new_str="x", view_range=None)
                for p in ("secret.txt", "public.txt") for c in ("view", "str_replace")]
        assert all(out.startswith("Error:") for out in outs), outs
        assert "permission denied" in outs[0] and "hard links" in outs[2], outs
        assert "has been edited" in edit(env, command="str_replace", path="tinycalc/ranges.py",
                                         old_str="stop))", new_str="stop + 1))")
    assert canary.read_text() == "CANARY-4f1d9 root secret\n" and readable.read_text() == "READABLE host file\n"


@as_root
def test_a_swapped_workspace_leaks_nothing_through_run_episodes(tiny_task, env_config, canary, tmp_path):
    target = str(canary.relative_to("/"))
    created = canary.parent / "created-by-episode.txt"
    script = [Generation(format_tool_call("bash", {"command": SWAP_ROUTES["repository folder swapped for a link"][0]})),
              Generation(format_tool_call("str_replace_editor", {"command": "view", "path": target})),
              Generation(format_tool_call("str_replace_editor", {"command": "create", "file_text": "x",
                                                                 "path": str(created.relative_to("/"))})),
              Generation(format_tool_call("submit", {}))]
    run = tmp_path / "run"
    [traj] = run_episodes([tiny_task], ReplayPolicy(script), None, partial(make_environment, config=env_config),
                          replace(AgentConfig.preset("smoke"), step_limit=6), writer=TrajectoryWriter(run))
    stored = "".join(p.read_text() for p in run.rglob("*") if p.is_file())
    assert traj.exit_status == "submitted" and "CANARY" not in stored and not created.exists()


@dataclass
class RecordingOracle:
    """An ORACLE expert that records the file texts the loop hands it."""

    seen: list = field(default_factory=list)
    name: str = "recording-oracle"
    oracle: bool = True

    def advise(self, request):
        self.seen.append(dict(request.files or {}))
        return ReferenceExpert("exact_edit").advise(request)


@as_root
@pytest.mark.parametrize("swap", ["link", "hard link"])
def test_the_oracle_expert_reads_no_host_file_through_a_swapped_gold_file(tiny_task, env_config, canary, tmp_path, swap):
    """The loop reads the gold patch's files for an ORACLE expert's exact edits: a model that swaps
    such a file for a link (or a hard link) to a host file gets that file skipped, not read."""
    gold = next(iter(file_diffs(tiny_task.patch))).old_path
    command = (f"ln -sf {canary} {gold}" if swap == "link" else f"rm {gold}")
    script = [Generation(format_tool_call("bash", {"command": command})),
              Generation(format_tool_call("ask_expert", {"question": "What is the fix?"})),
              Generation(format_tool_call("submit", {}))]
    expert = RecordingOracle()

    def env_with_hard_link(task):
        env = make_environment(task, env_config)
        if swap == "hard link":
            original = env.run
            def run(cmd, timeout_s=None):  # the model's `rm`, then a hard link made from outside
                out = original(cmd, timeout_s)
                if cmd == command:
                    os.link(canary, Path(env.workdir) / gold)
                return out
            env.run = run
        return env

    [traj] = run_episodes([tiny_task], ReplayPolicy(script), expert, env_with_hard_link,
                          replace(AgentConfig.preset("smoke"), step_limit=5), writer=TrajectoryWriter(tmp_path / "run"))
    assert traj.counts.expert_calls == 1 and expert.seen == [{}], expert.seen
    # what the model is told (the expert's reply included); a hard link made from outside still shows in
    # the root-side `diff` (docs/BOUNDARY.md, residuals): that is the diff's boundary, not this read's
    assert "CANARY" not in json.dumps(traj.messages) and canary.read_text() == "CANARY-4f1d9 root secret\n"


# ---------------------------------------------------------------- 10. grading integrity

FIX_HOOK = "#!/bin/sh\nsed -i 's/range(start, stop))/range(start, stop + 1))/' tinycalc/ranges.py\n"


def _new_file(path: str, content: str, mode: str = "100755") -> str:
    lines = content.splitlines()
    return (f"diff --git a/{path} b/{path}\nnew file mode {mode}\n--- /dev/null\n+++ b/{path}\n"
            f"@@ -0,0 +1,{len(lines)} @@\n" + "".join(f"+{ln}\n" for ln in lines))


GIT_PATCHES = {
    "a hook": _new_file(".git/hooks/post-checkout", FIX_HOOK),
    "hooksPath in .git/config": _new_file(".git/config", "[core]\n\thooksPath = hooks\n", "100644")
    + _new_file("hooks/post-checkout", FIX_HOOK),
    "a hook through a link the patch adds": ("diff --git a/x b/x\nnew file mode 120000\n--- /dev/null\n+++ b/x\n"
                                             "@@ -0,0 +1 @@\n+.git\n\\ No newline at end of file\n")
    + _new_file("x/hooks/post-checkout", FIX_HOOK),
}


@pytest.mark.parametrize("kind", list(GIT_PATCHES))
def test_patches_into_git_data_are_refused(tiny_task, env_config, tmp_path, kind):
    report = grade(tiny_task, GIT_PATCHES[kind], env_config, log_dir=tmp_path)
    assert not report.resolved and report.status == "RESOLVED_NO", report


TAMPER = '''
import _pytest.reports as _reports

_original = _reports.TestReport.from_item_and_call.__func__


def _always_passed(cls, item, call):
    report = _original(cls, item, call)
    report.outcome = "passed"
    return report


_reports.TestReport.from_item_and_call = classmethod(_always_passed)
'''


def test_a_patched_test_reporter_is_caught_by_the_canary(tiny_task, env_config, tmp_path):
    """The package's own code rewrites pytest's reports: the revert of test infrastructure cannot
    see it; the grader's canary test, which must fail, is reported passed."""
    patch = ("diff --git a/tinycalc/__init__.py b/tinycalc/__init__.py\n--- a/tinycalc/__init__.py\n"
             "+++ b/tinycalc/__init__.py\n@@ -0,0 +1," + str(len(TAMPER.splitlines())) + " @@\n"
             + "".join(f"+{ln}\n" for ln in TAMPER.splitlines()))
    report = grade(tiny_task, patch, env_config, log_dir=tmp_path)
    assert not report.resolved and report.status == "ERROR" and "test reporting tampered" in report.error, report
    honest = grade(tiny_task, tiny_task.patch, env_config, log_dir=tmp_path)
    assert honest.resolved and honest.status == "RESOLVED_FULL", honest


def test_the_canary_leaves_the_tasks_own_test_files_alone(tiny_task, env_config, tmp_path):
    """pylint's runner tests lint their own source: a canary appended to that file failed the gold
    patch (pylint-dev__pylint-6903). The canary is its own file, added to the test command."""
    own = 'def test_reads_its_own_source():\n    assert len(open(__file__).read().splitlines()) == 2\n'
    test_patch = ("diff --git a/tests/test_a_self.py b/tests/test_a_self.py\nnew file mode 100644\n"
                  "--- /dev/null\n+++ b/tests/test_a_self.py\n@@ -0,0 +1,2 @@\n"
                  + "".join(f"+{line}\n" for line in own.splitlines()))
    task = replace(tiny_task, test_patch=test_patch,
                   PASS_TO_PASS=[*tiny_task.PASS_TO_PASS, "tests/test_a_self.py::test_reads_its_own_source"])
    report = grade(task, task.patch, env_config, log_dir=tmp_path)
    assert report.resolved and report.status == "RESOLVED_FULL", report
    log = Path(report.log_path).read_text()
    assert re.search(r"FAILED tests/test_[0-9a-f]{12}\.py::test_[0-9a-f]{12}", log), log[-2000:]


def test_the_canary_file_holds_no_unittest_class(tiny_task, env_config):
    """A unittest TestCase in the session flipped a pytester test (pytest-dev__pytest-10081: its
    FAIL_TO_PASS test passed without the fix); a canary file of its own holds one function."""
    from protege.env.grading import plant_canary

    with LocalEnvironment(tiny_task, env_config) as env:
        canary = plant_canary(env, tiny_task)
        text = env.read_file(canary["file"])
    assert canary["file"] != "tests/test_ranges.py" and canary["command"].endswith(canary["file"])
    assert "unittest" not in text and text.count("def test_") == 1


# ---------------------------------------------------------------- 11. neighbours and totals

@as_root
def test_sweep_never_kills_a_uid_leased_since(tiny_task, env_config, tmp_path):
    cfg = SandboxConfig()
    lease = sandbox.UidLease(cfg)
    live = subprocess.Popen(["sleep", "30"], user=lease.uid, group=lease.uid)
    try:
        dead = subprocess.Popen(["true"])
        dead.wait()
        stale = tmp_path / "ws" / "protege-ws-stale"
        (stale / "box").mkdir(parents=True)
        (stale / "owner.json").write_text(json.dumps({"pid": dead.pid, "start_ticks": 1, "uid": lease.uid}))
        assert sweep_stale_workspaces(tmp_path / "ws", cfg) == [str(stale)]
        assert live.poll() is None, "the sweep killed a live episode's process"
    finally:
        live.kill()
        lease.release()


def test_dev_shm_is_writable_and_counted(tiny_task, env_config):
    cfg = replace(env_config, sandbox=replace(SandboxConfig(), disk_mb=60, watch_interval_s=0.05))
    with LocalEnvironment(tiny_task, cfg) as env:
        ok = env.run("python -c 'import multiprocessing as m; l = m.Lock(); q = m.Queue(); q.put(1); print(q.get())'")
        assert ok.output.strip() == "1", ok.observation()
        res = env.run("head -c 100000000 /dev/zero > /dev/shm/big; sleep 1", timeout_s=60)
        assert res.disk_killed, res.observation()


def test_file_count_is_capped_and_cheap(tiny_task, env_config):
    cfg = replace(env_config, sandbox=replace(SandboxConfig(), max_files=5000, watch_interval_s=0.05))
    with LocalEnvironment(tiny_task, cfg) as env:
        res = env.run("mkdir many && cd many && for i in $(seq 1 4); do seq -f f$i-%g 1 20000 | xargs touch; done",
                      timeout_s=120)
        assert res.disk_killed and "too many files" in res.observation(), res.observation()
        start = time.monotonic()
        assert env.run("echo next").output.strip() == "next"
        assert time.monotonic() - start < 5  # the walk stops at the cap
        assert env.run("rm -rf many && echo freed").output.strip() == "freed"


@as_root
def test_workspaces_outside_tmp_are_closed_to_other_episodes(tiny_task, env_config):
    root = Path(tempfile.mkdtemp(prefix="protege-ws-root-", dir="/var/tmp"))
    root.chmod(0o755)  # a shared folder such as /srv/workspaces
    try:
        cfg = replace(env_config, workspace_root=str(root))
        with LocalEnvironment(tiny_task, cfg) as a, LocalEnvironment(tiny_task, cfg) as b:
            bash(b, "echo b-secret > mine.txt && echo b-tmp > /tmp/t.txt")
            probes = [f"ls {b.root}", f"ls {b.box}", f"cat {b.workdir}/mine.txt", f"ls {b.box}/tmp",
                      f"cat {b.box}/tmp/t.txt", f"ls {b.root}/git", f"cat {b.root}/owner.json", f"ls {b.box}/home"]
            outs = [bash(a, p) for p in probes]
        assert all("b-secret" not in o and "b-tmp" not in o and "HEAD" not in o and "uid" not in o for o in outs), outs
        assert all("Permission denied" in o for o in outs), outs
    finally:
        shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------- 12. model mistakes stay observations

def test_editor_mistakes_on_odd_paths_are_observations(tiny_task, env_config, tmp_path):
    """A symlink loop, a socket, a 5000-character path: answered like any refused path."""
    calls = [("view", "loop"), ("str_replace", "sock"), ("create", "a/" * 2500 + "x.py"), ("create", "loop/x.py")]
    script = [Generation(format_tool_call("bash", {"command": "ln -s loop loop && python -c \"import socket; "
                                                   "s = socket.socket(socket.AF_UNIX); s.bind('sock')\""})),
              *[Generation(format_tool_call("str_replace_editor", {"command": c, "path": p, "old_str": "a",
                                                                   "new_str": "b", "file_text": "x"}))
                for c, p in calls],
              Generation(format_tool_call("submit", {}))]
    [traj] = run_episodes([tiny_task], ReplayPolicy(script), None, partial(make_environment, config=env_config),
                          replace(AgentConfig.preset("smoke"), step_limit=len(script) + 1))
    assert traj.exit_status == "submitted", (traj.exit_status, traj.error)
    outs = [s.observation for s in traj.steps[1:-1]]
    assert all(o.startswith("Error:") for o in outs) and "link" in outs[0] and "regular file" in outs[1], outs
    assert "longer than" in outs[2] and "link" in outs[3], outs


def test_terminal_control_never_reaches_records_or_the_viewer(tiny_task, env_config, tmp_path):
    from protege.app.viewer import write_report

    osc = "printf 'before\\033]52;c;aGk=\\007\\033[2Jafter\\302\\233K\\n'"  # the last: C1 CSI in UTF-8
    script = [Generation(format_tool_call("bash", {"command": osc})), Generation(format_tool_call("submit", {}))]
    run = tmp_path / "run"
    [traj] = run_episodes([tiny_task], ReplayPolicy(script), None, partial(make_environment, config=env_config),
                          AgentConfig.preset("smoke"), writer=TrajectoryWriter(run))
    assert traj.steps[0].observation == "beforeafter"
    report = write_report(run)
    for path in [*run.rglob("*.json*"), report, *report.parent.rglob("*.js")]:
        text = path.read_text(encoding="utf-8")
        assert not any(c in text for c in "\x1b\x07\x9b\x9d"), path


# ---------------------------------------------------------------- 13. grading UX

def test_grade_cli_keeps_every_entry_and_refuses_unknown_runners(tiny_task, env_config, tmp_path):
    from typer.testing import CliRunner

    from protege.app.cli import app
    from protege.tasks.schema import save_tasks

    tasks_file = save_tasks([tiny_task], tmp_path / "tasks.jsonl")
    out = tmp_path / "report.json"
    common = ["--instances", str(tasks_file), "--out", str(out), "--mirror-template", env_config.repos.mirror_template]
    for name, patch in (("gold", tiny_task.patch), ("empty", ""), ("bad", 5)):
        preds = tmp_path / f"{name}.jsonl"
        preds.write_text(json.dumps({"instance_id": tiny_task.instance_id, "model_name_or_path": name,
                                     "model_patch": patch}) + "\n")
        result = CliRunner().invoke(app, ["grade", str(preds), *common])
        assert result.exit_code == (1 if name == "bad" else 0), result.output
    entries = json.loads(out.read_text())["entries"]
    by_model = {e["model_name_or_path"]: e for e in entries.values()}
    assert set(by_model) == {"gold", "empty", "bad"} and by_model["gold"]["resolved"]
    assert by_model["bad"]["status"] == "ERROR" and "model_patch" in by_model["bad"]["error"]
    typo = CliRunner().invoke(app, ["grade", str(tmp_path / "gold.jsonl"), *common, "--runner", "swebench_local"])
    assert typo.exit_code == 2 and "swebench-local" in typo.output
    assert grade(tiny_task, 5, env_config).status == "ERROR"  # type: ignore[arg-type]
