"""Bind host functions (our WASI, and any extra imports) on wasmtime's fast unchecked path.

wasmtime-py's ``Func`` costs ~8.5 µs a call; an unchecked callback that reads its raw
arguments through a cached ``memoryview`` costs well under 1 µs. Each host function gets a
small generated trampoline (as ``namedtuple`` does) that unpacks exactly its own arguments.
"""

from __future__ import annotations

import ctypes
import hashlib
import marshal
import sys
import weakref
from collections.abc import Callable, Collection
from types import CodeType

import wasmtime

from foglayer.errors import FogError
from foglayer.runtime import _cache, _ffi, _native
from foglayer.wasi import MODULE, SIGNATURES, Interrupted, ProcExit, Wasi

_RAW_BYTES = _ffi.RAW_SLOT * 10  # path_open takes 9 arguments

_TEMPLATE = """
def factory(views, make_views, counts, gate, impl, ProcExit, Interrupted, exit_trap,
            interrupt_trap, internal_error, mem_refresh, index, name):
    def host(env, caller, args, nargs):
        try:
            v32, v64 = views[args]
        except KeyError:
            v32, v64 = views[args] = make_views(args)
        counts[index] += 1
        try:
            g = gate[0]
            if g is not None and g(index):
                return 0
            {refresh}r = impl({argv})
        except ProcExit:
            return exit_trap()
        except Interrupted:
            return interrupt_trap()
        except BaseException as e:
            return internal_error(name, e)
        {store}
        return 0
    return host
"""
_FACTORIES: dict[tuple[str, str, bool], Callable] = {}
# Compiling the trampolines' source took ~3 ms of every start: their code objects are kept
# in the AOT cache (marshal, authenticated like every entry), keyed by this template and
# this Python's bytecode version.
_CODE_DIGEST = hashlib.sha256(
    f"{_TEMPLATE}|{sys.implementation.cache_tag}|{sys.version}".encode()).hexdigest()
_CODE_KIND = "trampolines"
_codes: dict[tuple[str, str, bool], CodeType] | None = None
_codes_dirty = False


def _cached_codes() -> dict[tuple[str, str, bool], CodeType]:
    global _codes
    if _codes is None:
        _codes = {}
        try:
            blob = _cache.load(_CODE_DIGEST, _CODE_KIND, ".marshal")
            if blob is not None:
                loaded = marshal.loads(blob)
                if isinstance(loaded, dict):
                    _codes = loaded
        except (OSError, FogError, ValueError, EOFError, TypeError):
            pass  # no usable cache: compile
    return _codes


def _save_codes() -> None:
    global _codes_dirty
    if _codes_dirty and _codes is not None:
        _codes_dirty = False
        try:
            _cache.store(_CODE_DIGEST, _CODE_KIND, marshal.dumps(_codes), ".marshal")
        except (OSError, FogError):
            pass  # costs a compile next time


def _factory(params: str, result: str, refresh: bool) -> Callable:
    """The trampoline maker for one signature, made once per process."""
    global _codes_dirty
    key = (params, result, refresh)
    fn = _FACTORIES.get(key)
    if fn is None:
        codes = _cached_codes()
        code = codes.get(key)
        if code is None:
            argv = ", ".join(f"v32[{4 * k}]" if t == "i" else f"v64[{2 * k}]"
                             for k, t in enumerate(params))
            store = {"": "", "i": "v32[0] = r & 0xFFFFFFFF",
                     "I": "v64[0] = r & 0xFFFFFFFFFFFFFFFF"}[result]
            src = _TEMPLATE.format(argv=argv, store=store,
                                   refresh="mem_refresh()\n            " if refresh else "")
            code = codes[key] = compile(src, f"<trampoline {params}->{result}>", "exec")
            _codes_dirty = True
        scope: dict = {}
        exec(code, scope)  # noqa: S102 - generated from fixed signatures, no user text
        fn = _FACTORIES[key] = scope["factory"]
    return fn


class HostFunction:
    """An import the host provides. ``params``/``result`` use ``i`` (i32) and ``I`` (i64).

    ``impl`` receives the raw integer arguments (i32 as unsigned) and returns the result.
    """

    __slots__ = ("module", "name", "params", "result", "impl")

    def __init__(self, module: str, name: str, params: str, result: str,
                 impl: Callable[..., int | None]) -> None:
        self.module, self.name, self.params, self.result, self.impl = (
            module, name, params, result, impl)

    def __repr__(self) -> str:
        return f"HostFunction({self.module}.{self.name}({self.params}) -> {self.result or '()'})"


def _make_views(addr: int) -> tuple[memoryview, memoryview]:
    raw = memoryview((ctypes.c_ubyte * _RAW_BYTES).from_address(addr))
    return raw.cast("B").cast("I"), raw.cast("B").cast("Q")


def _synced(impl: Callable[..., int | None], sync: Callable[[], None]) -> Callable[..., int | None]:
    """``impl``, then re-share the fd table: any call run in Python may have changed it."""
    def call(*args: int) -> int | None:
        try:
            return impl(*args)
        finally:
            sync()
    return call


def wasi_functions(wasi: Wasi) -> list[HostFunction]:
    impls = wasi.host_functions()  # they map every host error to an errno themselves
    return [HostFunction(MODULE, name, params, "i" if has_result else "", impls[name])
            for name, (params, has_result) in SIGNATURES.items()]


_VAL = {"i": wasmtime.ValType.i32, "I": wasmtime.ValType.i64}
# Function types belong to an engine (wasmtime refuses another engine's): one per signature
# per engine, for the engine's life.
_FUNC_TYPES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _func_type(engine: wasmtime.Engine, params: str, result: str) -> wasmtime.FuncType:
    per_engine = _FUNC_TYPES.setdefault(engine, {})
    ty = per_engine.get((params, result))
    if ty is None:
        types = {"i": wasmtime.ValType.i32(), "I": wasmtime.ValType.i64()}
        ty = per_engine[(params, result)] = wasmtime.FuncType(
            [types[t] for t in params], [types[result]] if result else [])
    return ty


class Binding:
    """The host imports of one instance, defined on its linker; keeps callbacks alive.

    ``gate`` (settable) is called with a function's index before every call; when it
    returns true the call is skipped (a checkpoint unwinds from there and re-runs it later);
    when it raises ``Interrupted`` the run ends there (a stopped instance).
    The hot WASI calls run in C when the native library is available (``path`` says
    which); while a gate is set they all go through Python.
    """

    EXIT_MESSAGE = "foglayer: proc_exit"
    INTERRUPT_MESSAGE = "foglayer: interrupted in a host call"

    def __init__(self, linker: wasmtime.Linker, wasi: Wasi,
                 extra: list[HostFunction] | tuple = (),
                 imports: Collection[tuple[str, str]] | None = None,
                 engine: wasmtime.Engine | None = None) -> None:
        """``imports``: what the module imports; only those are defined (a linker with all
        46 WASI calls costs most of an instantiation, and most modules import a handful)."""
        self.wasi = wasi
        functions = wasi_functions(wasi) + list(extra)
        if imports is not None:
            wanted = set(imports)
            functions = [f for f in functions if (f.module, f.name) in wanted]
        self.names = [f"{f.name}" if f.module == MODULE else f"{f.module}.{f.name}"
                      for f in functions]
        self.counts = [0] * len(functions)
        self._gate: list[Callable[[int], bool] | None] = [None]
        self.error: BaseException | None = None
        self._keep: list = []
        lib = _native.library()
        self.native = _native.NativeCalls(lib, wasi) if lib is not None else None
        self.path = "native" if self.native is not None else "python"
        views: dict[int, tuple[memoryview, memoryview]] = {}
        for index, f in enumerate(functions):
            # Every WASI call checks its pointers (re-mapping memory when the guest has
            # grown); only extra host functions, which may touch memory freely, re-map first.
            make = _factory(f.params, f.result, f.module != MODULE)
            native = self.native if f.module == MODULE else None
            impl = f.impl
            if self.native is not None and (native is None or f.name not in _native.NAMES):
                # Any host function run in Python (WASI or extra) may change the fd table.
                impl = _synced(impl, self.native.sync)
            cb = _ffi.HOST_CALLBACK(make(
                views, _make_views, self.counts, self._gate, impl, ProcExit, Interrupted,
                self._exit_trap, self._interrupt_trap, self._internal_error,
                lambda: wasi.mem.refresh(), index, self.names[index]))
            ty = (_func_type(engine, f.params, f.result) if engine is not None else
                  wasmtime.FuncType([_VAL[t]() for t in f.params],
                                    [_VAL[f.result]()] if f.result else []))
            self._keep += [cb, ty]
            # A hot WASI call runs in C, with this trampoline as its fallback.
            code, env = (native.function(f.name, index, cb) if native is not None else None
                         ) or (cb, None)
            _ffi.define_unchecked(linker, f.module, f.name, ty, code, env)
        _save_codes()

    @property
    def gate(self) -> Callable[[int], bool] | None:
        return self._gate[0]

    @gate.setter
    def gate(self, fn: Callable[[int], bool] | None) -> None:
        self._gate[0] = fn
        if self.native is not None:
            self.native.set_gate(fn is not None)

    def sync(self) -> None:
        """Share Python's WASI state with the native calls (before entering the guest)."""
        if self.native is not None:
            self.native.sync()

    def _exit_trap(self) -> int:
        return _ffi.new_trap(self.EXIT_MESSAGE)

    def _interrupt_trap(self) -> int:
        return _ffi.new_trap(self.INTERRUPT_MESSAGE)

    def _internal_error(self, name: str, e: BaseException) -> int:
        # A bug in the host must not look like the guest's fault, nor be swallowed.
        self.error = e
        return _ffi.new_trap(f"foglayer: internal error in host function {name}: "
                         f"{type(e).__name__}: {e}")

    def call_counts(self) -> dict[str, int]:
        counts = self.counts
        if self.native is not None:
            counts = [a + b for a, b in zip(counts, self.native.counts(), strict=False)]
            counts += self.counts[len(counts):]
        return {n: c for n, c in zip(self.names, counts, strict=True) if c}
