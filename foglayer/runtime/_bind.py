"""Bind our WASI to a linker on wasmtime's fast, unchecked host-call path.

wasmtime-py's ``Func`` costs ~8.5 µs a call; an unchecked callback that reads its raw
arguments through a cached ``memoryview`` costs well under 1 µs. Each WASI function gets a
small generated trampoline (as ``namedtuple`` does) that unpacks exactly its own arguments.
"""

from __future__ import annotations

import ctypes

import wasmtime
from wasmtime import _ffi as ffi

from foglayer.wasi import HOT, MODULE, SIGNATURES, ProcExit, Wasi, WasiError
from foglayer.wasi import _abi as abi

_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_size_t, ctypes.c_void_p, ctypes.c_void_p,
                             ctypes.c_void_p, ctypes.c_size_t)
_NO_FINALIZER = ctypes.cast(None, ctypes.CFUNCTYPE(None, ctypes.c_void_p))
_RAW_BYTES = 16 * 10  # wasmtime_val_raw_t is 16 bytes; path_open takes 9 arguments

_TEMPLATE = """
def {name}(env, caller, args, nargs):
    try:
        v32, v64 = views[args]
    except KeyError:
        v32, v64 = views[args] = make_views(args)
    counts[{index}] += 1
    try:
        {refresh}r = impl({argv})
    except WasiError as e:
        r = e.errno
    except OSError as e:
        r = from_oserror(e)
    except ProcExit:
        return exit_trap()
    except BaseException as e:
        return internal_error({name!r}, e)
    {store}
    return 0
"""


def _make_views(addr: int) -> tuple[memoryview, memoryview]:
    raw = memoryview((ctypes.c_ubyte * _RAW_BYTES).from_address(addr))
    return raw.cast("B").cast("I"), raw.cast("B").cast("Q")


def _new_trap(message: str) -> int:
    text = message.encode()
    trap = ffi.wasmtime_trap_new(ctypes.create_string_buffer(text), len(text))
    return ctypes.cast(trap, ctypes.c_void_p).value or 0


class Binding:
    """The WASI imports of one instance, defined on its linker; keeps callbacks alive."""

    EXIT_MESSAGE = "foglayer: proc_exit"

    def __init__(self, linker: wasmtime.Linker, wasi: Wasi) -> None:
        self.wasi = wasi
        self.names = list(SIGNATURES)
        self.counts = [0] * len(self.names)
        self.error: BaseException | None = None
        self._callbacks: list = []
        views: dict[int, tuple[memoryview, memoryview]] = {}
        i32, i64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()
        module = MODULE.encode()
        for index, (name, (params, has_result)) in enumerate(SIGNATURES.items()):
            argv = ", ".join(
                f"v32[{4 * k}]" if t == "i" else f"v64[{2 * k}]" for k, t in enumerate(params))
            src = _TEMPLATE.format(
                name=name, index=index, argv=argv,
                refresh="" if name in HOT else "mem_refresh()\n        ",
                store="v32[0] = r" if has_result else "")
            scope = {
                "views": views, "make_views": _make_views, "counts": self.counts,
                "impl": getattr(wasi, name), "WasiError": WasiError, "ProcExit": ProcExit,
                "from_oserror": abi.from_oserror, "exit_trap": self._exit_trap,
                "internal_error": self._internal_error,
                "mem_refresh": lambda: wasi.mem.refresh(),
            }
            exec(src, scope)  # noqa: S102 - generated from the fixed signature table above
            cb = _CALLBACK(scope[name])
            self._callbacks.append(cb)
            ty = wasmtime.FuncType([i32 if t == "i" else i64 for t in params],
                                   [i32] if has_result else [])
            self._callbacks.append(ty)
            err = ffi.wasmtime_linker_define_func_unchecked(
                linker.ptr(), module, len(module), name.encode(), len(name), ty.ptr(),
                ctypes.cast(cb, ffi.wasmtime_func_unchecked_callback_t), None, _NO_FINALIZER)
            if err:
                raise wasmtime.WasmtimeError._from_ptr(err)

    def _exit_trap(self) -> int:
        return _new_trap(self.EXIT_MESSAGE)

    def _internal_error(self, name: str, e: BaseException) -> int:
        # A bug in our WASI must not look like the guest's fault, nor be swallowed.
        self.error = e
        return _new_trap(f"foglayer: internal error in WASI {name}: {type(e).__name__}: {e}")

    def call_counts(self) -> dict[str, int]:
        return {n: c for n, c in zip(self.names, self.counts, strict=True) if c}


