"""Resolve a guest path inside a directory descriptor, never outside it.

Each directory descriptor is its own root, as in wasmtime (cap-std): ``..`` may climb back
to it but not above it, absolute paths are refused, and symlinks are expanded component by
component, so a link that points outside (relatively or absolutely) is refused too.
"""

from __future__ import annotations

import os
import stat

from foglayer.wasi import _abi as abi

MAX_SYMLINKS = 32
MAX_PATH = 4096


class WasiError(Exception):
    """Carries a WASI errno out of deep helpers; the call boundary returns it."""

    def __init__(self, errno: int) -> None:
        self.errno = errno


def resolve(root: str, path: str, follow: bool) -> str:
    """The host path for ``path`` below ``root``, or :class:`WasiError`.

    The last component is followed only when ``follow`` (or a trailing slash asks for a
    directory). Missing components are allowed only at the end (for create).
    """
    if not path:
        raise WasiError(abi.ENOENT)
    if "\0" in path:
        raise WasiError(abi.EILSEQ)
    if len(path) > MAX_PATH:
        raise WasiError(abi.ENAMETOOLONG)
    if path.startswith("/"):
        raise WasiError(abi.EPERM)
    trailing = path.endswith("/")
    comps = [c for c in path.split("/") if c and c != "."]
    stack: list[str] = []
    links = 0
    while comps:
        c = comps.pop(0)
        if c == "..":
            if not stack:
                raise WasiError(abi.EPERM)
            stack.pop()
            continue
        last = not comps
        if not last or follow or trailing:
            host = os.path.join(root, *stack, c)
            try:
                st = os.lstat(host)
            except FileNotFoundError:
                if last:
                    stack.append(c)
                    break
                raise WasiError(abi.ENOENT) from None
            except NotADirectoryError:
                raise WasiError(abi.ENOTDIR) from None
            except OSError as e:
                raise WasiError(abi.from_oserror(e)) from None
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > MAX_SYMLINKS:
                    raise WasiError(abi.ELOOP)
                target = os.readlink(host)
                if target.startswith("/"):
                    raise WasiError(abi.EPERM)
                comps = [t for t in target.split("/") if t and t != "."] + comps
                if trailing and not comps:
                    pass
                continue
            if not last and not stat.S_ISDIR(st.st_mode):
                raise WasiError(abi.ENOTDIR)
        stack.append(c)
    result = os.path.join(root, *stack)
    return result + "/" if trailing and stack else result


def check_new_name(path: str) -> None:
    """A path naming something to create must have a last component that is a name."""
    last = path.rstrip("/").rsplit("/", 1)[-1]
    if last in ("", ".", ".."):
        raise WasiError(abi.EEXIST if last else abi.ENOENT)
