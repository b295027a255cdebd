"""Host-side file I/O inside an episode's repository that the model cannot redirect.

The editor and the grader read and write the repository from the host (as root, when the
sandbox leases per-episode uids). The model owns the repository's folders and can replace
any of them with a symbolic link, a FIFO or a hard link between two of its commands, so a
path that was inside the repository when it was checked may point anywhere when it is
opened. Two rules, each enough for the usual attacks and together for the rest:

1. **Resolve beneath a fixed directory fd.** The repository is opened once, before the
   model runs; every later path is walked from that fd one component at a time with
   `O_NOFOLLOW` (a symlink anywhere on the way is refused, not followed) and `..` that
   would climb above it is refused. Renaming or replacing the repository folder itself
   changes nothing: the fd still names the folder that was checked out.
2. **Act with the episode's permissions.** While a call opens and creates files, the
   calling thread's filesystem uid/gid are the episode's (`setfsuid`, per thread on Linux),
   so a hard link to a file the episode could not read or write, or a folder it does not
   own, is refused by the kernel, and what the editor creates belongs to the episode.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import stat
import threading
from collections.abc import Iterator

_LIBC = ctypes.CDLL(None, use_errno=True)
# git and most tools stop at PATH_MAX (4096) for the whole path; a repository's paths are far shorter.
MAX_PATH_BYTES = 1024
_FS_LOCK = threading.local()  # nesting depth per thread (fs ids are per thread)


class UnsafePath(PermissionError):
    """A path the editor will not follow: outside the repository, through a link, not a regular file."""


@contextlib.contextmanager
def fs_user(uid: int | None) -> Iterator[None]:
    """Run the block with this thread's filesystem uid and gid set to `uid` (root only; None or
    not root: no change). Dropping fsuid from 0 clears the capabilities that bypass file
    permissions, for this thread only."""
    if uid is None or os.geteuid() != 0 or getattr(_FS_LOCK, "depth", 0):
        yield
        return
    _LIBC.setfsgid(uid)
    _LIBC.setfsuid(uid)
    _FS_LOCK.depth = 1
    try:
        yield
    finally:
        _LIBC.setfsuid(0)
        _LIBC.setfsgid(0)
        _FS_LOCK.depth = 0


def components(path: str, root: str) -> list[str]:
    """`path` (relative to the repository, or absolute under `root`) as the list of names to walk
    from the repository; raises UnsafePath when it leaves the repository.

    >>> components("src/./a.py", "/w/repo"), components("/w/repo/src/../b.py", "/w/repo")
    (['src', 'a.py'], ['b.py'])
    >>> components("../home/x", "/w/repo")
    Traceback (most recent call last):
    ...
    protege.env.workspace_io.UnsafePath: '../home/x' is outside the repository /w/repo
    """
    if not isinstance(path, str) or "\0" in path:
        raise UnsafePath(f"{path!r} is not a valid path")
    if len(path.encode("utf-8", "surrogateescape")) > MAX_PATH_BYTES:
        raise UnsafePath(f"the path {path[:60]!r}... is longer than {MAX_PATH_BYTES} bytes")
    if os.path.isabs(path):
        if path.rstrip("/") != root and not path.startswith(root + "/"):
            raise UnsafePath(f"{path!r} is outside the repository {root}")
        path = path[len(root):]
    names: list[str] = []
    for name in path.split("/"):
        if name in ("", "."):
            continue
        if name == "..":
            if not names:
                raise UnsafePath(f"{path!r} is outside the repository {root}")
            names.pop()
            continue
        if len(name.encode("utf-8", "surrogateescape")) > 255:
            raise UnsafePath(f"a name in {path[:80]!r}... is longer than 255 bytes")
        names.append(name)
    return names


def _refusal(exc: OSError, path: str) -> OSError:
    """The error a refused open becomes: what the model did wrong, in words."""
    code = exc.errno
    if code == errno.ELOOP:
        return UnsafePath(f"{path} is or passes through a symbolic link; the editor does not follow links")
    if code == errno.ENOTDIR:
        return NotADirectoryError(f"{path}: a part of the path is not a folder")
    if code in (errno.ENXIO, errno.EOPNOTSUPP):
        return UnsafePath(f"{path} is not a regular file (a FIFO, socket or device): the editor only opens regular files")
    if code == errno.ENAMETOOLONG:
        return UnsafePath(f"the path {path[:80]!r}... is too long")
    if code in (errno.EACCES, errno.EPERM):
        return UnsafePath(f"{path}: permission denied")
    if code == errno.ENOENT:
        return FileNotFoundError(path)
    if code == errno.EISDIR:
        return IsADirectoryError(path)
    if code == errno.EEXIST:
        return FileExistsError(path)
    return UnsafePath(f"{path}: {os.strerror(code or 0)}")


def _open_dir(parent_fd: int, name: str) -> int:
    try:
        return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
    except NotADirectoryError:  # O_DIRECTORY | O_NOFOLLOW on a link says ENOTDIR: say it is a link
        if stat.S_ISLNK(os.lstat(name, dir_fd=parent_fd).st_mode):
            raise OSError(errno.ELOOP, "a symbolic link", name) from None
        raise


def open_parent(root_fd: int, names: list[str], path: str, create: bool = False, mode: int = 0o755) -> int:
    """An fd of the folder that holds `names[-1]`, walked from `root_fd` without following a link;
    `create` makes missing folders (as the current fs user). The caller closes it."""
    fd = os.dup(root_fd)
    try:
        for name in names[:-1]:
            try:
                nxt = _open_dir(fd, name)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, mode, dir_fd=fd)
                nxt = _open_dir(fd, name)
            os.close(fd)
            fd = nxt
        return fd
    except OSError as exc:
        os.close(fd)
        raise _refusal(exc, path) from None


def open_file(root_fd: int, path: str, root: str, flags: int, mode: int = 0o644, create_dirs: bool = False) -> int:
    """Open a regular file of the repository (see the module docstring): never through a link,
    never a FIFO, socket or device, never a file with other hard links. Returns the fd."""
    names = components(path, root)
    if not names:
        raise IsADirectoryError(path)
    parent = open_parent(root_fd, names, path, create=create_dirs)
    try:
        fd = os.open(names[-1], flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, mode, dir_fd=parent)
    except OSError as exc:
        raise _refusal(exc, path) from None
    finally:
        os.close(parent)
    st = os.fstat(fd)
    problem = None
    if stat.S_ISDIR(st.st_mode):
        os.close(fd)
        raise IsADirectoryError(path)
    if not stat.S_ISREG(st.st_mode):
        problem = f"{path} is not a regular file (a FIFO, socket or device): the editor only opens regular files"
    elif st.st_nlink > 1:
        problem = f"{path} has {st.st_nlink} hard links; the editor only opens files with one name"
    if problem:
        os.close(fd)
        raise UnsafePath(problem)
    return fd


def is_same_dir(fd: int, path: str) -> bool:
    """Whether `path` is still the folder `fd` was opened on (not replaced, not a link)."""
    try:
        now, then = os.lstat(path), os.fstat(fd)
    except OSError:
        return False
    return stat.S_ISDIR(now.st_mode) and (now.st_dev, now.st_ino) == (then.st_dev, then.st_ino)
