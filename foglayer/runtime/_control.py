"""When a running instance must stop: one deadline / stop / duty-cycle policy.

Every instance runs with epoch interruption. One thread per engine advances the epoch every
``TICK`` (10 ms), and each store calls :meth:`Control.tick` at every tick while its guest
runs. The tick

- ends the call when the instance was stopped (``fog stop``, Ctrl-C, a node shutting down);
- ends it when its wall-clock deadline has passed (``--timeout``: per run for a command,
  per call for a service);
- throttles the guest to a duty cycle (a node's *fuel rate*: wasmtime's fuel counter cannot
  be read while a call runs, so the rate becomes a duty cycle from the node's calibrated
  speed: at 0.25 the guest runs 10 ms, then sleeps 30 ms).

Host calls that block (sleeping in ``poll_oneoff``, reading a pipe) cannot see ticks: they
wait on :meth:`Control.fileno` (readable once stopped) and :meth:`Control.remaining`, and
leave with :class:`foglayer.wasi.Interrupted`. That is the interface the WASI layer gets,
through ``Wasi.interrupt``.
"""

from __future__ import annotations

import _thread
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

TICK = 0.01  # seconds between epoch increments
REASONS = ("stopped", "timeout", "interrupted")


class _Ticker:
    """One daemon thread per engine advances its epoch (``_thread``: the ``threading``
    module is not needed on ``fog run``'s start path)."""

    _lock = _thread.allocate_lock()
    _started: set[int] = set()

    @classmethod
    def ensure(cls, engine: object) -> None:
        with cls._lock:
            if id(engine) in cls._started:
                return
            cls._started.add(id(engine))

        def tick() -> None:
            while True:
                time.sleep(TICK)
                engine.increment_epoch()  # type: ignore[attr-defined]

        _thread.start_new_thread(tick, ())


class Control:
    """The stop / deadline / duty-cycle policy of one instance.

    ``timeout`` (seconds) bounds each outermost call (a command's ``_start``, a service's
    call); ``duty`` in (0, 1] is the share of wall time the guest may run. :meth:`stop`
    may be called from any thread or a signal handler; the running call ends at the next
    tick (or at once, in a blocking host call) and :attr:`reason` says why.
    """

    def __init__(self, timeout: float | None = None, duty: float = 1.0) -> None:
        self.timeout = timeout
        self.duty = min(1.0, max(0.01, duty))
        self.reason: str | None = None  # why the current call was ended, if it was
        self._stopped: str | None = None
        self._end: float | None = None  # time.monotonic() by which the current call must end
        self._last = 0.0
        self._pipe: tuple[int, int] | None = None
        self._lock = _thread.allocate_lock()
        self._hooks: list[Callable[[], None]] = []

    # -- the caller's side ----------------------------------------------------------------

    def arm(self) -> None:
        """Before an outermost call: start its deadline and duty-cycle clocks."""
        self.reason = None
        now = time.monotonic()
        self._last = now
        self._end = None if self.timeout is None else now + self.timeout

    def disarm(self) -> None:
        """After an outermost call: no deadline until the next one."""
        self._end = None

    def stop(self, reason: str = "stopped") -> None:
        """Make the running call (and every later one) end: ``stopped`` or ``interrupted``.

        Safe from any thread and from a signal handler."""
        if self._stopped is not None:
            return
        self._stopped = reason
        with self._lock:
            if self._pipe is not None:
                try:
                    os.write(self._pipe[1], b"x")
                except OSError:
                    pass
        for hook in self._hooks:
            hook()

    def on_stop(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` when the instance is stopped (at once if it already is)."""
        self._hooks.append(hook)
        if self._stopped is not None:
            hook()

    @property
    def stopped(self) -> bool:
        return self._stopped is not None

    # -- the interface blocking host calls wait on (Wasi.interrupt) ------------------------

    def fileno(self) -> int:
        """A descriptor that becomes readable once the instance is stopped (for select)."""
        with self._lock:
            if self._pipe is None:
                self._pipe = os.pipe()
                os.set_blocking(self._pipe[1], False)
                if self._stopped is not None:
                    os.write(self._pipe[1], b"x")
            return self._pipe[0]

    def remaining(self) -> float | None:
        """Seconds left before the current call's deadline (None: no deadline; 0: passed)."""
        if self._end is None:
            return None
        return max(0.0, self._end - time.monotonic())

    def check(self) -> str | None:
        """Whether the current call must end now: the reason, recorded in :attr:`reason`."""
        if self._stopped is not None:
            self.reason = self._stopped
        elif self._end is not None and time.monotonic() >= self._end:
            self.reason = "timeout"
        else:
            return None
        return self.reason

    # -- the engine's side ----------------------------------------------------------------

    def tick(self) -> str | None:
        """At every epoch tick while Wasm runs: None to go on, or why the call ends."""
        try:
            reason = self.check()
            if reason is not None:
                return reason
            if self.duty < 1.0:
                now = time.monotonic()
                pause = (now - self._last) * (1.0 / self.duty - 1.0)
                end = now + min(pause, 1.0)
                if self._end is not None:
                    end = min(end, self._end)
                while self._stopped is None and time.monotonic() < end:
                    time.sleep(min(0.02, max(0.0, end - time.monotonic())))
                self._last = time.monotonic()
                return self.check()
            return None
        except KeyboardInterrupt:  # Ctrl-C with Python's own handler: stop like ours
            self.stop("interrupted")
            return self.check()

    def close(self) -> None:
        with self._lock:
            pipe, self._pipe = self._pipe, None
        for fd in pipe or ():
            os.close(fd)


@contextmanager
def sigint_stops(control: Control, on_stuck: Callable[[], None] | None = None,
                 grace: float = 0.5) -> Iterator[None]:
    """While the block runs (in the main thread), Ctrl-C stops ``control``'s instance with
    reason ``interrupted`` instead of raising ``KeyboardInterrupt`` inside the guest.

    Python runs signal handlers only between bytecodes, and a guest computing in Wasm
    runs none: so the signal also wakes a watcher thread (``signal.set_wakeup_fd``) that
    stops the instance at once. A guest that still has not stopped ``grace`` seconds later
    (computing without epoch interruption, which plain runs leave off for speed) is left
    to ``on_stuck``: the ``fog`` command exits the process there.
    """
    import select
    import signal

    try:
        old_handler = signal.signal(signal.SIGINT, lambda *_: control.stop("interrupted"))
    except ValueError:  # not the main thread: signals are not ours to handle
        yield
        return
    r, w = os.pipe()
    os.set_blocking(w, False)
    done_r, done_w = os.pipe()
    old_fd = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    finished = _thread.allocate_lock()
    finished.acquire()

    def watch() -> None:
        try:
            while True:
                ready, _, _ = select.select([r, done_r], [], [])
                if done_r in ready:
                    return
                if signal.SIGINT not in os.read(r, 64):
                    continue
                control.stop("interrupted")
                ready, _, _ = select.select([done_r], [], [], grace)
                if not ready and on_stuck is not None:
                    on_stuck()
                return
        finally:
            finished.release()

    _thread.start_new_thread(watch, ())
    try:
        yield
    finally:
        os.write(done_w, b"x")
        finished.acquire()  # the watcher has left: its descriptors can go
        signal.set_wakeup_fd(old_fd)
        signal.signal(signal.SIGINT, old_handler)
        for fd in (r, w, done_r, done_w):
            os.close(fd)


_CAL_WAT = """(module (func (export "spin") (param i32) (result i32) (local i32)
  (loop (local.set 1 (i32.add (local.get 1) (i32.const 1)))
        (br_if 0 (i32.lt_u (local.get 1) (local.get 0)))) (local.get 1)))"""


def calibrate(seconds: float = 0.05) -> float:
    """This machine's speed in Wasm instructions per second (one core, fuel-metered): what
    turns a node's fuel rate into a :class:`Control` duty cycle."""
    import wasmtime

    cfg = wasmtime.Config()
    cfg.consume_fuel = True
    engine = wasmtime.Engine(cfg)
    store = wasmtime.Store(engine)
    inst = wasmtime.Instance(store, wasmtime.Module(engine, wasmtime.wat2wasm(_CAL_WAT)), [])
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
