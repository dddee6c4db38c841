"""The instance life cycle: instantiate with our WASI, run ``_start``, call exports."""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Sequence
from typing import Any

import wasmtime

from foglayer.errors import FogError
from foglayer.runtime._bind import Binding, HostFunction
from foglayer.runtime._engine import EngineSettings, LoadedModule, engine_for, load_module
from foglayer.runtime._errors import LimitExceeded, ModuleError, Trapped
from foglayer.runtime._limits import Limits, Stats, format_size
from foglayer.wasi import MODULE, SIGNATURES, GuestMemory, Preopen, Wasi

FUEL_UNLIMITED = (1 << 63) - 1
EPOCH_TICK = 0.01  # seconds between epoch increments while a deadline is armed


class _Ticker:
    """One thread per engine advances its epoch; each store sets its own deadline in ticks."""

    _lock = threading.Lock()
    _started: set[int] = set()

    @classmethod
    def ensure(cls, engine: wasmtime.Engine) -> None:
        with cls._lock:
            if id(engine) in cls._started:
                return
            cls._started.add(id(engine))

        def tick() -> None:
            while True:
                time.sleep(EPOCH_TICK)
                engine.increment_epoch()

        threading.Thread(target=tick, name="fog-epoch", daemon=True).start()


class RunResult:
    """How a command ended: its exit code and what it consumed."""

    __slots__ = ("exit_code", "stats")

    def __init__(self, exit_code: int, stats: Stats) -> None:
        self.exit_code = exit_code
        self.stats = stats

    def __repr__(self) -> str:
        return f"RunResult(exit_code={self.exit_code}, stats={self.stats})"


_RAW_FIELD = {"i32": "i32", "i64": "i64", "f32": "f32", "f64": "f64"}


class Function:
    """An exported function called with raw values: ~20 µs a call, against ~200 µs for
    wasmtime-py's ``Func.__call__``, which inspects the function's type on every call.

    ``params``/``results`` are type names (``"i32"``, ``"i64"``, ``"f32"``, ``"f64"``).
    Returns ``None``, one value, or a tuple for several results.
    """

    __slots__ = ("instance", "name", "params", "results", "_buf", "_ctx", "_ref", "_func")

    def __init__(self, instance: Instance, name: str, func: wasmtime.Func) -> None:
        ty = func.type(instance.store)
        self.instance, self.name, self._func = instance, name, func
        self.params = [str(t) for t in ty.params]
        self.results = [str(t) for t in ty.results]
        for t in (*self.params, *self.results):
            if t not in _RAW_FIELD:
                raise FogError(f"{name}: cannot call a function taking or returning {t}")
        self._buf = (wasmtime._ffi.wasmtime_val_raw_t * max(1, len(self.params),
                                                            len(self.results)))()
        self._ctx = instance.store._context()
        self._ref = ctypes.byref(func._func)

    def __call__(self, *args: int | float) -> Any:
        if len(args) != len(self.params):
            raise FogError(f"{self.name}: expected {len(self.params)} arguments, got {len(args)}")
        buf = self._buf
        for i, (kind, a) in enumerate(zip(self.params, args, strict=True)):
            setattr(buf[i], kind, a)
        inst = self.instance
        trap = ctypes.POINTER(wasmtime._ffi.wasm_trap_t)()
        t0 = inst._enter()
        error = wasmtime._ffi.wasmtime_func_call_unchecked(
            self._ctx, self._ref, buf, len(buf), ctypes.byref(trap))
        inst._leave(t0)
        if error or trap:
            e: Exception = (wasmtime.Trap._from_ptr(trap) if trap
                            else wasmtime.WasmtimeError._from_ptr(error))
            raise inst._failure(e, self.name) from None
        out = [getattr(buf[i], kind) for i, kind in enumerate(self.results)]
        return None if not out else out[0] if len(out) == 1 else tuple(out)


def _check_imports(module: LoadedModule, extra: tuple[HostFunction, ...]) -> None:
    provided = {(f.module, f.name) for f in extra}
    for mod, name in module.imports():
        if (mod != MODULE or name not in SIGNATURES) and (mod, name) not in provided:
            raise ModuleError(
                f"{module.path}: imports {mod}.{name}, which foglayer does not provide "
                f"(only {MODULE} is available)")


class Instance:
    """A module instantiated in its own store, with its own WASI and limits."""

    def __init__(self, module: LoadedModule, wasi: Wasi | None = None,
                 limits: Limits = Limits(), host_functions: tuple[HostFunction, ...] = ()) -> None:
        """``host_functions`` are extra imports beside WASI (e.g. a checkpoint safepoint)."""
        _check_imports(module, tuple(host_functions))
        self.module = module
        self.limits = limits
        settings = module.settings
        if limits.fuel and not settings.consume_fuel:
            raise FogError("a fuel limit needs an engine with consume_fuel=True")
        if limits.timeout and not settings.epoch_interruption:
            raise FogError("a timeout needs an engine with epoch_interruption=True")
        engine = engine_for(settings)
        self.store = wasmtime.Store(engine)
        if limits.max_memory:
            self.store.set_limits(memory_size=limits.max_memory)
        self._fuel0 = limits.fuel or FUEL_UNLIMITED
        if settings.consume_fuel:
            self.store.set_fuel(self._fuel0)
        if settings.epoch_interruption:
            _Ticker.ensure(engine)
            self.store.set_epoch_deadline(1 << 62)
        self.wasi = wasi if wasi is not None else Wasi.create()
        linker = wasmtime.Linker(engine)
        self.binding = Binding(linker, self.wasi, tuple(host_functions))
        self.stats = Stats()
        try:
            self.instance = linker.instantiate(self.store, module.module)
        except wasmtime.Trap as e:
            raise self._trapped(e, "instantiation") from None
        except wasmtime.WasmtimeError as e:
            raise ModuleError(f"{module.path}: cannot instantiate: {str(e).splitlines()[0]}") from None
        self.exports = self.instance.exports(self.store)
        self._functions: dict[str, Function] = {}
        self.memory: wasmtime.Memory | None = None
        try:
            mem = self.exports["memory"]
        except KeyError:
            mem = None
        if isinstance(mem, wasmtime.Memory):
            self.memory = mem
            ctx, ref = self.store._context(), ctypes.byref(mem._memory)
            data_size = wasmtime._ffi.wasmtime_memory_data_size
            base = ctypes.cast(mem.data_ptr(self.store), ctypes.c_void_p).value or 0
            self.wasi.attach_memory(GuestMemory(base, lambda: data_size(ctx, ref)))

    # -- calls --------------------------------------------------------------------------

    def _export(self, name: str) -> wasmtime.Func:
        try:
            f = self.exports[name]
        except KeyError:
            raise FogError(f"{self.module.path}: no exported function {name!r}") from None
        if not isinstance(f, wasmtime.Func):
            raise FogError(f"{self.module.path}: export {name!r} is not a function")
        return f

    def _enter(self) -> float:
        if self.limits.timeout:
            self.store.set_epoch_deadline(max(1, round(self.limits.timeout / EPOCH_TICK)))
        return time.perf_counter()

    def _leave(self, t0: float) -> None:
        self.stats.wall_time += time.perf_counter() - t0
        if self.module.settings.epoch_interruption:
            self.store.set_epoch_deadline(1 << 62)
        self._account()

    def _account(self) -> None:
        if self.module.settings.consume_fuel:
            self.stats.fuel = self._fuel0 - self.store.get_fuel()
        if self.memory is not None:
            self.stats.peak_memory = max(self.stats.peak_memory, self.memory.data_len(self.store))
        self.stats.wasi_calls = self.binding.call_counts()

    def run(self) -> RunResult:
        """Run ``_start`` to completion: the exit code, or :class:`Trapped` on a trap."""
        start = self._export("_start")
        t0 = self._enter()
        code = 0
        try:
            start(self.store)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as e:
            self._leave(t0)
            if self.binding.error is not None:
                raise self.binding.error from e
            if self.wasi.state.exit_code is None:
                raise self._trapped(e, "_start") from None
            code = self.wasi.state.exit_code
        else:
            self._leave(t0)
        if code and self._memory_exhausted():
            raise LimitExceeded("memory", self._memory_message(f"exit code {code}"), None,
                                self.limits.max_memory)
        return RunResult(code, self.stats)

    def function(self, name: str) -> Function:
        """The exported function ``name``, ready for fast repeated calls."""
        f = self._functions.get(name)
        if f is None:
            f = self._functions[name] = Function(self, name, self._export(name))
        return f

    def call(self, name: str, *args: Any) -> Any:
        """Call an exported function (a reactor between calls keeps all its state)."""
        return self.function(name)(*args)

    def _failure(self, e: Exception, where: str) -> Exception:
        """What a failed call raises: our own bug, an exit, a limit or a trap."""
        if self.binding.error is not None:
            return self.binding.error
        if self.wasi.state.exit_code is not None:
            return Trapped(f"{where}: the module called proc_exit({self.wasi.state.exit_code})")
        return self._trapped(e, where)

    def initialize(self) -> None:
        """Run a reactor's ``_initialize`` if it has one (the WASI reactor convention)."""
        if "_initialize" in list(self.exports):
            self.call("_initialize")

    def close(self) -> None:
        self.wasi.close()

    def __enter__(self) -> Instance:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- traps --------------------------------------------------------------------------

    def _memory_exhausted(self) -> bool:
        # The engine refuses memory.grow past the limit without telling us; a guest that
        # failed with its memory close under the limit (malloc grows in steps of up to a
        # few MiB) ran out of it.
        lim = self.limits.max_memory
        return bool(lim) and self.stats.peak_memory >= lim - min(4 << 20, lim // 4)

    def _memory_message(self, how: str) -> str:
        return (f"memory limit exceeded: the app needed more than {format_size(self.limits.max_memory)}"
                f" of linear memory ({how})")

    def _trapped(self, e: Exception, where: str) -> Trapped:
        self._account()
        frames: list[str] = []
        code = None
        if isinstance(e, wasmtime.Trap):
            code = e.trap_code
            for fr in e.frames:
                name = fr.func_name or f"<func {fr.func_index}>"
                frames.append(f"{fr.module_name or 'module'}!{name} @ 0x{fr.module_offset:x}")
        message = str(e).strip().splitlines()[0] if str(e).strip() else "trap"
        if code == wasmtime.TrapCode.OUT_OF_FUEL:
            return LimitExceeded("fuel", f"fuel limit exceeded: the app ran more than "
                                 f"{self.limits.fuel} instructions", frames, self.limits.fuel)
        if code == wasmtime.TrapCode.INTERRUPT:
            return LimitExceeded("timeout", f"timeout exceeded: the app ran longer than "
                                 f"{self.limits.timeout:g} s", frames, self.limits.timeout)
        if self._memory_exhausted():
            return LimitExceeded("memory", self._memory_message(f"trap: {message}"), frames,
                                 self.limits.max_memory)
        message = message.removeprefix("error while executing at wasm backtrace:").strip()
        return Trapped(f"trap in {where}: {_trap_reason(e, message)}", frames)


def _trap_reason(e: Exception, fallback: str) -> str:
    text = str(e)
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("Caused by:") or not line:
            continue
        if line[0].isdigit() and ":" in line:  # backtrace frame line
            continue
        if line.startswith("wasm trap:"):
            return line.removeprefix("wasm trap:").strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else fallback


def run(
    module: str | LoadedModule,
    args: Sequence[str] = (),
    *,
    env: dict[str, str] | None = None,
    preopens: Sequence[Preopen] = (),
    limits: Limits = Limits(),
    stdio: Sequence[int] = (0, 1, 2),
    stats: bool = False,
) -> RunResult:
    """Run a WASI command module to completion (the Python form of ``fog run``)."""
    if not isinstance(module, LoadedModule):
        settings = EngineSettings(consume_fuel=bool(limits.fuel) or stats,
                                  epoch_interruption=bool(limits.timeout))
        module = load_module(module, settings)
    name = module.path.rsplit("/", 1)[-1]
    try:
        wasi = Wasi.create([name, *args], env or {}, preopens, stdio)
    except OSError as e:
        raise FogError(f"cannot preopen {e.filename}: {e.strerror}") from None
    with Instance(module, wasi, limits) as inst:
        return inst.run()
