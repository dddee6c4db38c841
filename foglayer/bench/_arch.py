"""Where a suite runs: on this host, or on aarch64 (``fog bench ... --arch aarch64``).

On an aarch64 host that is simply the host. On an x86-64 host the runs go into the arm64 root
(``foglayer.toolchain.arm_root``) under qemu-aarch64 user emulation: the native side is built
by the same zig for aarch64 against the root's glibc, the Wasm side runs on the root's aarch64
Python and wasmtime wheel (Cranelift emits aarch64 code), ``fog run`` and raw wasmtime alike.
Emulation slows every column, but not alike, so its ratios are only indicative.
"""

from __future__ import annotations

import hashlib
import platform
from dataclasses import dataclass, field
from pathlib import Path

from foglayer.errors import FogError
from foglayer.toolchain import ArmRoot

ARCHES = ("x86_64", "aarch64")
_ALIASES = {"amd64": "x86_64", "x86-64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}
EMULATION_NOTE = ("aarch64 under qemu-aarch64 user emulation (the arm64 root on this x86-64 "
                  "host): the ratios are only indicative; on a real Arm board they are the "
                  "study's Figure 2 and 3")


@dataclass(frozen=True)
class Machine:
    """The machine a suite's programs run on."""

    arch: str  # platform.machine() there
    root: ArmRoot | None = field(default=None, compare=False)  # set when emulated
    native_target: str = "native"  # the zig target of the native builds

    @property
    def emulated(self) -> bool:
        return self.root is not None

    @property
    def title(self) -> str:
        """Added to a suite's title: where it ran, when that is not this host."""
        return f" on {self.arch} (emulated)" if self.emulated else ""


def _normal(arch: str) -> str:
    a = arch.strip().lower()
    return _ALIASES.get(a, a)


def host_arch() -> str:
    return _normal(platform.machine())


def check_arch(arch: str | None) -> str:
    """The architecture named (this host's when None); one line when unknown or impossible."""
    if arch is None:
        return host_arch()
    a = _normal(arch)
    if a not in ARCHES:
        raise FogError(f"unknown architecture {arch!r}: expected one of {', '.join(ARCHES)}")
    if a != host_arch() and (a, host_arch()) != ("aarch64", "x86_64"):
        raise FogError(f"cannot run {a} here: only aarch64 is emulated, on an x86-64 host "
                       f"(this one is {host_arch()})")
    return a


def machine(arch: str) -> Machine:
    """Where runs on ``arch`` (checked by :func:`check_arch`) happen; builds the arm64 root
    (once per machine, minutes, with a progress bar) when it must be emulated."""
    if arch == host_arch():
        return Machine(arch)
    from foglayer.runtime import NATIVE_CALLS
    from foglayer.toolchain import arm_root

    root = arm_root()
    # The root has no compiler: its fog run gets the hot WASI calls in C built from here.
    root.ready_native([NATIVE_CALLS])
    return Machine(arch, root, root.zig_target())


def wasmtime_cache_name(wasm: Path, settings: str, engine: str) -> str:
    """The reference runner's compiled-module file name: keyed by the module, the settings
    and the engine that compiles it (its version and machine)."""
    h = hashlib.sha256(wasm.read_bytes())
    h.update(f"|{settings}|{engine}".encode())
    return f"{h.hexdigest()[:40]}.cwasm"


def wasmtime_cache_in_root(root: ArmRoot, wasm: Path, settings: str) -> str:
    """That file for a run in the root, as seen there (the root's venv names its wasmtime)."""
    return f"{root.cache}/bench-wasmtime/{wasmtime_cache_name(wasm, settings, root.python)}"
