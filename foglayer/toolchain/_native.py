"""Native shared libraries of foglayer's own C (the hot WASI calls, the dirty-page scan):
one for each target machine, keyed by content, built here or made ready for another machine.

A library's file name is keyed by its source, its flags and its zig target
(``<arch>-linux-gnu.<glibc>``), none of which needs a compiler to compute, so a machine finds
its library without running zig. The arm64 root has no compiler: the host builds the
aarch64 library into the root's :data:`ROOT_NATIVE_DIR` (``ArmRoot.ready_native``) before
anything runs there, and a run inside the root only looks there (a miss is a
:class:`CompileError` at once, never a search for zig, which costs ~0.35 s under emulation).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path
from typing import NamedTuple

from foglayer._dirs import cache_dir
from foglayer.toolchain._cc import CompileError, compile_c

ROOT_MARKER = ".fog-root.json"  # at the top of the arm64 root: made by it, found inside it
# Where runs in the arm64 root find their native libraries: outside its HOME, so a host dir
# bound in at the same path (the host's own ~/.cache/foglayer/...) never hides them.
ROOT_NATIVE_DIR = "/opt/fog/native"
_ALIASES = {"amd64": "x86_64", "arm64": "aarch64"}


def in_arm_root() -> bool:
    """Whether this process runs inside the arm64 root (which holds no compiler)."""
    return os.path.exists("/" + ROOT_MARKER)


def native_target() -> str:
    """This machine's zig target: ``<arch>-linux-gnu.<glibc version>``."""
    uname = os.uname()
    arch = _ALIASES.get(uname.machine.lower(), uname.machine.lower())
    if arch not in ("x86_64", "aarch64") or uname.sysname != "Linux":
        raise CompileError(f"native libraries are built for Linux x86-64/aarch64, "
                           f"not {uname.sysname} {uname.machine}")
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError):
        libc = ""
    name, _, version = libc.partition(" ")
    if name != "glibc" or not version:
        raise CompileError(f"native libraries need glibc, not {libc or 'an unknown C library'}")
    return f"{arch}-linux-gnu.{'.'.join(version.split('.')[:2])}"


def can_build() -> bool:
    """Whether a missing library may be built here (cheap: no process is started)."""
    return not in_arm_root() and importlib.util.find_spec("ziglang") is not None


class NativeLibrary(NamedTuple):
    """One of foglayer's C sources built as a shared library (``-shared -fPIC``).

    A NamedTuple, not a dataclass: every ``fog run`` makes one, and importing dataclasses
    (with inspect) cost ~6 ms of its start."""

    source: Path
    flags: tuple[str, ...] = ("-O2",)

    def path(self, target: str | None = None, builds: Path | None = None) -> Path:
        """The library for ``target`` (default: this machine) in ``builds`` (default: the user
        cache's builds dir; in the arm64 root, :data:`ROOT_NATIVE_DIR`), built when missing
        and a compiler is here, else a :class:`CompileError` (at once in the arm64 root)."""
        target = target or native_target()
        key = hashlib.sha256(self.source.read_bytes() + repr((self.flags, target)).encode())
        if builds is None:
            builds = Path(ROOT_NATIVE_DIR) if in_arm_root() else cache_dir("builds")
        path = builds / \
            f"{self.source.stem.lstrip('_')}-{target}-{key.hexdigest()[:20]}.so"
        if path.exists():
            return path
        if not can_build():
            where = "in the arm64 root (the host builds it there)" if in_arm_root() \
                else "(no ziglang)"
            raise CompileError(f"{path.name}: not built, and no compiler {where}")
        from rich.console import Console

        with Console(stderr=True).status(f"building {self.source.name} for {target} "
                                         "(once, cached)"):
            compile_c([self.source], target=target, flags=self.flags, shared=True, out=path)
        return path

