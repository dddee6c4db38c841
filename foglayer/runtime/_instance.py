"""The instance life cycle: instantiate with our WASI, run ``_start``, call exports."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import wasmtime

from foglayer.errors import FogError
from foglayer.runtime import _ffi
from foglayer.runtime._bind import Binding, HostFunction
from foglayer.runtime._control import Control, _Ticker, sigint_stops
from foglayer.runtime._engine import (
    LoadedModule,
    engine_for,
    load_module,
    settings_for,
)
from foglayer.runtime._errors import LimitExceeded, ModuleError, Stopped, Trapped
from foglayer.runtime._limits import Limits, Stats, format_size
from foglayer.wasi import MODULE, SIGNATURES, GuestMemory, Interrupted, Preopen, Wasi

FUEL_UNLIMITED = (1 << 63) - 1
PAGE = 65536  # bytes in a Wasm page


class RunResult:
    """How a command ended: its exit code and what it consumed."""

    __slots__ = ("exit_code", "stats")

    def __init__(self, exit_code: int, stats: Stats) -> None:
        self.exit_code = exit_code
        self.stats = stats

    def __repr__(self) -> str:
        return f"RunResult(exit_code={self.exit_code}, stats={self.stats})"


_RAW_FIELD = {"i32", "i64", "f32", "f64"}


class Function:
    """An exported function called with raw values: ~20 µs a call, against ~200 µs for
    wasmtime-py's ``Func.__call__``, which inspects the function's type on every call.

    ``params``/``results`` are type names (``"i32"``, ``"i64"``, ``"f32"``, ``"f64"``).
    Returns ``None``, one value, or a tuple for several results. It may be called from a
    host function while the instance runs (a nested call keeps the outer call's limits).
    """

    __slots__ = ("instance", "name", "params", "results", "_call", "_slots")

    def __init__(self, instance: Instance, name: str, func: wasmtime.Func) -> None:
        ty = func.type(instance._store)
        self.instance, self.name = instance, name
        self.params = [str(t) for t in ty.params]
        self.results = [str(t) for t in ty.results]
        for t in (*self.params, *self.results):
            if t not in _RAW_FIELD:
                raise FogError(f"{name}: cannot call a function taking or returning {t}")
        self._call = _ffi.RawCall(instance._store, func, max(len(self.params), len(self.results)))
        self._slots = self._call.slots

    def __call__(self, *args: int | float) -> Any:
        if len(args) != len(self.params):
            raise FogError(f"{self.name}: expected {len(self.params)} arguments, got {len(args)}")
        buf = self._slots
        for i, (kind, a) in enumerate(zip(self.params, args, strict=True)):
            setattr(buf[i], kind, a)
        inst = self.instance
        t0 = inst._enter()
        try:
            error = self._call()
            if error is not None:  # before leaving: a deadline is still armed
                error = inst._failure(error, self.name)
        finally:
            inst._leave(t0)
        if error is not None:
            raise error from None
        out = [getattr(buf[i], kind) for i, kind in enumerate(self.results)]
        return None if not out else out[0] if len(out) == 1 else tuple(out)


class Global:
    """An exported global: ``type`` (``"i32"``...), ``mutable``, and ``value`` (read/write)."""

    __slots__ = ("name", "type", "mutable", "_global", "_store")

    def __init__(self, name: str, glob: wasmtime.Global, store: wasmtime.Store) -> None:
        ty = glob.type(store)
        self.name, self.type, self.mutable = name, str(ty.content), bool(ty.mutable)
        self._global, self._store = glob, store

    @property
    def value(self) -> int | float:
        return self._global.value(self._store)

    @value.setter
    def value(self, value: int | float) -> None:
        self._global.set_value(self._store, value)


def _refuse_call(index: int) -> bool:
    raise Interrupted


def _check_imports(module: LoadedModule, extra: tuple[HostFunction, ...]) -> None:
    provided = {(f.module, f.name) for f in extra}
    for mod, name in module.imports():
        if (mod != MODULE or name not in SIGNATURES) and (mod, name) not in provided:
            raise ModuleError(
                f"{module.path}: imports {mod}.{name}, which foglayer does not provide "
                f"(only {MODULE} is available)")


class Instance:
    """A module instantiated in its own store, with its own WASI, limits and :class:`Control`.

    What a snapshot needs, without engine objects: :meth:`globals`, :meth:`memory_pages`,
    :meth:`grow_memory`, :meth:`memory_view`; exported functions through :meth:`function`.
    """

    def __init__(self, module: LoadedModule, wasi: Wasi | None = None,
                 limits: Limits = Limits(), host_functions: tuple[HostFunction, ...] = (),
                 control: Control | None = None) -> None:
        """``host_functions`` are extra imports beside WASI (e.g. a checkpoint safepoint);
        ``control`` (default: one for ``limits.timeout``) stops or throttles the instance."""
        _check_imports(module, tuple(host_functions))
        self.module = module
        self.limits = limits
        settings = module.settings
        if limits.fuel and not settings.consume_fuel:
            raise FogError("a fuel limit needs an engine with consume_fuel=True")
        if limits.timeout and not settings.epoch_interruption:
            raise FogError("a timeout needs an engine with epoch_interruption=True")
        self.control = control if control is not None else Control(limits.timeout)
        engine = engine_for(settings)
        self._store = store = wasmtime.Store(engine)
        if limits.max_memory:
            store.set_limits(memory_size=limits.max_memory)
        self._fuel0 = limits.fuel or FUEL_UNLIMITED
        if settings.consume_fuel:
            store.set_fuel(self._fuel0)
        self._epoch_keep: object = None
        if settings.epoch_interruption:
            _Ticker.ensure(engine)
            self._epoch_keep = _ffi.on_epoch(store, self.control.tick)
            store.set_epoch_deadline(1)
        self.wasi = wasi if wasi is not None else Wasi.create()
        if limits.max_fds is not None:
            self.wasi.max_fds = limits.max_fds
        self.wasi.interrupt = self.control
        linker = wasmtime.Linker(engine)
        self.binding = Binding(linker, self.wasi, tuple(host_functions), module.imports(), engine)
        self.control.on_stop(self._stop_at_host_calls)
        self.stats = Stats()
        self._depth = 0
        try:
            self._instance = linker.instantiate(store, module.module)
        except wasmtime.Trap as e:
            raise self._trapped(e, "instantiation") from None
        except wasmtime.WasmtimeError as e:
            raise ModuleError(f"{module.path}: cannot instantiate: {str(e).splitlines()[0]}") from None
        self._exports = self._instance.exports(store)
        self._functions: dict[str, Function] = {}
        self._memory: wasmtime.Memory | None = None
        try:
            mem = self._exports["memory"]
        except KeyError:
            mem = None
        if isinstance(mem, wasmtime.Memory):
            self._memory = mem
            self.wasi.attach_memory(GuestMemory(_ffi.memory_base(store, mem),
                                                _ffi.memory_size_fn(store, mem)))

    def _stop_at_host_calls(self) -> None:
        # Without epochs a stopped guest still leaves at its next host call.
        self.binding.gate = _refuse_call

    # -- what a snapshot reads and writes -------------------------------------------------

    def globals(self) -> dict[str, Global]:
        """The exported globals by export name, in export order."""
        return {name: Global(name, g, self._store) for name, g in self._exports.items()
                if isinstance(g, wasmtime.Global)}

    @property
    def has_memory(self) -> bool:
        """Whether the module exports its linear memory (as ``memory``)."""
        return self._memory is not None

    def memory_pages(self) -> int:
        """The size of linear memory in 64 KiB pages (0 without memory)."""
        return self._memory.size(self._store) if self._memory is not None else 0

    def grow_memory(self, pages: int) -> None:
        """Grow linear memory by ``pages``; :class:`LimitExceeded` past ``max_memory``."""
        if self._memory is None:
            raise ModuleError(f"{self.module.path}: exports no memory")
        try:
            self._memory.grow(self._store, pages)
        except wasmtime.WasmtimeError:
            have = self.memory_pages()
            raise LimitExceeded("memory", f"cannot grow linear memory from {have} to "
                                f"{have + pages} pages ({(have + pages) * PAGE >> 20} MiB)") from None
        self.wasi.mem.refresh()

    def memory_view(self) -> memoryview:
        """A writable view of all of linear memory as it is now (empty without memory)."""
        mem = self.wasi.mem
        mem.refresh()
        return mem.view

    def memory_base(self) -> int:
        """The host address of linear memory; it never moves (``memory_may_move=False``)."""
        return self.wasi.mem.base

    # -- calls --------------------------------------------------------------------------

    def _export(self, name: str) -> wasmtime.Func:
        try:
            f = self._exports[name]
        except KeyError:
            raise FogError(f"{self.module.path}: no exported function {name!r}") from None
        if not isinstance(f, wasmtime.Func):
            raise FogError(f"{self.module.path}: export {name!r} is not a function")
        return f

    def _enter(self) -> float:
        self._depth += 1
        if self._depth == 1:
            self.binding.sync()
            self.control.arm()
        return time.perf_counter()

    def _leave(self, t0: float) -> None:
        self._depth -= 1
        if self._depth:
            return
        self.stats.wall_time += time.perf_counter() - t0
        self.control.disarm()
        self._account()

    def _account(self) -> None:
        if self.module.settings.consume_fuel:
            self.stats.fuel = self._fuel0 - self._store.get_fuel()
        if self._memory is not None:
            self.stats.peak_memory = max(self.stats.peak_memory,
                                         self._memory.data_len(self._store))
        self.stats.wasi_calls = self.binding.call_counts()
        self.stats.wasi_path = self.binding.path

    def run(self) -> RunResult:
        """Run ``_start`` to completion: the exit code, or :class:`Trapped` on a trap."""
        start = self.function("_start")
        code = 0
        try:
            start()
        except Trapped:
            if self.wasi.state.exit_code is None or self.control.reason is not None:
                raise
            code = self.wasi.state.exit_code
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
        """What a failed call raises: our own bug, a stop, an exit, a limit or a trap."""
        if self.binding.error is not None:
            return self.binding.error
        if self.control.reason is not None or self.control.check() is not None:
            return self._stopped(e, where)
        if self.wasi.state.exit_code is not None:
            return Trapped(f"{where}: the module called proc_exit({self.wasi.state.exit_code})")
        return self._trapped(e, where)

    def initialize(self) -> None:
        """Run a reactor's ``_initialize`` if it has one (the WASI reactor convention)."""
        if "_initialize" in self.module.exports():
            self.call("_initialize")

    def close(self) -> None:
        try:
            self.wasi.close()
        finally:
            self.control.close()

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

    def _frames(self, e: Exception) -> list[str]:
        frames: list[str] = []
        if isinstance(e, wasmtime.Trap):
            for fr in e.frames:
                name = fr.func_name or f"<func {fr.func_index}>"
                frames.append(f"{fr.module_name or 'module'}!{name} @ 0x{fr.module_offset:x}")
        return frames

    def _stopped(self, e: Exception, where: str) -> Trapped:
        """The control ended the call: a timeout, or a stop (``interrupted`` by Ctrl-C)."""
        self._account()
        reason = self.control.reason
        if reason == "timeout":
            return LimitExceeded("timeout", f"timeout exceeded: the app ran longer than "
                                 f"{self.control.timeout:g} s", self._frames(e),
                                 self.control.timeout)
        return Stopped(reason or "stopped", f"{where}: {reason}", self._frames(e))

    def _trapped(self, e: Exception, where: str) -> Trapped:
        self._account()
        frames = self._frames(e)
        code = e.trap_code if isinstance(e, wasmtime.Trap) else None
        message = str(e).strip().splitlines()[0] if str(e).strip() else "trap"
        if code == wasmtime.TrapCode.OUT_OF_FUEL:
            return LimitExceeded("fuel", f"fuel limit exceeded: the app ran more than "
                                 f"{self.limits.fuel} instructions", frames, self.limits.fuel)
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
    on_stuck: Callable[[], None] | None = None,
) -> RunResult:
    """Run a WASI command module to completion (the Python form of ``fog run``).

    Ctrl-C (in the main thread) stops the guest and raises ``KeyboardInterrupt``; a guest
    computing without epochs (no ``timeout``) cannot be stopped from outside and is left to
    ``on_stuck`` half a second later (see :func:`~foglayer.runtime._control.sigint_stops`).
    """
    if not isinstance(module, LoadedModule):
        module = load_module(module, settings_for(limits, stats=stats))
    name = module.path.rsplit("/", 1)[-1]
    try:
        wasi = Wasi.create([name, *args], env or {}, preopens, stdio)
    except OSError as e:
        raise FogError(f"cannot preopen {e.filename}: {e.strerror}") from None
    control = Control(limits.timeout)
    with Instance(module, wasi, limits, control=control) as inst, \
            sigint_stops(control, on_stuck):
        try:
            return inst.run()
        except Stopped as e:
            if e.reason == "interrupted":
                raise KeyboardInterrupt from None
            raise
