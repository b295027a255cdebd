"""Run one untrusted shell command with limits: the process layer of every local environment.

Layers, each used where the machine allows it:
- a new session (process group) that is killed whole on timeout, on output overflow and
  when the command returns (nothing stays behind in the background);
- resource limits per process: address space, processes, file size, CPU time;
- totals per command, watched while it runs: resident memory of all its processes together
  and the disk used by its writable folders (the workspace quota); over either, it is killed;
- when running as root, the command runs as an unprivileged uid, one uid per episode
  (`UidLease`), so process-count limits are not shared between concurrent episodes and
  every process an episode left behind can be found and killed by uid;
- bubblewrap (``bwrap``): read-only root filesystem, the episode's own /tmp (a folder of
  the workspace, outside the repository), only the workspace writable, a private PID
  namespace, and no network. ``isolation="auto"`` refuses to run without bwrap; running
  unisolated needs ``isolation="none"``, asked for explicitly (and it warns);
- a scrubbed environment: no API keys or other secrets, HOME inside the workspace.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from protege.env.processes import OutputCollector, Watchdog, kill_members, kill_uid

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
    memory_mb: int = 4096  # per process (RLIMIT_AS) and, resident, for all processes of a command together, MiB
    max_processes: int = 256  # processes of the episode's uid (RLIMIT_NPROC)
    max_file_mb: int = 256  # largest file a command may write (RLIMIT_FSIZE), MiB
    disk_mb: int = 2048  # the workspace's disk quota (its writable folders), MiB; a command that grows past it is killed
    max_files: int = 100_000  # entries (files, folders, links) the workspace may hold; more is killed like disk_mb
    cpu_s: int = -1  # CPU seconds (RLIMIT_CPU)
    isolation: Literal["auto", "bwrap", "none"] = "auto"  # auto = bwrap, refused where missing; none must be asked for
    sandbox_uid: int = 65534  # uid/gid used when the caller is root and no per-episode uid is leased (nobody)
    uid_base: int = 1_200_000  # per-episode uids (root only): uid_base .. uid_base + uid_slots - 1; -1 = one shared uid
    uid_slots: int = 512
    watch_interval_s: float = 0.2  # how often memory and disk totals are checked while a command runs
    network: bool = False  # bwrap only: keep the host network
    extra_env: dict[str, str] = field(default_factory=dict)  # explicit, non-secret additions


class SandboxUnavailable(RuntimeError):
    """The isolation asked for cannot be had on this machine."""


def use_bwrap(cfg: SandboxConfig) -> bool:
    """Whether commands run under bubblewrap. `auto` never falls back silently: without bwrap it
    raises; running unisolated takes `isolation="none"` and warns."""
    if cfg.isolation == "none":
        warnings.warn("sandbox isolation='none': model commands run with the host's network and "
                      "filesystem view (only rlimits and the uid switch apply)", RuntimeWarning, stacklevel=2)
        return False
    if cfg.isolation not in ("auto", "bwrap"):
        raise ValueError(f"SandboxConfig.isolation must be 'auto', 'bwrap' or 'none', got {cfg.isolation!r}")
    if bwrap_path() is None:
        raise SandboxUnavailable(
            f"isolation={cfg.isolation!r} needs bubblewrap, which is not installed (apt-get install bubblewrap); "
            "to run model commands without isolation, set isolation='none' explicitly")
    return True


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
    memory_killed: bool = False  # killed: its processes together held more than memory_mb resident
    disk_killed: bool = False  # killed: the workspace grew past disk_mb or max_files
    disk_mb_used: float | None = None  # the workspace's size after the command, MiB (None: not measured)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not (self.timed_out or self.output_killed or self.error
                                            or self.memory_killed or self.disk_killed)

    def observation(self) -> str:
        """The text the agent sees: output plus a plain note for every limit that fired."""
        notes = []
        if self.error:
            notes.append(f"[sandbox error: {self.error}]")
        if self.timed_out:
            notes.append(f"[command timed out after {self.duration_s:.0f}s and was killed]")
        if self.output_killed:
            notes.append(f"[command killed: it printed more than {self.total_bytes:,} bytes]")
        if self.memory_killed:
            notes.append("[command killed: its processes together used more memory than allowed]")
        if self.disk_killed:
            notes.append(f"[the workspace grew past its disk quota ({self.disk_mb_used or 0:.0f} MiB used, or too "
                         "many files): the command was stopped; delete files to go on]")
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


def scrubbed_env(home: Path, cfg: SandboxConfig, tmp: str = "/tmp") -> dict[str, str]:
    """A fresh environment: nothing inherited but a PATH that finds this Python."""
    # The interpreter's folder with symlinks resolved: a venv reached through a link under
    # /tmp is not at that path inside the sandbox, whose /tmp is the episode's own.
    path = os.pathsep.join(dict.fromkeys([str(Path(sys.executable).parent.resolve()), "/usr/local/bin",
                                          "/usr/bin", "/bin"]))
    env = {"PATH": path, "HOME": str(home), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
           "TERM": "dumb", "PAGER": "cat", "GIT_PAGER": "cat", "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONUNBUFFERED": "1", "PYTEST_ADDOPTS": "-p no:cacheprovider", "PIP_NO_INPUT": "1", "TMPDIR": tmp,
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


def command_uid(cfg: SandboxConfig, uid: int | None = None) -> int | None:
    """The uid a command runs as: the episode's leased uid, else the shared sandbox uid; None
    when not running as root (then commands keep the caller's uid)."""
    if os.geteuid() != 0:
        return None
    if uid is not None:
        return uid
    return cfg.sandbox_uid if cfg.sandbox_uid >= 0 else None


def hand_over(root: Path, cfg: SandboxConfig, uid: int | None = None, keep_root_owned: tuple[str, ...] = ()) -> None:
    """Give a folder tree to the command uid (when running as root) so commands can write it.
    Regular files under a folder named in `keep_root_owned` (relative to `root`) stay root's:
    readable by commands, never rewritten by them (git objects shared by hard link)."""
    owner = command_uid(cfg, uid)
    if owner is None:
        return
    keep = [os.path.join(root, k) for k in keep_root_owned]
    for dirpath, _dirnames, filenames in os.walk(root):
        os.chown(dirpath, owner, owner)
        frozen = any(dirpath == k or dirpath.startswith(k + os.sep) for k in keep)
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not frozen and not os.path.islink(path):
                os.chown(path, owner, owner)
    Path(root).chmod(0o755)


UID_LOCK_DIR = os.path.join(tempfile.gettempdir(), "protege-uid-locks")  # one lock file per leased uid


def _try_lock(uid: int, lock_dir: str | Path) -> int | None:
    """The fd holding `uid`'s lease lock, or None when a live process holds it."""
    Path(lock_dir).mkdir(mode=0o700, exist_ok=True)
    fd = os.open(Path(lock_dir) / f"{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


@contextlib.contextmanager
def uid_lock(uid: int, cfg: SandboxConfig, lock_dir: str | Path | None = None):
    """Hold `uid`'s lease for the block if no live process holds it; yields whether it is held.
    Only a holder may kill a pool uid's processes (another holder's episode runs as it)."""
    in_pool = cfg.uid_base >= 0 and cfg.uid_base <= uid < cfg.uid_base + cfg.uid_slots
    fd = _try_lock(uid, lock_dir or UID_LOCK_DIR) if in_pool else None
    try:
        yield fd is not None
    finally:
        if fd is not None:
            os.close(fd)


class UidLease:
    """One uid of the per-episode pool, held (by an exclusive file lock) until released or
    until this process dies. A fresh lease kills whatever a dead run left running as it."""

    def __init__(self, cfg: SandboxConfig, lock_dir: str | Path | None = None):
        self.uid: int | None = None
        self._fd: int | None = None
        if os.geteuid() != 0 or cfg.uid_base < 0:
            return
        lock_dir = Path(lock_dir or UID_LOCK_DIR)
        for slot in range(cfg.uid_slots):
            fd = _try_lock(cfg.uid_base + slot, lock_dir)
            if fd is None:
                continue
            self.uid, self._fd = cfg.uid_base + slot, fd
            kill_uid(self.uid)
            return
        raise SandboxUnavailable(f"all {cfg.uid_slots} per-episode uids from {cfg.uid_base} are in use "
                                 f"(locks in {lock_dir})")

    def release(self) -> None:
        if self.uid is not None:
            kill_uid(self.uid)
        if self._fd is not None:
            os.close(self._fd)
        self.uid = self._fd = None


def _wait(proc: subprocess.Popen, timeout: float, kill_all, own_uid: int | None) -> tuple[bool, int]:
    """Wait for the command (killing it at `timeout`), then kill what it left running: (timed
    out, processes killed after it returned)."""
    timed_out = False
    try:
        proc.wait(timeout=timeout if timeout > 0 else None)
    except subprocess.TimeoutExpired:
        timed_out = True
        kill_all()
        proc.wait()
    except BaseException:  # Ctrl-C in the caller: never leave the command running
        kill_all()
        kill_members(sid=proc.pid)
        raise
    leftovers = kill_members(sid=proc.pid)
    if own_uid is not None:  # what escaped the session (setsid) still runs as the episode's uid
        leftovers += kill_uid(own_uid)
    return timed_out, leftovers


def _background_count(output: str, killed: int) -> tuple[str, int]:
    """The output without the wrapper's count of processes the command left behind, and that
    count (at least `killed`); output printed after the count line (dying processes) is kept.

    >>> _background_count("hi\\n__PROTEGE_BACKGROUND__=2\\n", 0)
    ('hi', 2)
    """
    marks = list(_BG_RE.finditer(output))
    if not marks:
        return output, killed
    last = marks[-1]
    return output[:last.start()] + output[last.end():], max(killed, int(last.group(1)))


def _python_binds(hiding: list[Path]) -> list[str]:
    """bwrap arguments that put the Python installation back, read-only, where a hidden folder
    (the caller's HOME, the private /tmp) covers it (a venv under /tmp, pyenv under /root)."""
    binds: list[str] = []
    for prefix in sorted({Path(p).resolve() for p in (sys.prefix, sys.base_prefix)}):
        covers = [h for h in hiding if prefix.is_relative_to(h)]
        if not covers:
            continue
        for parent in reversed(prefix.parents):
            if any(parent.is_relative_to(h) and parent != h for h in covers):
                binds += ["--perms", "0755", "--dir", str(parent)]
        binds += ["--ro-bind", str(prefix), str(prefix)]
    return binds


def _bwrap_argv(cfg: SandboxConfig, cwd: Path, writable: list[Path], tmp_dir: Path | None,
                shm_dir: Path | None) -> list[str]:
    """The bwrap command line up to ``--``: read-only root, the caller's HOME hidden, only
    `writable` writable, the episode's own /tmp and /dev/shm, private PID/IPC (and network)."""
    binds: list[str] = []
    # The caller's HOME (keys, tokens, shell history) is hidden behind an empty tmpfs.
    home_dir = Path.home().resolve()
    if home_dir != Path("/"):
        binds += ["--perms", "0755", "--tmpfs", str(home_dir)]
    binds += _python_binds([h for h in (home_dir, Path("/tmp")) if h != Path("/")])
    for path in writable:
        for parent in reversed(Path(path).parents):  # bwrap would create them 0700
            if parent != Path("/"):
                binds += ["--perms", "0755", "--dir", str(parent)]
        binds += ["--bind", str(path), str(path)]
    # The episode's /tmp is a folder of its workspace (on disk, inside the quota, outside the
    # repository): temp files never enter a patch, and nested test runs work as in SWE-bench's images.
    tmp = ["--bind", str(tmp_dir), "/tmp"] if tmp_dir is not None else ["--perms", "1777", "--tmpfs", "/tmp"]
    shm = (["--bind", str(shm_dir), "/dev/shm"] if shm_dir is not None else
           ["--perms", "1777", "--size", str(64 * 2**20), "--tmpfs", "/dev/shm"])
    return [bwrap_path(), "--ro-bind", "/", "/", *tmp, "--dev", "/dev", *shm, "--proc", "/proc", *binds,
            "--unshare-pid", "--unshare-ipc", *([] if cfg.network else ["--unshare-net"]), "--die-with-parent",
            "--chdir", str(cwd)]


def _command_argv(cfg: SandboxConfig, cwd: Path, writable: list[Path], tmp_dir: Path | None, shm_dir: Path | None,
                  run_uid: int | None) -> list[str]:
    """bwrap around the wrapper script, with setpriv dropping to `run_uid` inside."""
    argv = [*_bwrap_argv(cfg, cwd, writable, tmp_dir, shm_dir), "--"]
    if run_uid is not None:
        # bwrap runs as root so it can bind the root-only Python installation; the command
        # itself drops to the episode's uid inside, where process-count limits bind.
        argv += [shutil.which("setpriv") or "setpriv", f"--reuid={run_uid}", f"--regid={run_uid}",
                 "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"]
    return [*argv, "bash", "-c", _WRAPPER]


def run_command(command: str, cwd: Path, home: Path, cfg: SandboxConfig,
                writable: list[Path] | None = None, timeout_s: float | None = None,
                tmp_dir: Path | None = None, uid: int | None = None, shm_dir: Path | None = None) -> CommandResult:
    """Run `command` with bash in `cwd`, sandboxed; never raises for what the command is or does.

    `writable`: the folders commands may write (default `cwd`); their total size is the disk
    quota's measure. `tmp_dir`: a folder that is the command's /tmp (a private tmpfs when
    None). `shm_dir`: likewise the command's /dev/shm (a private, size-limited tmpfs when None):
    POSIX semaphores and shared memory (multiprocessing) need a writable one. `uid`: the
    episode's leased uid (see `UidLease`); when root and None, the shared `sandbox_uid`."""
    timeout = cfg.timeout_s if timeout_s is None else timeout_s
    problem = ("the command is not a string" if not isinstance(command, str) else
               "the command contains a NUL byte" if "\0" in command else None)
    if problem:
        return CommandResult(str(command), "", None, 0.0, error=problem)
    try:
        bwrapped = use_bwrap(cfg)
    except (SandboxUnavailable, ValueError) as exc:
        return CommandResult(command, "", None, 0.0, error=str(exc))
    writable = list(writable or [cwd])
    env = scrubbed_env(home, cfg, "/tmp" if bwrapped or tmp_dir is None else str(tmp_dir))
    env.update(__PROTEGE_CMD=command, __PROTEGE_MARK=_BG_MARK, __PROTEGE_NS="1" if bwrapped else "0")
    run_uid = command_uid(cfg, uid)
    argv = _command_argv(cfg, cwd, writable, tmp_dir, shm_dir, run_uid) if bwrapped else ["bash", "-c", _WRAPPER]
    switch_in_popen = run_uid is not None and not bwrapped  # inside bwrap, setpriv switches
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_limits(cfg),
            user=run_uid if switch_in_popen else None, group=run_uid if switch_in_popen else None,
            extra_groups=[] if switch_in_popen else None)
    except (OSError, ValueError, UnicodeError) as exc:  # ValueError / UnicodeError: text the OS cannot take
        return CommandResult(command, "", None, 0.0, error=f"cannot start command: {exc}")
    sid = proc.pid
    # Only a per-episode uid can be killed whole: the shared uid may run other episodes.
    own_uid = uid if run_uid is not None and uid is not None else None

    def kill_all() -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(sid, signal.SIGKILL)
        if own_uid is not None:
            kill_uid(own_uid)

    collector = OutputCollector(proc.stdout, max(cfg.output_limit_chars, 0) * 4, cfg.output_kill_bytes, kill_all)
    watchdog = Watchdog(cfg, sid, own_uid, [Path(w) for w in writable], kill_all)
    timed_out, leftovers = _wait(proc, timeout, kill_all, own_uid)
    disk_used = watchdog.stop()
    collector.thread.join(timeout=5)
    proc.stdout.close()
    output, cut = collector.text(cfg.output_limit_chars)
    output, background = _background_count(output, leftovers if not bwrapped else 0)
    exit_code = proc.returncode
    if timed_out or collector.overflowed or watchdog.memory_killed:
        exit_code = None
    return CommandResult(command, output, exit_code, time.monotonic() - start, timed_out=timed_out,
                         output_killed=collector.overflowed, truncated_chars=cut,
                         total_bytes=collector.total, background_killed=background,
                         memory_killed=watchdog.memory_killed, disk_killed=watchdog.disk_killed,
                         disk_mb_used=disk_used)
