"""The C toolchain: ziglang's ``cc`` for wasm32-wasi and native, with a build cache.

Public API: :func:`compile_c`, :func:`zig_version`, :class:`CompileError`.
"""

from foglayer.toolchain._cc import CompileError, compile_c, zig_version

__all__ = ["CompileError", "compile_c", "zig_version"]
