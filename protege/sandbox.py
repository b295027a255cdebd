"""Run one untrusted shell command with limits: the process layer of every local environment.

Layers, each used where the machine allows it:
- a new session (process group) that is killed whole on timeout, on output overflow and
  when the command returns (nothing stays behind in the background);
- resource limits: address space, processes, file size, CPU time;
- when running as root, the command runs as an unprivileged uid (rlimits on process
  counts do not bind root);
- bubblewrap (``bwrap``) where installed: read-only root filesystem, a private /tmp, only the
  workspace writable, a private PID namespace, and no network;
- a scrubbed environment: no API keys or other secrets, HOME inside the workspace.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

_BG_MARK = "__PROTEGE_BACKGROUND__="
_BG_RE = re.compile(r"\n?" + _BG_MARK + r"(-?\d+)\n?")
# Runs inside the sandbox: the command in a child bash, then (in a PID namespace) counts the
# processes it left behind without forking, so the count sees only the command's leftovers.
_WRAPPER = (
    'bash -c "$__PROTEGE_CMD" </dev/null; __rc=$?\n'
    'if [ "$__PROTEGE_NS" = 1 ]; then __p=(/proc/[0-9]*); '
    'printf "\\n%s%d\\n" "$__PROTEGE_MARK" $(( ${#__p[@]} - 2 )); fi\n'
    'exit $__rc\n'
)


@dataclass
class SandboxConfig:
    """Limits for one command. -1 disables a limit."""

    timeout_s: float = 60.0  # wall clock per command, seconds
    output_limit_chars: int = 10_000  # shown to the model: head + tail, the middle is cut
    output_kill_bytes: int = 16_000_000  # read this much and the command is killed
    memory_mb: int = 4096  # address space (RLIMIT_AS), MiB
    max_processes: int = 256  # processes of the sandbox uid (RLIMIT_NPROC)
    max_file_mb: int = 256  # largest file a command may write (RLIMIT_FSIZE), MiB
    cpu_s: int = -1  # CPU seconds (RLIMIT_CPU)
    isolation: Literal["auto", "bwrap", "none"] = "auto"  # auto = bwrap where installed
    sandbox_uid: int = 65534  # uid/gid used when the caller is root (nobody)
    network: bool = False  # bwrap only: keep the host network
    extra_env: dict[str, str] = field(default_factory=dict)  # explicit, non-secret additions


@dataclass
class CommandResult:
    """What one command did. `output` is already truncated for the model."""

    command: str
    output: str
    exit_code: int | None
    duration_s: float
    timed_out: bool = False
    output_killed: bool = False  # killed because it printed more than output_kill_bytes
    truncated_chars: int = 0  # characters cut from the middle of the output
    total_bytes: int = 0
    background_killed: int = 0  # processes left running by the command, stopped on return
    error: str | None = None  # the command could not be started at all

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not (self.timed_out or self.output_killed or self.error)

    def observation(self) -> str:
        """The text the agent sees: output plus a plain note for every limit that fired."""
        notes = []
        if self.error:
            notes.append(f"[sandbox error: {self.error}]")
        if self.timed_out:
            notes.append(f"[command timed out after {self.duration_s:.0f}s and was killed]")
        if self.output_killed:
            notes.append(f"[command killed: it printed more than {self.total_bytes:,} bytes]")
        if self.truncated_chars:
            notes.append(f"[output truncated: {self.truncated_chars:,} characters cut from the middle]")
        if self.background_killed:
            notes.append(f"[{self.background_killed} background process(es) left by the command "
                         "were stopped: commands cannot keep processes running]")
        if self.exit_code not in (0, None) and not self.timed_out:
            notes.append(f"[exit code {self.exit_code}]")
        return "\n".join([self.output.rstrip("\n"), *notes]).strip("\n")


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def scrubbed_env(home: Path, cfg: SandboxConfig) -> dict[str, str]:
    """A fresh environment: nothing inherited but a PATH that finds this Python."""
    path = os.pathsep.join(dict.fromkeys([str(Path(sys.executable).parent), "/usr/local/bin",
                                          "/usr/bin", "/bin"]))
    env = {"PATH": path, "HOME": str(home), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
           "TERM": "dumb", "PAGER": "cat", "GIT_PAGER": "cat", "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONUNBUFFERED": "1", "PYTEST_ADDOPTS": "-p no:cacheprovider", "PIP_NO_INPUT": "1", "TMPDIR": "/tmp",
           "GIT_CONFIG_NOSYSTEM": "1"}
    env.update(cfg.extra_env)
    return env


def _limits(cfg: SandboxConfig):
    def apply() -> None:  # runs in the child after the uid switch
        def setl(res: int, value: int) -> None:
            if value >= 0:
                resource.setrlimit(res, (value, value))

        setl(resource.RLIMIT_AS, cfg.memory_mb * 2**20 if cfg.memory_mb >= 0 else -1)
        setl(resource.RLIMIT_NPROC, cfg.max_processes)
        setl(resource.RLIMIT_FSIZE, cfg.max_file_mb * 2**20 if cfg.max_file_mb >= 0 else -1)
        setl(resource.RLIMIT_CPU, cfg.cpu_s)
        setl(resource.RLIMIT_CORE, 0)
        # A file-size overrun must fail the write, not kill the shell with SIGXFSZ.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    return apply


def hand_over(root: Path, cfg: SandboxConfig) -> None:
    """Give a folder tree to the sandbox uid (when running as root) so commands can write it."""
    if os.geteuid() != 0 or cfg.sandbox_uid < 0:
        return
    for dirpath, _dirnames, filenames in os.walk(root):
        os.chown(dirpath, cfg.sandbox_uid, cfg.sandbox_uid)
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chown(path, cfg.sandbox_uid, cfg.sandbox_uid)
    Path(root).chmod(0o755)


def _session_members(sid: int) -> list[int]:
    """PIDs whose session is `sid` (the command's leftovers when not in a PID namespace)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # fields after the parenthesised comm: state ppid pgrp session ...
        parts = stat.rsplit(")", 1)[-1].split()
        if len(parts) > 3 and int(parts[3]) == sid and parts[0] not in ("Z", "X"):  # zombies are dead
            pids.append(int(entry.name))
    return pids


def _kill_session(sid: int) -> int:
    killed = 0
    for _ in range(20):  # a fork bomb refills the group; keep killing until it is empty
        members = _session_members(sid)
        if not members:
            break
        for pid in members:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        time.sleep(0.02)
    return killed


class _Collector:
    """Reads a pipe to EOF keeping the head and tail, so a gigabyte never sits in memory."""

    def __init__(self, stream, keep: int, kill_at: int, on_overflow):
        self.stream, self.keep, self.kill_at, self.on_overflow = stream, keep, kill_at, on_overflow
        self.head = bytearray()
        self.tail: deque[bytes] = deque()
        self.tail_len = 0
        self.total = 0
        self.overflowed = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        half = self.keep // 2
        while chunk := self.stream.read1(65536) if hasattr(self.stream, "read1") else self.stream.read(65536):
            self.total += len(chunk)
            room = half - len(self.head)
            if room > 0:
                self.head += chunk[:room]
                chunk = chunk[room:]
            if chunk:
                self.tail.append(chunk)
                self.tail_len += len(chunk)
                while self.tail and self.tail_len - len(self.tail[0]) >= half:
                    self.tail_len -= len(self.tail.popleft())
            if self.kill_at >= 0 and self.total > self.kill_at and not self.overflowed:
                self.overflowed = True
                self.on_overflow()

    def text(self, limit_chars: int) -> tuple[str, int]:
        head = self.head.decode("utf-8", "replace")
        tail = b"".join(self.tail).decode("utf-8", "replace")
        if self.total <= len(self.head) + self.tail_len:
            full = head + tail
            if len(full) <= limit_chars:
                return full, 0
        half = limit_chars // 2
        tail = tail[-half:] if half else ""
        cut = max(0, self.total - len(head[:half].encode()) - len(tail.encode()))
        return f"{head[:half]}\n... [{cut:,} characters cut] ...\n{tail}", cut


def run_command(command: str, cwd: Path, home: Path, cfg: SandboxConfig,
                writable: list[Path] | None = None, timeout_s: float | None = None) -> CommandResult:
    """Run `command` with bash in `cwd`, sandboxed; never raises for what the command does."""
    timeout = cfg.timeout_s if timeout_s is None else timeout_s
    env = scrubbed_env(home, cfg)
    env.update(__PROTEGE_CMD=command, __PROTEGE_MARK=_BG_MARK, __PROTEGE_NS="0")
    argv = ["bash", "-c", _WRAPPER]
    use_bwrap = cfg.isolation == "bwrap" or (cfg.isolation == "auto" and bwrap_path())
    if use_bwrap:
        if not bwrap_path():
            return CommandResult(command, "", None, 0.0, error="isolation='bwrap' but bwrap is not installed")
        env["__PROTEGE_NS"] = "1"
        binds: list[str] = []
        # The caller's HOME (keys, tokens, shell history) is hidden behind an empty tmpfs;
        # only the Python installation is put back, read-only, when it lives there.
        home_dir = Path.home().resolve()
        if home_dir != Path("/"):
            binds += ["--perms", "0755", "--tmpfs", str(home_dir)]
        # The Python installation goes back in, read-only, where the hidden HOME or the private
        # /tmp covers it (a checkout with its venv under /tmp, pyenv under /root).
        hiding = [h for h in (home_dir, Path("/tmp")) if h != Path("/")]
        for prefix in sorted({Path(p).resolve() for p in (sys.prefix, sys.base_prefix)}):
            covers = [h for h in hiding if prefix.is_relative_to(h)]
            if not covers:
                continue
            for parent in reversed(prefix.parents):
                if any(parent.is_relative_to(h) and parent != h for h in covers):
                    binds += ["--perms", "0755", "--dir", str(parent)]
            binds += ["--ro-bind", str(prefix), str(prefix)]
        for path in writable or [cwd]:
            for parent in reversed(Path(path).parents):  # bwrap would create them 0700
                if parent != Path("/"):
                    binds += ["--perms", "0755", "--dir", str(parent)]
            binds += ["--bind", str(path), str(path)]
        argv = [bwrap_path(), "--ro-bind", "/", "/", "--tmpfs", "/tmp", "--dev", "/dev",
                "--tmpfs", "/dev/shm", "--proc", "/proc", *binds, "--unshare-pid", "--unshare-ipc",
                *([] if cfg.network else ["--unshare-net"]), "--die-with-parent",
                "--chdir", str(cwd), "--", *argv]
    as_root = os.geteuid() == 0 and cfg.sandbox_uid >= 0
    if use_bwrap and as_root:
        # bwrap runs as root so it can bind the root-only Python installation; the command
        # itself drops to the sandbox uid inside, where process-count limits bind.
        i = argv.index("--") + 1
        uid = str(cfg.sandbox_uid)
        argv[i:i] = [shutil.which("setpriv") or "setpriv", f"--reuid={uid}", f"--regid={uid}",
                     "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"]
        as_root = False
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_limits(cfg),
            user=cfg.sandbox_uid if as_root else None, group=cfg.sandbox_uid if as_root else None,
            extra_groups=[] if as_root else None)
    except OSError as exc:
        return CommandResult(command, "", None, 0.0, error=f"cannot start command: {exc}")
    sid = proc.pid

    def kill_all() -> None:
        try:
            os.killpg(sid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    collector = _Collector(proc.stdout, max(cfg.output_limit_chars, 0) * 4, cfg.output_kill_bytes, kill_all)
    timed_out = False
    try:
        proc.wait(timeout=timeout if timeout > 0 else None)
    except subprocess.TimeoutExpired:
        timed_out = True
        kill_all()
        proc.wait()
    except BaseException:  # Ctrl-C in the caller: never leave the command running
        kill_all()
        _kill_session(sid)
        raise
    leftovers = _kill_session(sid)
    collector.thread.join(timeout=5)
    proc.stdout.close()
    output, cut = collector.text(cfg.output_limit_chars)
    background = leftovers if not use_bwrap else 0
    marks = list(_BG_RE.finditer(output))
    if marks:  # the wrapper's count line; output printed after it (dying processes) is kept
        last = marks[-1]
        background = max(background, int(last.group(1)))
        output = output[:last.start()] + output[last.end():]
    exit_code = proc.returncode
    if timed_out or collector.overflowed:
        exit_code = None
    return CommandResult(command, output, exit_code, time.monotonic() - start, timed_out=timed_out,
                         output_killed=collector.overflowed, truncated_chars=cut,
                         total_bytes=collector.total, background_killed=background)
