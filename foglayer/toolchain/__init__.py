"""The toolchain: ziglang's ``cc`` for wasm32-wasi and native, with a build cache, and the
arm64 Debian root that runs foglayer on aarch64 under qemu user emulation.

Public API: :func:`compile_c`, :func:`zig_version`, :class:`CompileError`;
:func:`arm_root` (an :class:`ArmRoot`), :func:`ensure_binfmt`, :class:`ArmRootError`.
"""

from foglayer.toolchain._armroot import ArmRoot, ArmRootError, arm_root, ensure_binfmt
from foglayer.toolchain._cc import CompileError, compile_c, zig_version

__all__ = ["ArmRoot", "ArmRootError", "CompileError", "arm_root", "compile_c", "ensure_binfmt",
           "zig_version"]
