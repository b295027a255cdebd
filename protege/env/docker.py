"""A task's repository in a Docker container: the `Environment` protocol with the engine as
the sandbox.

One container per task. Real SWE-bench instances run in their own `task.image` (repository
already in /testbed, conda env `testbed`); bundled and local tasks run in a small local base
image (`scripts/build_base_image.sh`) into which the repository, checked out on the host, is
copied. Containers carry the label `protege=1` and are removed on close, at interpreter exit,
and by `cleanup_containers()` after a run that was killed outright (SIGKILL skips atexit).
"""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import posixpath
import shlex
import socket
import tarfile
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

from protege.env.base import EnvConfig, EnvironmentError_
from protege.env.checkout import checkout
from protege.env.processes import OutputCollector
from protege.env.sandbox import CommandResult
from protege.tasks.schema import Task

LABEL = "protege"
BASE_IMAGE = "protege-base:latest"
WORKDIR = "/testbed"
# Kills every process but init (PID 1), the keeper ($1) and itself, a few rounds so a fork
# bomb cannot refill; prints how many the first round killed. Builtins only: no forks.
_REAP = ('first=; for r in 1 2 3 4 5 6 7 8; do n=0; for p in /proc/[0-9]*; do p=${p#/proc/}; '
         'case $p in 1|$$|"$1") continue;; esac; kill -9 "$p" 2>/dev/null && n=$((n+1)); done; '
         '[ -z "$first" ] && first=$n; [ "$n" = 0 ] && break; done; echo "$first"')


@dataclass
class DockerOptions:
    """Container settings beyond `SandboxConfig` (set as `EnvConfig.docker`)."""

    image: str | None = None  # None: task.image for real SWE-bench instances, else base_image
    base_image: str = BASE_IMAGE  # bundled / local tasks (scripts/build_base_image.sh)
    cpus: float = 2.0  # CPU quota (nano_cpus); <= 0 disables
    user: str | None = None  # None: the sandbox uid in the base image, root in instance images
    max_lifetime_s: int = 6 * 3600  # the container stops (and is auto-removed) after this
    docker_host: str | None = None  # None: DOCKER_HOST / the default socket


def client_from_env(docker_host: str | None = None):
    """A docker SDK client. The long read timeout lets silent commands run; our own deadline
    (`timeout -s KILL` inside, a host-side join) bounds them."""
    import docker

    if docker_host:
        return docker.DockerClient(base_url=docker_host, timeout=24 * 3600)
    return docker.from_env(timeout=24 * 3600)


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cleanup_containers(client=None, everything: bool = False) -> list[str]:
    """Remove `protege=1` containers left by dead processes on this host (or all of them with
    `everything=True`); returns the removed container names. Safe beside live runs."""
    import docker

    client = client or client_from_env()
    removed = []
    host = socket.gethostname()
    for c in client.containers.list(all=True, filters={"label": f"{LABEL}=1"}):
        owner_host, _, pid = c.labels.get(f"{LABEL}.owner", "").rpartition(":")
        stale = owner_host != host or not pid.isdigit() or not _pid_alive(int(pid))
        if everything or (owner_host == host and stale) or not owner_host:
            try:
                c.remove(force=True)
                removed.append(c.name)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:  # already being removed (auto_remove)
                if "in progress" not in str(exc):
                    raise
    return removed


_LIVE: weakref.WeakSet[DockerEnvironment] = weakref.WeakSet()


def _close_all() -> None:
    for env in list(_LIVE):
        env.close()


def _track(env: DockerEnvironment) -> None:
    """Close `env` at interpreter exit if nobody did (registered on first use, not at import)."""
    if not _LIVE:
        atexit.unregister(_close_all)
        atexit.register(_close_all)
    _LIVE.add(env)


class _Chunks:
    """File-like view of the exec output stream, for `sandbox.OutputCollector`."""

    def __init__(self, chunks):
        self.chunks = chunks

    def read(self, _n: int) -> bytes:
        try:
            return next(self.chunks, b"")
        except Exception:  # connection closed by a kill: end of output
            return b""


class DockerEnvironment:
    """One container for one task; paths are relative to /testbed."""

    def __init__(self, task: Task, config: EnvConfig | None = None, client=None):
        self.task = task
        self.config = config or EnvConfig(backend="docker")
        self.options: DockerOptions = getattr(self.config, "docker", None) or DockerOptions()
        self.client = client
        self.container = None
        self.keeper = "0"
        self.workdir = WORKDIR
        own_image = bool(task.image) and not task.is_bundled and not task.repo.startswith("local/")
        self.image = self.options.image or (task.image if own_image else self.options.base_image)
        # Only a real instance's own image already holds the repository at /testbed.
        self.copy_repo = not own_image or self.image != task.image
        uid = self.config.sandbox.sandbox_uid
        self.user = self.options.user or (f"{uid}:{uid}" if self.copy_repo and uid >= 0 else "root")
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> DockerEnvironment:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self) -> None:
        import docker

        self.client = self.client or client_from_env(self.options.docker_host)
        sb = self.config.sandbox
        try:
            self.client.images.get(self.image)
        except docker.errors.ImageNotFound:
            hint = ("build it with scripts/build_base_image.sh" if self.copy_repo
                    else "pull it from a registry first (none is reachable on offline machines)")
            raise EnvironmentError_(f"instance {self.task.instance_id!r}: Docker image {self.image!r} "
                                    f"not found; {hint}") from None
        name = f"protege-{self.task.instance_id.lower()[:60]}-{os.getpid()}-{time.monotonic_ns() % 10**8}"
        self.container = self.client.containers.run(
            self.image, ["sleep", str(self.options.max_lifetime_s)],
            name="".join(ch if ch.isalnum() or ch in "_.-" else "-" for ch in name),
            detach=True, auto_remove=True, init=True, working_dir=WORKDIR,
            labels={LABEL: "1", f"{LABEL}.owner": _owner(), f"{LABEL}.instance": self.task.instance_id},
            network_mode="bridge" if sb.network else "none",
            mem_limit=f"{sb.memory_mb}m" if sb.memory_mb > 0 else None,
            memswap_limit=f"{sb.memory_mb}m" if sb.memory_mb > 0 else None,
            nano_cpus=int(self.options.cpus * 1e9) if self.options.cpus > 0 else None,
            pids_limit=sb.max_processes if sb.max_processes > 0 else None,
            cap_drop=["ALL"], cap_add=["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID", "KILL"],
            security_opt=["no-new-privileges"])
        _track(self)
        # init=True: tini is PID 1 and reaps orphans (zombies would count against pids_limit);
        # its one child, the keeper, must survive every reap.
        code, out = self._exec(["cat", "/proc/1/task/1/children"], user="root")
        self.keeper = out.decode().split()[0] if code == 0 and out.split() else "0"
        if self.copy_repo:
            self._copy_repo_in()

    def _copy_repo_in(self) -> None:
        with tempfile.TemporaryDirectory(prefix="protege-docker-") as tmp:
            repo = Path(tmp) / "repo"
            checkout(self.task, repo, self.config.repos)
            uid = self.config.sandbox.sandbox_uid if self.user != "root" else 0

            def owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
                info.uid = info.gid = max(uid, 0)
                info.uname = info.gname = ""
                return info

            with tempfile.TemporaryFile() as fh:
                with tarfile.open(fileobj=fh, mode="w") as tar:
                    tar.add(repo, arcname=".", filter=owned)
                fh.seek(0)
                if not self.container.put_archive(WORKDIR, fh):
                    raise EnvironmentError_(f"instance {self.task.instance_id!r}: copying the repository "
                                            f"into the container failed")
            # The archive's "." entry does not change the owner of an existing /testbed.
            self._exec(["chown", f"{max(uid, 0)}:{max(uid, 0)}", WORKDIR], user="root")

    def _env(self) -> dict[str, str]:
        """Nothing from the host environment: only fixed, non-secret settings."""
        env = {"HOME": "/tmp", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TERM": "dumb", "PAGER": "cat",
               "GIT_PAGER": "cat", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1",
               "PIP_NO_INPUT": "1", "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "safe.directory",
               "GIT_CONFIG_VALUE_0": "*"}
        env.update(self.config.sandbox.extra_env)
        return env

    def _exec(self, argv: list[str], user: str | None = None) -> tuple[int | None, bytes]:
        """A trusted helper command: full output, no limits."""
        result = self.container.exec_run(argv, user=user or self.user, workdir=WORKDIR,
                                         environment=self._env(), demux=False)
        return result.exit_code, result.output or b""

    def _exec_bounded(self, argv: list[str], limit_s: float) -> tuple[int | None, bytes]:
        """`_exec` that gives up after `limit_s` (the engine can stall under a flood)."""
        box: list = []

        def target() -> None:
            with contextlib.suppress(Exception):  # a stalled or failed call leaves box empty: handled below
                box.append(self._exec(argv))

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        thread.join(limit_s)
        return box[0] if box else (None, b"")

    def _reap(self) -> int:
        for _ in range(10):  # a fork bomb at pids_limit can make starting the reaper fail
            code, out = self._exec_bounded(["bash", "-c", _REAP, "reap", self.keeper], 30)
            if code == 0:
                try:
                    return int(out.decode().split()[-1])
                except (ValueError, IndexError):
                    return 0
            time.sleep(0.2)
        return 0

    def run(self, command: str, timeout_s: float | None = None) -> CommandResult:
        if self.container is None:
            raise EnvironmentError_("environment is closed")
        sb = self.config.sandbox
        timeout = sb.timeout_s if timeout_s is None else timeout_s
        script = command
        if not self.copy_repo:  # SWE-bench instance images keep their deps in conda env `testbed`
            script = ("[ -f /opt/miniconda3/bin/activate ] && . /opt/miniconda3/bin/activate testbed "
                      ">/dev/null 2>&1\n" + command)
        argv = ["bash", "-c", script]
        if timeout > 0:
            argv = ["timeout", "-s", "KILL", str(max(1, round(timeout))), *argv]
        api = self.client.api
        start = time.monotonic()
        try:
            exec_id = api.exec_create(self.container.id, argv, stdout=True, stderr=True, stdin=False,
                                      tty=False, user=self.user, workdir=WORKDIR,
                                      environment=self._env())["Id"]
            stream = api.exec_start(exec_id, stream=True, demux=False)
        except Exception as exc:  # the engine or the container went away
            return CommandResult(command, "", None, 0.0, error=f"cannot start command: {exc}")
        # On overflow the reader keeps draining while another thread kills: a reader blocked
        # in the kill would stall the stream the kill needs to end.
        collector = OutputCollector(_Chunks(stream), max(sb.output_limit_chars, 0) * 4, sb.output_kill_bytes,
                               lambda: threading.Thread(target=self._reap, daemon=True).start())
        # Host-side deadline: an exec whose stream never ends is cut off by killing everything.
        collector.thread.join(timeout + 15 if timeout > 0 else None)
        hung = collector.thread.is_alive()
        if hung:
            self._reap()
            collector.thread.join(10)
        duration = time.monotonic() - start
        info = api.exec_inspect(exec_id)
        exit_code = None if info.get("Running") else info.get("ExitCode")
        background = self._reap()
        output, cut = collector.text(sb.output_limit_chars)
        timed_out = hung or (timeout > 0 and exit_code in (124, 137) and duration >= timeout - 0.5)
        if timed_out or collector.overflowed:
            exit_code = None
        return CommandResult(command, output, exit_code, duration, timed_out=timed_out,
                             output_killed=collector.overflowed, truncated_chars=cut,
                             total_bytes=collector.total, background_killed=background)

    def _path(self, path: str) -> str:
        full = posixpath.normpath(posixpath.join(WORKDIR, path))
        if full != WORKDIR and not full.startswith(WORKDIR + "/"):
            raise PermissionError(f"{path!r} is outside the repository {WORKDIR}")
        return full

    def read_file(self, path: str) -> str:
        import docker

        full = self._path(path)
        try:
            chunks, _stat = self.container.get_archive(full)
        except docker.errors.NotFound:
            raise FileNotFoundError(path) from None
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
            member = tar.next()
            if member is None or not member.isfile():
                raise IsADirectoryError(path)
            return tar.extractfile(member).read().decode("utf-8", "replace")

    def write_file(self, path: str, content: str) -> None:
        full = self._path(path)
        parent, name = posixpath.split(full)
        code, out = self._exec(["mkdir", "-p", parent])
        if code != 0:
            raise PermissionError(f"cannot create {parent}: {out.decode(errors='replace').strip()}")
        data = content.encode("utf-8")
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
        uid = self.user.split(":")[0]
        info.uid = info.gid = int(uid) if uid.isdigit() else 0
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.addfile(info, io.BytesIO(data))
        if not self.container.put_archive(parent, buf.getvalue()):
            raise OSError(f"cannot write {path}")

    def diff(self) -> str:
        """The model patch: every change against base_commit, new files included."""
        base = shlex.quote(self.task.base_commit)
        script = (f"git add -A && git diff --cached --binary --no-color --no-ext-diff {base}; "
                  "rc=$?; git reset -q; exit $rc")
        code, out = self._exec(["bash", "-c", script])
        if code != 0:
            raise EnvironmentError_(f"git diff failed in the container: {out.decode(errors='replace')[-500:]}")
        return out.decode("utf-8", "replace")

    def close(self) -> None:
        container, self.container = self.container, None
        _LIVE.discard(self)
        if container is None:
            return
        import docker

        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if "in progress" not in str(exc):
                raise
