"""How a node runs one instance: a command in its own thread, or a service behind a lock.

Every instance runs with epoch interruption and the runtime's :class:`~foglayer.runtime.Control`,
which stops it when the node is told to, enforces the app's wall-clock timeout (per call for
a service, per run for a command) and throttles it to the node's *fuel rate* as a duty cycle
of the node's calibrated speed.
"""

from __future__ import annotations

import os
import selectors
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from foglayer.cluster._spec import SECRETS_DIR, AppSpec
from foglayer.errors import FogError
from foglayer.runtime import (
    Control,
    EngineSettings,
    Instance,
    LimitExceeded,
    Limits,
    LoadedModule,
    Service,
    Stopped,
    Trapped,
    load_module,
    settings_for,
)
from foglayer.runtime import calibrate as calibrate  # the agent's speed, re-exported
from foglayer.wasi import Preopen, Wasi


def _translate(e: Trapped, where: str, timeout: float | None) -> Exception:
    """The runtime's stop and timeout, in the cluster's words."""
    if isinstance(e, LimitExceeded) and e.limit == "timeout":
        return LimitExceeded("timeout", f"timeout exceeded: {where} ran longer than "
                             f"{timeout:g} s (raise limits.timeout)", e.backtrace)
    if isinstance(e, Stopped):
        return Stopped(e.reason, "stopped by the node", e.backtrace)
    return e


@dataclass
class Outcome:
    state: str  # "exited" | "failed" | "stopped" | "halted" (a move stopped it)
    exit_code: int | None = None
    error: str | None = None


MOVE_CHUNK_PAGES = 16  # pages per chunk of a live move: 1 MiB raw, well under a message


def _limits(spec: AppSpec) -> Limits:
    # max_fds: the guest's own cap (EMFILE past it), also counted against the node's budget.
    return Limits(max_memory=spec.memory, fuel=spec.limits.fuel, timeout=spec.limits.timeout,
                  max_fds=spec.limits.max_fds)


def engine_settings(spec: AppSpec, simd: bool = True) -> EngineSettings:
    # Fuel is always metered on a node: usage (and billing) counts Wasm instructions.
    return settings_for(_limits(spec), stats=True, stoppable=True, simd=simd)


MODULES_KEPT = 64  # compiled modules a node keeps for new instances (instances hold theirs)
_modules: OrderedDict[tuple[str, str], LoadedModule] = OrderedDict()
_modules_lock = threading.Lock()


def load(wasm_path: str, spec: AppSpec, simd: bool = True) -> LoadedModule:
    """The compiled module, shared by every instance of it on this node (one copy of its code,
    not one per instance: a thousand replicas deserialize it once). The path names a module
    file the node verified by its digest (named by it); the last few modules stay loaded."""
    settings = engine_settings(spec, simd)
    key = (wasm_path, settings.key())
    with _modules_lock:
        module = _modules.get(key)
        if module is None:
            module = _modules[key] = load_module(wasm_path, settings)
            while len(_modules) > MODULES_KEPT:
                _modules.popitem(last=False)
        _modules.move_to_end(key)
        return module


def load_decrypted(wasm: bytes, spec: AppSpec, simd: bool = True) -> LoadedModule:
    """An encrypted app's module, compiled from its decrypted bytes in memory: never through
    the on-disk AOT cache (its machine code would hold the module), never shared by path."""
    return load_module(wasm, engine_settings(spec, simd), use_cache=False,
                       name=f"{spec.name} (encrypted module)")


class LocalInstance:
    """One instance on this node, with pipes for its stdout and stderr.

    ``on_output(stream, data)`` gets the guest's output, from reader threads.
    """

    def __init__(self, module: LoadedModule, spec: AppSpec, dirs: list[Preopen], *,
                 duty: float, on_output: Callable[[str, bytes], None],
                 secrets: dict[str, bytes] | None = None) -> None:
        """``secrets``: released secrets (env vars, or in-memory files in /run/secrets)."""
        self.spec = spec
        self.kind = spec.kind
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        null = os.open(os.devnull, os.O_RDONLY)
        self._fds = [out_w, err_w, null]
        self.stdio = (null, out_w, err_w)
        for name, fd in (("stdout", out_r), ("stderr", err_r)):
            _pumps().add(fd, name, on_output)
        limits = _limits(spec)
        self.control = Control(limits.timeout, duty)
        try:
            # Released secrets: env vars, or read-only files in /run/secrets held in memory
            # by our WASI (never on this node's disk).
            secrets = secrets or {}
            as_env = {r.name for r in spec.secrets if r.env}
            env = {**spec.env, **{n: v.decode(errors="replace") for n, v in secrets.items()
                                  if n in as_env}}
            files = {n: v for n, v in secrets.items() if n not in as_env}
            wasi = Wasi.create([spec.module, *spec.args], env, dirs, self.stdio,
                               memory_dirs={SECRETS_DIR: files} if files else None)
            self.session = None
            if spec.checkpointable:  # a command that can move live: Asyncify, safepoints
                from foglayer.snapshot import Rewritten, Session

                rw = Rewritten(Path(module.path), module.digest, module.digest, 0, 0, True)
                self.session = Session(rw, module, wasi, limits, module_path=spec.module,
                                       control=self.control)
                self.inst = self.session.inst
            else:
                self.inst = Instance(module, wasi, limits, control=self.control)
        except BaseException:
            self._close_fds()
            raise
        self.service: Service | None = None
        self._pool: ThreadPoolExecutor | None = None
        self.calls = 0
        self._out_fds = (out_r, err_r)
        # Held while a move reads linear memory from another thread, and by close: memory
        # is never read once it is gone (a command may end in the middle of a round).
        self._memory_lock = threading.Lock()
        self._closed = False

    # -- services ---------------------------------------------------------------------------

    def start_service(self) -> None:
        """Run ``_initialize`` and resolve the ABI exports."""
        try:
            self.inst.initialize()
        except Trapped as e:
            raise _translate(e, "_initialize", self.control.timeout) from None
        self._serve()

    def _serve(self) -> None:
        self.service = Service(self.inst)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="fog-svc")

    # -- live moves (see .agent._move) -----------------------------------------------------

    def page_stream(self):
        """The source's side of a pre-copy: rounds of the pages that changed."""
        from foglayer.snapshot import PageStream

        return PageStream(self._memory, chunk_pages=MOVE_CHUNK_PAGES)

    def _memory(self) -> memoryview:
        if self._closed:
            raise FogError(f"{self.spec.name} has ended")
        return self.inst.memory_view()

    def open_round(self, stream):
        """A pre-copy round's dirty pages (any thread, while the instance runs)."""
        with self._memory_lock:
            return stream.open_round()

    def build_chunk(self, stream, rnd, seq: int) -> bytes:
        with self._memory_lock:
            return stream.build(rnd, seq)

    def final_state(self, stream) -> bytes:
        """The state once frozen, after the last round's chunks: a command halted, or a
        service between two calls (run it on :attr:`pool`)."""
        from foglayer.snapshot import command_state, service_state

        with self._memory_lock:
            if self.session is not None:
                return command_state(self.session, stream)
            return service_state(self.inst, stream)

    def halt(self) -> None:
        """Stop a checkpointable command at its next safepoint (:meth:`run_command` then
        returns ``halted``); :meth:`resume` goes on from there."""
        assert self.session is not None
        self.session.halt()

    def resume(self) -> None:
        assert self.session is not None
        self.session.resume()

    @property
    def halted_at(self) -> float:
        """Wall time of a halted command's last instruction."""
        return self.session.halted_at if self.session is not None else 0.0

    def on_first_instruction(self, done: Callable[[float], None]) -> None:
        """Call ``done(wall time)`` (from the command's thread) when a moved-in command's
        rewind has rebuilt its stack: it runs its own code again from there."""
        assert self.session is not None
        session = self.session

        def resumed() -> None:
            session.on_resume = None
            done(time.time())

        session.on_resume = resumed

    @staticmethod
    def output_barrier(done: Callable[[], None]) -> None:
        """See :meth:`_Pumps.barrier`."""
        _pumps().barrier(done)

    def output_drained(self) -> bool:
        """Whether the guest's stdout and stderr pipes hold nothing unread."""
        import fcntl
        import termios

        buf = bytearray(4)
        for fd in self._out_fds:
            try:
                fcntl.ioctl(fd, termios.FIONREAD, buf)
            except OSError:
                continue  # read to its end and closed
            if int.from_bytes(buf, sys.byteorder):
                return False
        return True

    def page_sink(self):
        """The target's side: this fresh (not initialized) instance, filled page by page."""
        from foglayer.snapshot import PageSink

        return PageSink(self.inst, where=f"the move of {self.spec.name}")

    def last_round(self, stream) -> tuple[object, bytes]:
        """Between two calls (run it on :attr:`pool`): the last pages and the state."""
        from foglayer.snapshot import service_state

        return stream.next_round(), service_state(self.inst, stream)

    def adopt(self, sink, state: bytes, dirs: list[Preopen],
              secrets: dict[str, bytes] | None = None) -> None:
        """The switch on the target: the source's WASI state (descriptors re-opened inside
        this node's ``dirs``; its in-memory secrets from ``secrets``, released to this node)
        and globals; then it serves calls."""
        from foglayer.snapshot import finish_command, finish_service

        as_env = {r.name for r in self.spec.secrets if r.env}
        files = {n: v for n, v in (secrets or {}).items() if n not in as_env}
        opts = {"dirs": {d.guest: d.host for d in dirs}, "stdio": self.stdio,
                "memory_dirs": {SECRETS_DIR: files} if files else None}
        if self.session is not None:  # a command: ready to run() on, rewinding its stack
            finish_command(self.session, sink, state, **opts)
            return
        finish_service(sink, state, **opts)
        self._serve()

    @property
    def pool(self) -> ThreadPoolExecutor:
        assert self._pool is not None
        return self._pool

    def invoke(self, function: str, payload: bytes) -> bytes:
        """Call a service function (on the instance's own thread)."""
        assert self.service is not None
        self.calls += 1
        try:
            return self.service.call(function, payload)
        except Trapped as e:
            raise _translate(e, function, self.control.timeout) from None

    # -- commands ---------------------------------------------------------------------------

    def run_command(self) -> Outcome:
        """Run (or go on running) the command until it ends, or, checkpointable, until a
        :meth:`halt` stops it (``halted``: the instance stays, for a move or a resume)."""
        halted = False
        try:
            if self.session is not None:
                result = self.session.run()
                halted = self.session.stopped
            else:
                result = self.inst.run()
        except Trapped as e:
            err = _translate(e, "the app", self.control.timeout)
            if isinstance(err, Stopped):
                return Outcome("stopped", error=str(err))
            return Outcome("failed", error=str(err))
        except FogError as e:
            return Outcome("failed", error=str(e))
        finally:
            if not halted:
                self.close()
        if halted:
            return Outcome("halted")
        code = result.exit_code
        return Outcome("exited", exit_code=code, error=None if code == 0 else f"exit code {code}")

    # -- life cycle -------------------------------------------------------------------------

    def stop(self) -> None:
        self.control.stop()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        with self._memory_lock:
            if self._closed:
                return
            self._closed = True
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


class _Pumps:
    """One thread that reads every instance's stdout and stderr pipes (a selector over all of
    them), instead of two threads per instance: a thousand idle instances cost no threads.
    A pipe leaves when its instance closes the write end (end of file)."""

    def __init__(self) -> None:
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._lock = threading.Lock()
        self._after: list[Callable[[], None]] = []
        threading.Thread(target=self._run, daemon=True, name="fog-output").start()

    def barrier(self, done: Callable[[], None]) -> None:
        """Call ``done`` (on the pump thread) once everything read from any pipe so far has
        gone to its sink: with a drained pipe, all of an instance's output is out."""
        with self._lock:
            self._after.append(done)
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass

    def add(self, fd: int, stream: str, sink: Callable[[str, bytes], None]) -> None:
        with self._lock:
            self._sel.register(fd, selectors.EVENT_READ, (stream, sink))
        try:  # (a selector other than epoll sees a new fd only on its next wait)
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass

    def _run(self) -> None:
        while True:
            for key, _ in self._sel.select():
                if key.data is None:
                    os.read(self._wake_r, 4096)
                    continue
                try:
                    data = os.read(key.fd, 65536)
                except OSError:
                    data = b""
                if not data:
                    with self._lock:
                        self._sel.unregister(key.fd)
                    os.close(key.fd)
                    continue
                stream, sink = key.data
                try:
                    sink(stream, data)
                except Exception:  # noqa: BLE001 - a lost log line never kills the node
                    pass
            with self._lock:  # at the end of a pass: after the sinks of all it read
                after, self._after = self._after, []
            for done in after:
                done()


_pumps_lock = threading.Lock()
_the_pumps: _Pumps | None = None


def _pumps() -> _Pumps:
    global _the_pumps
    with _pumps_lock:
        if _the_pumps is None:
            _the_pumps = _Pumps()
        return _the_pumps
