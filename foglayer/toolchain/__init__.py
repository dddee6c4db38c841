"""The toolchain: ziglang's ``cc`` for wasm32-wasi and native, with a build cache, and the
arm64 Debian root that runs foglayer on aarch64 under qemu user emulation.

Public API: :func:`compile_c`, :func:`zig_version`, :class:`CompileError`;
:func:`arm_root` (an :class:`ArmRoot`), :func:`ensure_binfmt`, :class:`ArmRootError`;
:class:`NativeLibrary` (one of foglayer's C sources as a shared library for a target machine,
keyed by content; ``ArmRoot.ready_native`` builds them into the root), :func:`native_target`,
:func:`in_arm_root`.

Names are loaded on first use: a native library's lookup (on every start, also in the arm64
root under emulation) does not import the root's builder.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "ArmRoot": "_armroot", "ArmRootError": "_armroot", "arm_root": "_armroot",
    "ensure_binfmt": "_armroot",
    "CompileError": "_cc", "compile_c": "_cc", "zig_version": "_cc",
    "NativeLibrary": "_native", "in_arm_root": "_native", "native_target": "_native",
}

__all__ = ["ArmRoot", "ArmRootError", "CompileError", "NativeLibrary", "arm_root", "compile_c",
           "ensure_binfmt", "in_arm_root", "native_target", "zig_version"]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'foglayer.toolchain' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"foglayer.toolchain.{module}"), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from foglayer.toolchain._armroot import ArmRoot, ArmRootError, arm_root, ensure_binfmt
    from foglayer.toolchain._cc import CompileError, compile_c, zig_version
    from foglayer.toolchain._native import NativeLibrary, in_arm_root, native_target
