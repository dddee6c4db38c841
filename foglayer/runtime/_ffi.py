"""Every use of wasmtime-py's private API (``wasmtime._ffi`` and the objects' raw handles).

wasmtime-py's public calls check types on every call (~8.5 µs a host call, ~200 µs a
``Func.__call__``); the C API's unchecked paths take well under 1 µs. Keeping them here
means a wasmtime upgrade is checked against one file.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

import wasmtime
from wasmtime import _ffi as ffi

# A host function on the unchecked path: (env, caller, args_and_results, nargs) -> trap*.
HOST_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_size_t, ctypes.c_void_p, ctypes.c_void_p,
                                 ctypes.c_void_p, ctypes.c_size_t)
RAW_SLOT = 16  # bytes of one wasmtime_val_raw_t
_NO_FINALIZER = ctypes.cast(None, ctypes.CFUNCTYPE(None, ctypes.c_void_p))
_EPOCH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_size_t, ctypes.POINTER(ffi.wasmtime_context_t), ctypes.c_void_p,
    ctypes.POINTER(ctypes.c_uint64), ctypes.POINTER(ctypes.c_uint8))
_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


def _address(ptr: object) -> int:
    return ctypes.cast(ptr, ctypes.c_void_p).value or 0


def new_trap(message: str) -> int:
    """A trap for a host callback to return (the guest unwinds with ``message``)."""
    text = message.encode()
    return _address(ffi.wasmtime_trap_new(ctypes.create_string_buffer(text), len(text)))


def new_error(message: str) -> int:
    """An error for an epoch callback to return (the call ends with ``message``)."""
    return _address(ffi.wasmtime_error_new(message.encode()))


def define_unchecked(linker: wasmtime.Linker, module: str, name: str, ty: wasmtime.FuncType,
                     callback: ctypes._CFuncPtr | int, env: int | None = None) -> None:
    """Define ``module.name`` on ``linker`` as an unchecked host function (raw slots).

    ``callback`` may be the address of a C function (the native WASI calls), which then
    gets ``env`` as its first argument.
    """
    mod, nm = module.encode(), name.encode()
    err = ffi.wasmtime_linker_define_func_unchecked(
        linker.ptr(), mod, len(mod), nm, len(nm), ty.ptr(),
        ctypes.cast(callback, ffi.wasmtime_func_unchecked_callback_t), env, _NO_FINALIZER)
    if err:
        raise wasmtime.WasmtimeError._from_ptr(err)


def c_api_for_native() -> tuple[dict[str, int], int, tuple[int, int]]:
    """What the native WASI calls need from libwasmtime: function addresses (so they link
    against nothing), the extern kind of a memory, and (size, payload offset) of a
    ``wasmtime_extern_t``, which C fills in and must have room for."""
    names = ("wasmtime_caller_export_get", "wasmtime_caller_context", "wasmtime_memory_data",
             "wasmtime_memory_data_size")
    layout = (ctypes.sizeof(ffi.wasmtime_extern_t), ffi.wasmtime_extern_t.of.offset)
    return ({n: _address(getattr(ffi.dll, n)) for n in names}, ffi.WASMTIME_EXTERN_MEMORY.value,
            layout)


class RawCall:
    """An exported function called with raw slots, without wasmtime-py's per-call checks.

    ``slots[i].i32`` (``i64``, ``f32``, ``f64``) hold the arguments before the call and
    the results after it.
    """

    __slots__ = ("slots", "_ctx", "_ref", "_n", "_call")

    def __init__(self, store: wasmtime.Store, func: wasmtime.Func, nslots: int) -> None:
        self.slots = (ffi.wasmtime_val_raw_t * max(1, nslots))()
        self._n = len(self.slots)
        self._ctx = store._context()
        self._ref = ctypes.byref(func._func)
        self._call = ffi.wasmtime_func_call_unchecked

    def __call__(self) -> Exception | None:
        """Run the call: None, or the trap or error it ended with."""
        trap = ctypes.POINTER(ffi.wasm_trap_t)()
        error = self._call(self._ctx, self._ref, self.slots, self._n, ctypes.byref(trap))
        if trap:
            return wasmtime.Trap._from_ptr(trap)
        if error:
            return wasmtime.WasmtimeError._from_ptr(error)
        return None


def deserialize(engine: wasmtime.Engine, artifact: memoryview) -> wasmtime.Module:
    """``Module.deserialize`` without its copy of the bytes (``artifact`` must be writable)."""
    ptr = ctypes.POINTER(ffi.wasmtime_module_t)()
    error = ffi.wasmtime_module_deserialize(
        engine.ptr(), (ctypes.c_uint8 * len(artifact)).from_buffer(artifact), len(artifact),
        ctypes.byref(ptr))
    if error:
        raise wasmtime.WasmtimeError._from_ptr(error)
    return wasmtime.Module._from_ptr(ptr)


def memory_base(store: wasmtime.Store, memory: wasmtime.Memory) -> int:
    """The host address of linear memory (it never moves: ``memory_may_move=False``)."""
    return _address(memory.data_ptr(store))


def memory_size_fn(store: wasmtime.Store, memory: wasmtime.Memory) -> Callable[[], int]:
    """A cheap callable giving the memory's current size in bytes."""
    ctx, ref, size = store._context(), ctypes.byref(memory._memory), ffi.wasmtime_memory_data_size
    return lambda: size(ctx, ref)


def on_epoch(store: wasmtime.Store, fn: Callable[[], str | None]) -> object:
    """Call ``fn`` at every epoch tick while the store runs Wasm (deadline: next tick).

    ``fn`` returns None to go on, or a message that ends the running call. Returns what
    must be kept alive as long as the store.
    """

    def tick(ctx: object, data: object, delta: ctypes._Pointer, kind: ctypes._Pointer) -> int:
        try:
            message = fn()
        except BaseException as e:  # noqa: BLE001 - never unwind through Wasm frames
            message = f"internal error in the epoch callback: {type(e).__name__}: {e}"
        if message is not None:
            return new_error(message)
        delta[0] = 1
        kind[0] = 0  # WASMTIME_UPDATE_DEADLINE_CONTINUE
        return 0

    keep = (_EPOCH_CALLBACK(tick), _FINALIZER())
    ffi.wasmtime_store_epoch_deadline_callback(store.ptr(), keep[0], None, keep[1])
    return keep
