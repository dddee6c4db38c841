"""Read-only directories held in memory (``/run/secrets``): files that never touch a disk.

A memory directory is a preopen whose files are bytes the host handed in (secrets released
after attestation). Its own descriptor is an open, already removed, empty host directory:
every host walk inside it finds nothing and nothing can be created there. The WASI layer
serves ``path_open``, ``path_filestat_get`` and ``fd_readdir`` from the bytes instead; an
opened file is a sealed, read-only ``memfd`` (anonymous memory, no name in any file system).
The state (and so a snapshot) records only the directory's and the files' names, never their
contents; a restore must be handed the contents again.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Mapping

from foglayer.wasi import abi
from foglayer.wasi._paths import WasiError

MemoryDirs = Mapping[str, Mapping[str, bytes]]
_SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE


def open_dead_dir() -> int:
    """An fd of an empty directory that no longer exists: walks in it find nothing."""
    import tempfile  # not on the start path: only a memory directory needs it

    path = tempfile.mkdtemp(prefix="fog-memdir-")
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    finally:
        os.rmdir(path)


def open_file(data: bytes) -> int:
    """A read-only fd on a sealed memfd holding ``data``."""
    rw = os.memfd_create("fog-memdir", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(rw, view):]
        fcntl.fcntl(rw, fcntl.F_ADD_SEALS, _SEALS)
        return os.open(f"/proc/self/fd/{rw}", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(rw)


def lookup(files: Mapping[str, bytes], path: str) -> str | None:
    """The file name ``path`` names in a flat memory directory; None for the directory."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if path.startswith("/") or ".." in parts or len(parts) > 1:
        raise WasiError(abi.E.NOENT if ".." not in parts else abi.E.PERM)
    if not parts:
        return None
    if parts[0] not in files:
        raise WasiError(abi.E.NOENT)
    return parts[0]


def listing(files: Mapping[str, bytes], dir_ino: int) -> list[tuple[bytes, int, int]]:
    entries = [(b".", dir_ino, abi.FT_DIR), (b"..", dir_ino, abi.FT_DIR)]
    entries += [(name.encode(), i + 1, abi.FT_REG) for i, name in enumerate(sorted(files))]
    return entries
