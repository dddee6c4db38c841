"""The hot WASI calls in C (``hostcalls.c``), sharing the fd table with the Python ``Wasi``.

The C functions are registered with wasmtime as unchecked host functions, so such a call
never enters Python. Each handles the common case and falls back to the call's Python
trampoline for everything else (and for every call while a checkpoint gate is set).

State sharing (see docs/native-wasi.md): Python owns a ``_Ctx`` struct and rewrites its
fd table from ``Wasi.fds`` after every WASI call that ran in Python (any of them may have
opened, closed, renumbered a descriptor or changed its rights) and before every entry
into the guest. File offsets stay in the host descriptors, where Python already reads
them for snapshots. ``FOG_WASI_NATIVE=0`` forces the pure-Python path; ``=1`` makes a
failed build an error; unset, the native path is used whenever it can be built.
"""

from __future__ import annotations

import ctypes
import os
import struct
from pathlib import Path

from foglayer.errors import FogError
from foglayer.runtime import _ffi
from foglayer.toolchain import NativeLibrary
from foglayer.wasi import Wasi, abi

SOURCE = Path(__file__).with_name("hostcalls.c")
ENV = "FOG_WASI_NATIVE"
FLAGS = ("-O2", "-fno-strict-aliasing")

# The calls done in C; each falls back to Python for what it does not handle.
NAMES = (
    "fd_write", "fd_read", "fd_pread", "fd_pwrite", "fd_seek", "fd_tell",
    "fd_filestat_get", "path_filestat_get",
    "clock_time_get", "clock_res_get", "random_get", "sched_yield",
    "args_get", "args_sizes_get", "environ_get", "environ_sizes_get",
)
MAX_FUNCTIONS = 64
# The wasmtime_extern_t that fog_ctx.memory receives: 32 bytes, the memory at offset 8.
EXTERN_LAYOUT = (32, 8)


class _Fd(ctypes.Structure):
    _fields_ = [("host_fd", ctypes.c_int32), ("kind", ctypes.c_uint8),
                ("paths", ctypes.c_uint8), ("_pad", ctypes.c_uint8 * 2),
                ("rights", ctypes.c_uint64)]


_FD_PACK = struct.Struct("<iB?xxQ").pack_into  # an _Fd, written in one go
assert struct.calcsize("<iB?xxQ") == ctypes.sizeof(_Fd)


class _Ctx(ctypes.Structure):
    _fields_ = [
        ("gate", ctypes.c_int32), ("nfds", ctypes.c_uint32), ("fds", ctypes.POINTER(_Fd)),
        ("monotonic_offset", ctypes.c_int64),
        ("args", ctypes.c_char_p), ("argc", ctypes.c_uint32), ("args_size", ctypes.c_uint32),
        ("env", ctypes.c_char_p), ("envc", ctypes.c_uint32), ("env_size", ctypes.c_uint32),
        ("r_read", ctypes.c_uint64), ("r_write", ctypes.c_uint64),
        ("r_seek_tell", ctypes.c_uint64), ("r_path_filestat_get", ctypes.c_uint64),
        ("e_fault", ctypes.c_int32), ("e_noent", ctypes.c_int32),
        ("ft_reg", ctypes.c_int32), ("ft_dir", ctypes.c_int32),
        ("ft_of_mode", ctypes.c_uint8 * 16), ("memory_kind", ctypes.c_uint32),
        ("export_get", ctypes.c_void_p), ("caller_context", ctypes.c_void_p),
        ("memory_data", ctypes.c_void_p), ("memory_data_size", ctypes.c_void_p),
        ("base", ctypes.c_void_p), ("size", ctypes.c_uint64),
        ("memory", ctypes.c_uint64 * 4), ("counts", ctypes.c_uint64 * MAX_FUNCTIONS),
    ]


class _Fn(ctypes.Structure):
    _fields_ = [("ctx", ctypes.POINTER(_Ctx)), ("index", ctypes.c_uint32),
                ("fallback", _ffi.HOST_CALLBACK)]


# Built with ziglang per target machine, keyed by content (see foglayer.toolchain):
# ``LIBRARY.path(target, builds)`` readies it for another machine's cache (the arm64 root's).
LIBRARY = NativeLibrary(SOURCE, FLAGS)


_LIB: list[ctypes.CDLL | str] = []  # the loaded library, or why it cannot be used


def library() -> ctypes.CDLL | None:
    """The loaded library, or None for the Python path (by choice or when it cannot build).

    ``$FOG_WASI_NATIVE`` is read on every call (the library is loaded once per process).
    """
    choice = os.environ.get(ENV, "")
    if choice == "0":
        return None
    if not _LIB:
        try:
            lib = ctypes.CDLL(str(LIBRARY.path()))
            if lib.fog_ctx_layout() != _layout():
                raise FogError("struct layout differs from hostcalls.c")
            if _ffi.c_api_for_native()[2] != EXTERN_LAYOUT:
                raise FogError("libwasmtime's wasmtime_extern_t differs from hostcalls.c's")
            _LIB.append(lib)
        except (FogError, OSError) as e:
            _LIB.append(str(e))
    lib = _LIB[0]
    if isinstance(lib, str):
        if choice == "1":
            raise FogError(f"{ENV}=1 but the native WASI calls cannot be used: {lib}")
        return None
    return lib


def wasi_path() -> str:
    """The WASI path this process's instances take: "native" (hot calls in C) or "python"."""
    return "native" if library() is not None else "python"


def _layout() -> int:
    return (ctypes.sizeof(_Ctx) << 20) | (_Ctx.memory_kind.offset << 10) | _Ctx.base.offset


def _addr(fn: object) -> int:
    return ctypes.cast(fn, ctypes.c_void_p).value or 0


def _blob(items: list[bytes]) -> bytes:
    return b"".join(s + b"\0" for s in items)


class NativeCalls:
    """The native side of one instance's WASI: the shared struct and per-call envs."""

    def __init__(self, lib: ctypes.CDLL, wasi: Wasi) -> None:
        self.lib = lib
        self.wasi = wasi
        ctx = self.ctx = _Ctx()
        ctx.r_read, ctx.r_write = abi.R.FD_READ, abi.R.FD_WRITE
        ctx.r_seek_tell = abi.R.FD_SEEK | abi.R.FD_TELL
        ctx.r_path_filestat_get = abi.R.PATH_FILESTAT_GET
        ctx.e_fault, ctx.e_noent = abi.E.FAULT, abi.E.NOENT
        ctx.ft_reg, ctx.ft_dir = abi.FT_REG, abi.FT_DIR
        for fmt, kind in ((0o01, abi.FT_UNKNOWN), (0o02, abi.FT_CHAR), (0o04, abi.FT_DIR),
                          (0o06, abi.FT_BLOCK), (0o10, abi.FT_REG), (0o12, abi.FT_SYMLINK),
                          (0o14, abi.FT_STREAM)):
            ctx.ft_of_mode[fmt] = kind
        api, ctx.memory_kind, _ = _ffi.c_api_for_native()
        ctx.export_get = api["wasmtime_caller_export_get"]
        ctx.caller_context = api["wasmtime_caller_context"]
        ctx.memory_data = api["wasmtime_memory_data"]
        ctx.memory_data_size = api["wasmtime_memory_data_size"]
        self._table = (_Fd * 0)()
        self._view = memoryview(b"")
        self._top = 0
        self._envs: list[_Fn] = []
        self.sync(full=True)

    def function(self, name: str, index: int, fallback: object) -> tuple[int, int] | None:
        """(code, env) to register for WASI call ``name``, or None if it stays in Python."""
        if name not in NAMES or index >= MAX_FUNCTIONS:
            return None
        if name.startswith(("args", "environ")) and not self._strings_ok:
            return None
        env = _Fn(ctypes.pointer(self.ctx), index, fallback)
        self._envs.append(env)
        return _addr(getattr(self.lib, f"fog_{name}")), ctypes.addressof(env)

    def set_gate(self, on: bool) -> None:
        self.ctx.gate = 1 if on else 0

    def counts(self) -> list[int]:
        return list(self.ctx.counts)

    def sync(self, full: bool = False) -> None:
        """Rewrite the shared state from ``Wasi`` (the single source of truth).

        Runs after every WASI call done in Python, so it is kept to ~1 µs for a few fds.
        """
        ctx, fds, state = self.ctx, self.wasi.fds, self.wasi.state
        top = max(fds, default=-1) + 1
        n = max(top, self._top)  # also clear entries closed since the last sync
        if n > len(self._table):
            self._table = (_Fd * max(n, 2 * len(self._table), 16))()
            self._view = memoryview(self._table).cast("B")
            ctx.fds = ctypes.cast(self._table, ctypes.POINTER(_Fd))
        view, pack, get, ft_dir = self._view, _FD_PACK, fds.get, abi.FT_DIR
        for fd in range(n):
            d = get(fd)
            if d is None:
                pack(view, fd << 4, -1, 0, 0, 0)
            else:
                # Path calls in C only below a plain host directory (not one in memory).
                pack(view, fd << 4, d.host_fd, d.kind,
                     d.kind == ft_dir and bool(d.host_path) and not d.memory, d.rights_base)
        ctx.nfds, self._top = n, top
        ctx.monotonic_offset = state.monotonic_offset_ns
        if full:
            args = [a.encode() for a in state.args]
            env = [f"{k}={v}".encode() for k, v in state.env.items()]
            self._args, self._env = _blob(args), _blob(env)
            ctx.args, ctx.args_size = self._args, len(self._args)
            ctx.env, ctx.env_size = self._env, len(self._env)
            ctx.argc, ctx.envc = len(args), len(env)
            # A NUL inside a string would cut it short in C: leave those calls to Python.
            self._strings_ok = b"\0" not in b"".join(args + env)
