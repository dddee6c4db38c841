"""Which processes are checkpointable runs, and where they write: for ``fog checkpoint PID``.

A checkpointable run announces itself in ``<data dir>/checkpointable/<pid>.json`` (its
snapshot path, how many it has written, its last error) and withdraws on exit.
``fog checkpoint PID`` sends ``SIGUSR1`` and waits for the count to go up.

An entry is only believed if process PID itself holds a lock on ``<pid>.lock`` (the
kernel says who, in ``/proc/locks``): a forged or stale entry never gets an unrelated
process signalled. The directory is 0700, its files 0600.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from foglayer.snapshot._errors import SnapshotError


def _dir() -> Path:
    from foglayer._dirs import data_dir

    d = data_dir("checkpointable")
    os.chmod(d, 0o700)
    return d


def _private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _lock_holders(path: Path) -> set[int]:
    """PIDs holding a POSIX lock on ``path``'s inode, as the kernel lists them."""
    try:
        st = os.stat(path, follow_symlinks=False)
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return set()
    holders = set()
    for line in lines:
        f = line.split()
        if len(f) >= 6 and f[1] == "POSIX" and f[5].rsplit(":", 1)[-1] == str(st.st_ino):
            try:
                holders.add(int(f[4]))
            except ValueError:
                pass
    return holders


def _start_time(pid: int) -> str | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[-1].split()[19]  # field 22: start time in clock ticks


class Announcement:
    """This process's entry; updated after every checkpoint."""

    def __init__(self, path: str) -> None:
        import fcntl

        d = _dir()
        self.file = d / f"{os.getpid()}.json"
        self.lock = d / f"{os.getpid()}.lock"
        self._lock_fd = os.open(self.lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                                0o600)
        fcntl.lockf(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # proof it is this process
        self.entry: dict[str, Any] = {"pid": os.getpid(), "path": os.path.abspath(path),
                                      "count": 0, "error": None,
                                      "start": _start_time(os.getpid())}
        self._save()

    def _save(self) -> None:
        tmp = self.file.with_name(f".{self.file.name}.tmp")
        try:
            _private(tmp, json.dumps(self.entry).encode())
            os.replace(tmp, self.file)  # readers never see half an entry
        except OSError:
            pass

    def written(self) -> None:
        self.entry["count"] += 1
        self.entry["error"] = None
        self._save()

    def failed(self, message: str) -> None:
        self.entry["error"] = message
        self.entry["count"] += 1
        self._save()

    def withdraw(self) -> None:
        self.file.unlink(missing_ok=True)
        self.lock.unlink(missing_ok=True)
        os.close(self._lock_fd)


def lookup(pid: int) -> dict[str, Any] | None:
    try:
        entry = json.loads((_dir() / f"{pid}.json").read_text())
    except (OSError, ValueError):
        return None
    start = _start_time(pid)
    if start is None or (entry.get("start") and entry["start"] != start):
        (_dir() / f"{pid}.json").unlink(missing_ok=True)  # stale: that process is gone
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("count"), int) \
            or not isinstance(entry.get("path"), str):
        return None
    if pid not in _lock_holders(_dir() / f"{pid}.lock"):
        return None  # forged, or not (yet) a checkpointable run: never signal it
    return entry


def _stat(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def checkpoint_pid(pid: int, timeout: float = 120.0) -> str:
    """Ask a running checkpointable ``fog run`` for a snapshot; its path once written."""
    entry = lookup(pid)
    if entry is None:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            raise SnapshotError(f"no process {pid}") from None
        except PermissionError:
            pass
        raise SnapshotError(f"process {pid} is not a checkpointable fog run",
                            remedy="checkpointable")
    before = entry["count"]
    snap_before = _stat(entry["path"])
    try:
        os.kill(pid, signal.SIGUSR1)
    except ProcessLookupError:
        raise SnapshotError(f"process {pid} exited before the checkpoint") from None
    except PermissionError:
        raise SnapshotError(f"not allowed to signal process {pid}") from None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.005)
        try:
            now = json.loads((_dir() / f"{pid}.json").read_text())
        except (OSError, ValueError):
            now = None
        if now is not None and now.get("count", 0) > before:
            if now.get("error"):
                raise SnapshotError(f"process {pid}: checkpoint failed: {now['error']}")
            return now["path"]
        if now is None:  # withdrawn: the run has ended (as --stop-after-checkpoint does)
            if _stat(entry["path"]) not in (None, snap_before):
                return entry["path"]
            raise SnapshotError(f"process {pid} exited before writing its checkpoint")
    raise SnapshotError(f"process {pid}: no checkpoint after {timeout:g} s")
