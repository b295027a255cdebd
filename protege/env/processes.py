"""An episode's processes and totals: find and kill them by session or uid, measure their resident
memory and what a workspace holds on disk, and read a command's output keeping its head and tail."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def processes() -> list[tuple[int, str]]:
    """(pid, stat text) of every live process (zombies included)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as fh:
                    found.append((int(entry.name), fh.read()))
            except OSError:
                continue
    return found


def members(sid: int | None = None, uid: int | None = None) -> list[int]:
    """Live (non-zombie) PIDs of session `sid`, or owned by `uid`: a command's processes."""
    pids = []
    for pid, stat in processes():
        # fields after the parenthesised comm: state ppid pgrp session ...
        parts = stat.rsplit(")", 1)[-1].split()
        if len(parts) < 4 or parts[0] in ("Z", "X"):  # zombies are dead
            continue
        if sid is not None and int(parts[3]) == sid:
            pids.append(pid)
        elif uid is not None:
            try:
                if os.stat(f"/proc/{pid}").st_uid == uid:
                    pids.append(pid)
            except OSError:
                continue
    return pids


def kill_members(sid: int | None = None, uid: int | None = None) -> int:
    """Kill a session's (or a uid's) processes until none is left; returns how many were killed."""
    killed = 0
    for _ in range(50):  # a fork bomb refills the group; keep killing until it is empty
        alive = members(sid, uid)
        if not alive:
            break
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.02)
    return killed


def kill_uid(uid: int) -> int:
    """Kill every process of `uid` (an episode's leftovers). Refuses root and the caller's uid."""
    if uid in (0, os.geteuid()):
        raise ValueError(f"refusing to kill every process of uid {uid}")
    return kill_members(uid=uid)


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm") as fh:
                total += int(fh.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total * os.sysconf("SC_PAGE_SIZE") / 2**20


@dataclass(frozen=True)
class Usage:
    """What a workspace holds: MiB of allocated blocks, entries counted, and whether the count
    stopped at the cap (then `mb` covers only the entries seen)."""

    mb: float
    entries: int
    capped: bool


def workspace_usage(roots: list[Path], max_entries: int = -1) -> Usage:
    """Disk used by the files under `roots` (allocated blocks; hard links counted once) and how
    many entries they hold. The walk stops after `max_entries` + 1 entries (-1: no cap), so a
    workspace of a million empty files costs one bounded walk, not a long one per command."""
    seen: set[tuple[int, int]] = set()
    total = entries = 0
    stack = [str(r) for r in roots]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                listed = list(it)
        except OSError:
            continue
        for entry in listed:
            entries += 1
            if 0 <= max_entries < entries:
                return Usage(total / 2**20, entries, True)
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return Usage(total / 2**20, entries, False)


def disk_usage_mb(roots: list[Path]) -> float:
    """Disk used by the files under `roots`, MiB (see `workspace_usage`)."""
    return workspace_usage(roots).mb


class OutputCollector:
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


class Watchdog:
    """Polls a running command's totals (resident memory of its processes, disk used by its
    writable folders) and kills it when one grows past its limit. `cfg`: the limits, a
    `protege.env.sandbox.SandboxConfig` (memory_mb, disk_mb, max_files, watch_interval_s)."""

    def __init__(self, cfg: Any, sid: int, uid: int | None, disk_roots: list[Path], kill):
        self.cfg, self.sid, self.uid, self.disk_roots, self.kill = cfg, sid, uid, disk_roots, kill
        self.memory_killed = self.disk_killed = False
        self.watch_disk = (cfg.disk_mb >= 0 or cfg.max_files >= 0) and bool(disk_roots)
        # Entries are counted exactly up to twice the cap, so growth past it is seen.
        self._walk_cap = 2 * cfg.max_files if cfg.max_files >= 0 else -1
        self.start = workspace_usage(disk_roots, self._walk_cap) if self.watch_disk else Usage(0.0, 0, False)
        self.disk_now = self.start.mb
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _over_disk(self) -> bool:
        now = workspace_usage(self.disk_roots, self._walk_cap)
        self.disk_now = now.mb
        # A workspace already over quota may still shrink (rm); only growth past it is killed.
        over_mb = 0 <= self.cfg.disk_mb < now.mb and now.mb > self.start.mb
        over_files = 0 <= self.cfg.max_files < now.entries and (
            now.entries > self.start.entries or (now.capped and not self.start.capped))
        return over_mb or over_files

    def _run(self) -> None:
        interval = max(0.02, self.cfg.watch_interval_s)
        while not self._stop.wait(interval):
            if self.cfg.memory_mb >= 0:
                pids = members(uid=self.uid) if self.uid is not None else members(sid=self.sid)
                if rss_mb(pids) > self.cfg.memory_mb:
                    self.memory_killed = True
                    self.kill()
                    return
            if self.watch_disk:
                t0 = time.monotonic()
                if self._over_disk():
                    self.disk_killed = True
                    self.kill()
                    return
                interval = max(interval, 10 * (time.monotonic() - t0))  # a big tree is scanned less often

    def stop(self) -> float | None:
        """Stop polling; one last disk check (a short command ends between polls)."""
        self._stop.set()
        self.thread.join()
        if not self.watch_disk:
            return None
        if not self.disk_killed and self._over_disk():
            self.disk_killed = True
        return self.disk_now
