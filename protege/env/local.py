"""Environments: a task's repository checked out at `base_commit`, commands run sandboxed.

`Environment` is the protocol the agent loop, collection, RL and grading all use.
`LocalEnvironment` is the default: a fresh temporary workspace per task, each command run
by `protege.env.sandbox.run_command` as the episode's own uid. The Docker environment
(`protege.env.docker`) follows the same protocol.

The model owns everything under the workspace's `box/` (the repository, its `.git`, HOME,
/tmp) and nothing else. The model patch is computed on the host by git, so that git must not
read anything the model wrote but the work tree's files: it uses a root-owned copy of the
repository's git dir made before the model ran (`git/`), a fresh index, our own config
(no hooks, fsmonitor, filters, textconv or external diff) and a scrubbed environment (no API keys), with
a timeout and an output cap. Whatever the model does to
`.git` (hooks, config, exclude, skip-worktree, replace refs), the patch is the true
difference between the work tree and `base_commit`.
"""

from __future__ import annotations

import atexit
import json
import os
import resource
import shutil
import subprocess
import tempfile
import threading
import weakref
from pathlib import Path

from protege.env.base import DEBRIS, GIT_IDENTITY, EnvConfig, EnvironmentError_, PatchTooLarge, git
from protege.env.checkout import checkout
from protege.env.processes import kill_uid, workspace_usage
from protege.env.sandbox import (
    CommandResult,
    SandboxConfig,
    UidLease,
    command_uid,
    hand_over,
    run_command,
    uid_lock,
    use_bwrap,
)
from protege.env.workspace_io import UnsafePath, fs_user, is_same_dir, open_file
from protege.tasks.schema import Task

# Settings that would let files run code or hide changes, all off; every other setting comes
# from the trusted git dir's own config (written by us) and nothing from HOME or the system.
_HARDENED_GIT = ["-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", "core.untrackedCache=false",
                 "-c", "core.splitIndex=false", "-c", "core.autocrlf=false", "-c", "core.safecrlf=false",
                 "-c", "core.attributesFile=/dev/null", "-c", "diff.external=", "-c", "core.sparseCheckout=false",
                 "-c", "index.sparse=false", "-c", "core.preloadIndex=false"]


def trusted_git_dir(repo_dir: Path, dest: Path) -> None:
    """A bare copy of the freshly checked-out repository's git dir, made before the model runs
    (objects shared by hard link where the filesystem allows): what `workspace_diff` trusts."""
    git(["clone", "--bare", "--quiet", str(repo_dir), str(dest)], repo_dir.parent)
    (dest / "info").mkdir(exist_ok=True)
    (dest / "info" / "exclude").write_text("\n".join(DEBRIS) + "\n")
    dest.chmod(0o755)


def workspace_diff(work_tree: Path, git_dir: Path, base_commit: str, scratch: Path, max_bytes: int = -1,
                   timeout_s: float = 300) -> str:
    """The model patch: every change of `work_tree` against `base_commit`, new files included,
    binary-safe, read with the trusted `git_dir` (see the module docstring), with a timeout.
    Raises PatchTooLarge past `max_bytes` (read no further)."""
    shutil.rmtree(scratch, ignore_errors=True)
    (scratch / "objects").mkdir(parents=True)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(scratch), "LANG": "C.UTF-8",
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0",
           "GIT_NO_REPLACE_OBJECTS": "1", "GIT_OPTIONAL_LOCKS": "0", "GIT_DIR": str(git_dir),
           "GIT_WORK_TREE": str(work_tree), "GIT_INDEX_FILE": str(scratch / "index"),
           # New blobs go to a scratch object store, so the trusted git dir stays as it was.
           "GIT_OBJECT_DIRECTORY": str(scratch / "objects"),
           "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(git_dir / "objects"), **GIT_IDENTITY}
    cap = max_bytes + 1 if max_bytes >= 0 else -1

    def git_proc(args: list[str]) -> subprocess.Popen:
        return subprocess.Popen(["git", *_HARDENED_GIT, *args], cwd=work_tree, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_CORE, (0, 0)))

    try:
        # What cannot be added (a nested repository with no commit, a file the model made
        # unreadable) is left out; everything else still makes the patch.
        add = git_proc(["add", "-A", "--ignore-errors"])
        try:
            add.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            add.kill()
            add.communicate()
            raise EnvironmentError_(f"git add took longer than {timeout_s:.0f}s") from None
        diff = git_proc(["diff", "--cached", "--binary", "--no-color", "--no-ext-diff", "--no-textconv", base_commit])
        timer = threading.Timer(timeout_s, diff.kill)
        timer.start()
        try:
            data = diff.stdout.read(cap) if cap >= 0 else diff.stdout.read()
            too_large = cap >= 0 and len(data) >= cap
            if too_large:
                diff.kill()
            err = diff.stderr.read()
            diff.wait()
        finally:
            timer.cancel()
            diff.stdout.close()
            diff.stderr.close()
        if too_large:
            raise PatchTooLarge(f"the patch is larger than {max_bytes:,} bytes")
        if diff.returncode != 0:
            raise EnvironmentError_(f"git diff failed ({diff.returncode}): {err.decode(errors='replace').strip()[-500:]}")
        return data.decode("utf-8", "surrogateescape")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


BOX_FOLDERS = ("repo", "home", "tmp", "shm")  # the episode's folders in box/ (see LocalEnvironment)
# Workspaces of this process still open: closed at exit, so an interrupted run leaves none.
_OPEN: weakref.WeakSet[LocalEnvironment] = weakref.WeakSet()
_SWEPT: set[str] = set()
_LOCK = threading.Lock()


def _close_open() -> None:
    for env in list(_OPEN):
        env.close()


def _start_ticks(pid: int) -> int | None:
    """When process `pid` started (clock ticks after boot), or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[-1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _alive(pid: int, start_ticks: int | None) -> bool:
    """`pid` still runs and is the same process (pids are reused)."""
    now = _start_ticks(pid)
    return now is not None and (start_ticks is None or now == start_ticks)


def sweep_stale_workspaces(parent: str | Path, cfg: SandboxConfig | None = None) -> list[str]:
    """Remove workspaces under `parent` whose owning process is gone (a killed run), killing
    whatever still runs as their uid, but only while holding that uid's lease: uids are reused
    machine-wide, and one leased since belongs to a live episode. Returns the removed folders."""
    removed = []
    for path in Path(parent).glob("protege-ws-*"):
        try:
            owner = json.loads((path / "owner.json").read_text())
        except (OSError, ValueError):
            continue  # not ours, or still being created
        if _alive(int(owner.get("pid", -1)), owner.get("start_ticks")):
            continue
        uid = owner.get("uid")
        if isinstance(uid, int) and uid not in (0, os.geteuid()):
            with uid_lock(uid, cfg or SandboxConfig()) as held:
                if held:
                    kill_uid(uid)
        shutil.rmtree(path, ignore_errors=True)
        removed.append(str(path))
    return removed


class LocalEnvironment:
    """A fresh temporary workspace for one task, removed on close::

        protege-ws-XXXX/      root's
          owner.json          who made it (stale workspaces of dead runs are swept)
          git/                trusted bare copy of the repository's git dir (see workspace_diff)
          box/                root's, 0711: bound writable into the sandbox, but its entries are fixed
            repo/  home/  tmp/  shm/   the episode's (its uid owns them, 0700): all it can write;
                                       tmp/ is its /tmp and shm/ its /dev/shm, both inside the quota
    """

    def __init__(self, task: Task, config: EnvConfig | None = None):
        self.task = task
        self.config = config or EnvConfig()
        self.root: Path | None = None
        self.repo_dir: Path | None = None
        self.lease: UidLease | None = None
        self._fd: int | None = None  # the repository folder, opened before the model runs
        self._start()

    # Context-manager use guarantees cleanup on every exit path.
    def __enter__(self) -> LocalEnvironment:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def workdir(self) -> str:
        return str(self.repo_dir)

    @property
    def box(self) -> Path:
        return self.root / "box"

    @property
    def uid(self) -> int | None:
        """The uid the episode's commands run as (None: the caller's, when not root)."""
        return command_uid(self.config.sandbox, self.lease.uid if self.lease else None)

    def _start(self) -> None:
        use_bwrap(self.config.sandbox)  # refuses here, before any work, when isolation is missing
        parent = self.config.workspace_root or tempfile.gettempdir()
        try:
            Path(parent).mkdir(parents=True, exist_ok=True)
            with _LOCK:
                if str(parent) not in _SWEPT:
                    _SWEPT.add(str(parent))
                    sweep_stale_workspaces(parent, self.config.sandbox)
                    if not _OPEN:
                        atexit.register(_close_open)
            self.root = Path(tempfile.mkdtemp(prefix="protege-ws-", dir=parent))
        except OSError as exc:
            raise EnvironmentError_(f"instance {self.task.instance_id!r}: cannot create a workspace "
                                    f"under {parent!r}: {exc}") from exc
        _OPEN.add(self)
        try:
            # Traverse-only for other uids: episodes cannot list each other's workspaces
            # whatever `workspace_root` is (the episode's own folders below are 0700).
            self.root.chmod(0o711)
            self.lease = UidLease(self.config.sandbox)
            owner = self.root / "owner.json"
            owner.write_text(json.dumps({"pid": os.getpid(), "start_ticks": _start_ticks(os.getpid()),
                                         "uid": self.lease.uid}))
            owner.chmod(0o600)
            self.repo_dir = self.box / "repo"
            for sub in BOX_FOLDERS[1:]:
                (self.box / sub).mkdir(parents=True)
            checkout(self.task, self.repo_dir, self.config.repos)
            trusted_git_dir(self.repo_dir, self.root / "git")
            (self.root / "git").chmod(0o700)
            hand_over(self.box, self.config.sandbox, self.uid, keep_root_owned=("repo/.git/objects",))
            # box/ itself stays the caller's: the model writes inside its folders but cannot
            # rename or replace them (a repo/ swapped for a link would redirect host-side I/O).
            os.chown(self.box, os.geteuid(), os.getegid())
            self.box.chmod(0o711)
            for sub in BOX_FOLDERS:
                (self.box / sub).chmod(0o700 if self.uid is not None else 0o755)
            self._fd = os.open(self.repo_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except BaseException:
            self.close()
            raise

    def run(self, command: str, timeout_s: float | None = None) -> CommandResult:
        return self.run_with(self.config.sandbox, command, timeout_s)

    def run_with(self, sandbox: SandboxConfig, command: str, timeout_s: float | None = None) -> CommandResult:
        """A command under other sandbox settings (a trusted set-up step that needs the network)."""
        if self.repo_dir is None:
            raise EnvironmentError_("environment is closed")
        return run_command(command, self.repo_dir, self.box / "home", sandbox, writable=[self.box],
                           timeout_s=timeout_s, tmp_dir=self.box / "tmp", shm_dir=self.box / "shm",
                           uid=self.lease.uid if self.lease else None)

    def read_file(self, path: str) -> str:
        """A regular file of the repository as text; bytes that are not UTF-8 come back as lone
        surrogates (`surrogateescape`), so `write_file` puts them back unchanged. Resolved beneath
        the repository folder opened at checkout, with the episode's permissions
        (`protege.env.workspace_io`); never blocks: FIFOs, devices and sockets are refused, and so
        are links and files over `editor_max_bytes`."""
        cap = self.config.editor_max_bytes
        with fs_user(self.uid):
            fd = open_file(self._repo_fd(), path, self.workdir, os.O_RDONLY)
        with os.fdopen(fd, "rb") as fh:
            size = os.fstat(fd).st_size
            if 0 <= cap < size:
                raise UnsafePath(f"{path} has {size:,} bytes, more than the editor opens "
                                 f"({cap:,}); read parts of it with bash (head, sed -n)")
            data = fh.read(cap + 1 if cap >= 0 else -1)
        if 0 <= cap < len(data):
            raise UnsafePath(f"{path} grew past {cap:,} bytes while it was read")
        return data.decode("utf-8", "surrogateescape")

    def write_file(self, path: str, content: str) -> None:
        """Write a regular file of the repository (created folders and files belong to the
        episode's uid), within the file-size limit and the workspace's disk quota; resolved as
        `read_file` resolves."""
        try:
            data = content.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raise PermissionError("the text holds characters that are not valid Unicode") from None
        sb = self.config.sandbox
        if 0 <= sb.max_file_mb * 2**20 < len(data):
            raise PermissionError(f"{len(data):,} bytes is more than the file-size limit ({sb.max_file_mb} MiB)")
        if sb.disk_mb >= 0 and workspace_usage([self.box], sb.max_files).mb + len(data) / 2**20 > sb.disk_mb:
            raise PermissionError(f"the workspace would exceed its disk quota ({sb.disk_mb} MiB)")
        with fs_user(self.uid):
            fd = open_file(self._repo_fd(), path, self.workdir, os.O_WRONLY | os.O_CREAT, create_dirs=True)
            with os.fdopen(fd, "wb") as fh:
                fh.truncate(0)
                fh.write(data)

    def _repo_fd(self) -> int:
        if self._fd is None:
            raise EnvironmentError_("environment is closed")
        return self._fd

    def diff(self) -> str:
        # git reads the work tree by path: refused when the model replaced the repository folder
        # (possible only where the caller is not root and owns box/).
        if not is_same_dir(self._repo_fd(), str(self.repo_dir)):
            raise EnvironmentError_(f"the repository folder {self.workdir} was replaced or moved; no patch is read")
        return workspace_diff(self.repo_dir, self.root / "git", self.task.base_commit, self.root / "diff",
                              max_bytes=self.config.max_patch_bytes)

    def close(self) -> None:
        _OPEN.discard(self)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self.lease is not None:
            self.lease.release()  # kills whatever still runs as the episode's uid
            self.lease = None
        if self.root is not None and not self.config.keep_workspace:
            shutil.rmtree(self.root, ignore_errors=True)
        self.root = self.repo_dir = None
