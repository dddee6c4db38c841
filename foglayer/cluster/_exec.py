"""How a node runs one instance: a command in its own thread, or a service behind a lock.

Every instance's store runs with epoch interruption and an epoch-deadline callback
(:class:`Control`) that fires every tick (10 ms) while the guest runs. The callback

- stops the guest when the node is told to stop it;
- enforces the app's wall-clock timeout (per call for a service, per run for a command);
- throttles a node with a *fuel rate* (instructions per second). wasmtime's fuel counter cannot
  be read while a call is running, so the rate becomes a duty cycle computed from the node's
  calibrated speed: at rate/speed = 0.25 the guest runs 10 ms, then sleeps 30 ms.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import wasmtime
from wasmtime import _ffi as ffi

from foglayer.cluster._abi import Service
from foglayer.cluster._spec import AppSpec
from foglayer.errors import FogError
from foglayer.runtime import (
    EngineSettings,
    Instance,
    LimitExceeded,
    Limits,
    LoadedModule,
    Trapped,
    load_module,
)
from foglayer.wasi import Preopen, Wasi

_CB = ctypes.CFUNCTYPE(ctypes.c_size_t, ctypes.POINTER(ffi.wasmtime_context_t), ctypes.c_void_p,
                       ctypes.POINTER(ctypes.c_uint64), ctypes.POINTER(ctypes.c_uint8))
_FIN = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class Control:
    """The epoch-deadline callback of one store: stop, timeout, duty-cycle throttle."""

    def __init__(self, store: wasmtime.Store, duty: float = 1.0, timeout: float | None = None) -> None:
        self.store = store
        self.duty = min(1.0, max(0.01, duty))
        self.timeout = timeout
        self.stopped = False
        self.reason: str | None = None  # "stopped" | "timeout" when the callback ended a call
        self._t0 = self._last = 0.0
        self._cb = _CB(self._tick)
        self._fin = _FIN()
        ffi.wasmtime_store_epoch_deadline_callback(store.ptr(), self._cb, None, self._fin)

    def arm(self) -> None:
        """Before every call: reset the clocks and fire on the next tick."""
        self.reason = None
        self._t0 = self._last = time.perf_counter()
        self.store.set_epoch_deadline(1)

    def _fail(self, reason: str, message: str) -> int:
        self.reason = reason
        err = ffi.wasmtime_error_new(message.encode())
        return ctypes.cast(err, ctypes.c_void_p).value or 0

    def _tick(self, ctx, data, delta, kind) -> int:  # called by wasmtime from the guest
        try:
            if self.stopped:
                return self._fail("stopped", "stopped by the node")
            now = time.perf_counter()
            if self.timeout is not None and now - self._t0 > self.timeout:
                return self._fail("timeout", "timeout")
            if self.duty < 1.0:
                ran = now - self._last
                pause = ran * (1.0 / self.duty - 1.0)
                end = now + min(pause, 1.0)
                while not self.stopped and time.perf_counter() < end:
                    time.sleep(min(0.02, max(0.0, end - time.perf_counter())))
            self._last = time.perf_counter()
            delta[0] = 1
            kind[0] = 0  # WASMTIME_UPDATE_DEADLINE_CONTINUE
            return 0
        except BaseException:  # never unwind through wasm frames
            return self._fail("stopped", "internal error in the epoch callback")

    def translate(self, e: Trapped, where: str) -> Exception:
        if self.reason == "timeout":
            return LimitExceeded("timeout", f"timeout exceeded: {where} ran longer than "
                                 f"{self.timeout:g} s (raise limits.timeout)", e.backtrace)
        if self.reason == "stopped":
            return Stopped("stopped by the node")
        return e


class Stopped(FogError):
    """The instance was stopped while it ran."""


@dataclass
class Outcome:
    state: str  # "exited" | "failed" | "stopped"
    exit_code: int | None = None
    error: str | None = None


def settings_for(spec: AppSpec, simd: bool = True) -> EngineSettings:
    return EngineSettings(consume_fuel=bool(spec.limits.fuel), epoch_interruption=True,
                          simd=simd)


def load(wasm_path: str, spec: AppSpec, simd: bool = True) -> LoadedModule:
    return load_module(wasm_path, settings_for(spec, simd))


class LocalInstance:
    """One instance on this node, with pipes for its stdout and stderr.

    ``on_output(stream, data)`` gets the guest's output, from reader threads.
    """

    def __init__(self, module: LoadedModule, spec: AppSpec, dirs: list[Preopen], *,
                 duty: float, on_output: Callable[[str, bytes], None]) -> None:
        self.spec = spec
        self.kind = spec.kind
        self._readers: list[threading.Thread] = []
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        null = os.open(os.devnull, os.O_RDONLY)
        self._fds = [out_w, err_w, null]
        for name, fd in (("stdout", out_r), ("stderr", err_r)):
            t = threading.Thread(target=_pump, args=(fd, name, on_output), daemon=True,
                                 name=f"fog-{name}")
            t.start()
            self._readers.append(t)
        limits = Limits(max_memory=spec.memory, fuel=spec.limits.fuel)
        try:
            wasi = Wasi.create([spec.module, *spec.args], {**spec.env, **spec.secrets}, dirs,
                               (null, out_w, err_w))
            self.inst = Instance(module, wasi, limits)
        except BaseException:
            self._close_fds()
            raise
        self.control = Control(self.inst.store, duty, spec.limits.timeout)
        self.service: Service | None = None
        self._pool: ThreadPoolExecutor | None = None
        self.calls = 0

    # -- services ---------------------------------------------------------------------------

    def start_service(self) -> None:
        """Run ``_initialize`` and resolve the ABI exports."""
        self.control.arm()
        try:
            self.inst.initialize()
        except Trapped as e:
            raise self.control.translate(e, "_initialize") from None
        self.service = Service(self.inst)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="fog-svc")

    @property
    def pool(self) -> ThreadPoolExecutor:
        assert self._pool is not None
        return self._pool

    def invoke(self, function: str, payload: bytes) -> bytes:
        """Call a service function (on the instance's own thread)."""
        assert self.service is not None
        self.control.arm()
        self.calls += 1
        try:
            return self.service.call(function, payload)
        except Trapped as e:
            raise self.control.translate(e, function) from None
        finally:
            self.inst.store.set_epoch_deadline(1 << 62)

    # -- commands ---------------------------------------------------------------------------

    def run_command(self) -> Outcome:
        self.control.arm()
        try:
            result = self.inst.run()
        except Trapped as e:
            err = self.control.translate(e, "the app")
            if isinstance(err, Stopped):
                return Outcome("stopped", error=str(err))
            return Outcome("failed", error=str(err))
        except FogError as e:
            return Outcome("failed", error=str(e))
        finally:
            self.close()
        code = result.exit_code
        return Outcome("exited", exit_code=code, error=None if code == 0 else f"exit code {code}")

    # -- life cycle -------------------------------------------------------------------------

    def stop(self) -> None:
        self.control.stopped = True

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        try:
            self.inst.close()
        finally:
            self._close_fds()

    def _close_fds(self) -> None:
        fds, self._fds = self._fds, []
        for fd in fds:  # closing the write ends ends the reader threads
            try:
                os.close(fd)
            except OSError:
                pass


def _pump(fd: int, stream: str, sink: Callable[[str, bytes], None]) -> None:
    with os.fdopen(fd, "rb", buffering=0) as f:
        while True:
            data = f.read(65536)
            if not data:
                return
            try:
                sink(stream, data)
            except Exception:  # noqa: BLE001 - a lost log line never kills the node
                pass


_CAL_WAT = """(module (func (export "spin") (param i32) (result i32) (local i32)
  (loop (local.set 1 (i32.add (local.get 1) (i32.const 1)))
        (br_if 0 (i32.lt_u (local.get 1) (local.get 0)))) (local.get 1)))"""


def calibrate(seconds: float = 0.05) -> float:
    """This machine's speed in Wasm instructions per second (one core, fuel-metered)."""
    wasm = wasmtime.wat2wasm(_CAL_WAT)
    engine = wasmtime.Engine(_fuel_config())
    store = wasmtime.Store(engine)
    inst = wasmtime.Instance(store, wasmtime.Module(engine, wasm), [])
    spin = inst.exports(store)["spin"]
    assert isinstance(spin, wasmtime.Func)
    n, best = 100_000, 0.0
    deadline = time.perf_counter() + seconds
    while True:
        store.set_fuel(1 << 62)
        t = time.perf_counter()
        spin(store, n)
        dt = time.perf_counter() - t
        used = (1 << 62) - store.get_fuel()
        if dt > 0:
            best = max(best, used / dt)
        if time.perf_counter() > deadline:
            return best
        if dt < 0.01:
            n *= 2


def _fuel_config() -> wasmtime.Config:
    cfg = wasmtime.Config()
    cfg.consume_fuel = True
    return cfg
