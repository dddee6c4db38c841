"""Resolve a guest path inside a directory descriptor, never outside it.

Each directory descriptor is its own root, as in wasmtime (cap-std): ``..`` may climb back
to it but not above it, absolute paths are refused, and symlinks are expanded here,
component by component, so a link that points outside is refused too.

The walk holds an open descriptor for every directory it enters and hands the final
operation a (directory fd, single name) pair; the kernel never sees ``..``, a slash or a
symlink it could follow. So a directory swapped for a symlink by another process between
the check and the use (two guests sharing a tree) cannot lead out: the next ``openat``
with ``O_NOFOLLOW`` fails instead.
"""

from __future__ import annotations

import os
import stat

from foglayer.wasi import abi

MAX_SYMLINKS = 32
MAX_PATH = 4096
_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class WasiError(Exception):
    """Carries a WASI errno out of deep helpers; the call boundary returns it."""

    def __init__(self, errno: int) -> None:
        self.errno = errno


class Target:
    """Where a path operation lands: ``name`` inside the open directory ``dirfd``.

    ``name`` is ``"."`` when the path names the directory itself. ``host`` is the host
    path, for records only (snapshots); never pass it to the kernel. Use as a context
    manager: it closes the directories the walk opened.
    """

    __slots__ = ("dirfd", "name", "host", "slash", "_owned", "_st")

    def __init__(self, dirfd: int, name: str, host: str, slash: bool, owned: list[int],
                 st: os.stat_result | None = None) -> None:
        self.dirfd, self.name, self.host, self.slash, self._owned = dirfd, name, host, slash, owned
        self._st = st  # the walk's own lstat of ``name``, when it made one

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc: object) -> None:
        for fd in self._owned:
            os.close(fd)
        self._owned = []

    def lstat(self) -> os.stat_result:
        """``name``'s lstat: the walk's, if it just made one (SQLite stats paths per query)."""
        st, self._st = self._st, None
        return st if st is not None else os.stat(self.name, dir_fd=self.dirfd,
                                                  follow_symlinks=False)


def _split(path: str) -> list[str]:
    return [c for c in path.split("/") if c and c != "."]


def resolve(root_fd: int, root: str, path: str, follow: bool) -> Target:
    """Walk ``path`` below the directory ``root_fd`` (host path ``root``).

    The last component is followed only when ``follow`` (or a trailing slash asks for a
    directory). Missing components are allowed only at the end (for create).
    """
    if not path:
        raise WasiError(abi.E.NOENT)
    if "\0" in path:
        raise WasiError(abi.E.INVAL)
    if len(path) > MAX_PATH:
        raise WasiError(abi.E.NAMETOOLONG)
    if path.startswith("/"):
        raise WasiError(abi.E.PERM)
    slash = path.endswith("/")
    comps = _split(path)
    fds = [root_fd]
    names: list[str] = []
    links = 0
    name = "."
    final = None
    try:
        while comps:
            c = comps.pop(0)
            if c == "..":
                if len(fds) == 1:
                    raise WasiError(abi.E.PERM)
                os.close(fds.pop())
                names.pop()
                continue
            last = not comps
            if last and not follow and not slash:
                name = c
                break
            try:
                st = os.stat(c, dir_fd=fds[-1], follow_symlinks=False)
            except FileNotFoundError:
                if last:
                    name = c
                    break
                raise WasiError(abi.E.NOENT) from None
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > MAX_SYMLINKS:
                    raise WasiError(abi.E.LOOP)
                target = os.readlink(c, dir_fd=fds[-1])
                if target.startswith("/"):
                    raise WasiError(abi.E.PERM)
                comps = _split(target) + comps
                continue
            if last:
                name, final = c, st
                break
            if not stat.S_ISDIR(st.st_mode):
                raise WasiError(abi.E.NOTDIR)
            fds.append(os.open(c, _DIR_FLAGS, dir_fd=fds[-1]))
            names.append(c)
    except OSError as e:
        for fd in fds[1:]:
            os.close(fd)
        raise WasiError(abi.from_oserror(e)) from None
    except BaseException:
        for fd in fds[1:]:
            os.close(fd)
        raise
    host = os.path.join(root, *names, name) if name != "." else os.path.join(root, *names)
    return Target(fds[-1], name, os.path.normpath(host), slash, fds[1:], final)


def check_new_name(path: str) -> None:
    """A path naming something to create must have a last component that is a name."""
    last = path.rstrip("/").rsplit("/", 1)[-1]
    if last in ("", ".", ".."):
        raise WasiError(abi.E.EXIST if last else abi.E.NOENT)
