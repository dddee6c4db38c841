"""Checkpoints of a running command module: request, unwind, capture, rewind.

The rewritten module calls ``fog.safepoint`` every few thousand loop headers, and every
WASI call passes the binding's gate. When a checkpoint is pending, whichever comes first
starts Asyncify's unwind and returns (a gated WASI call is skipped, not run). The stack
unwinds into the Asyncify buffer in linear memory and ``_start`` returns to the host,
which captures memory, globals and WASI state. To go on, the host starts a rewind and
calls ``_start`` again: the stack is rebuilt, the same import is called again, sees the
rewind, stops it and returns normally (a gated WASI call now runs for real, once).
"""

from __future__ import annotations

import os
import platform
import stat
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from foglayer.errors import FogError
from foglayer.runtime import (
    Control,
    Global,
    HostFunction,
    Instance,
    LimitExceeded,
    Limits,
    LoadedModule,
    RunResult,
    Trapped,
)
from foglayer.snapshot import _files, _format
from foglayer.snapshot._errors import RewriteError, SnapshotError
from foglayer.snapshot._meta import (
    EMPTY_MEMORY,
    AsyncifyMeta,
    GlobalMeta,
    HostInfo,
    Lineage,
    ModuleMeta,
    SnapshotMeta,
    decode_global,
    encode_global,
)
from foglayer.snapshot._rewrite import GLOBAL_PREFIX, SAFEPOINT, Rewritten
from foglayer.wasi import Wasi, save_state

NORMAL, UNWINDING, REWINDING = 0, 1, 2
BUFFER_PAGES = 16  # 1 MiB of Asyncify stack data (zero pages cost nothing in a snapshot)
KIND = "command"
SAFEPOINT_INTERVAL = 0.00025  # seconds between safepoint calls (the countdown adapts)
COUNTDOWN_MIN, COUNTDOWN_MAX = 64, 1 << 26
_CAN_FORK = hasattr(os, "fork") and hasattr(os, "register_at_fork")


@dataclass(slots=True)
class CheckpointOptions:
    """Where and when a checkpointable run writes its snapshots."""

    path: str | None = None
    every: float | None = None  # seconds between periodic checkpoints
    stop_after: bool = False  # exit right after the first checkpoint (a migration)
    with_files: bool = False  # pack the preopened trees into each snapshot
    level: int | None = _format.DEFAULT_LEVEL  # zstd level; None stores raw pages
    fsync: bool = True
    background: bool = True  # a run that goes on writes from a forked child (no pause)
    countdown: int | None = None  # fixed loop headers between safepoints (None: adaptive)
    after_safepoints: int | None = None  # request one checkpoint at that safepoint call
    on_written: Callable[[SnapshotMeta], None] | None = None
    on_failed: Callable[[str], None] | None = None
    # Seals a snapshot file's bytes before they reach the disk (fog run --seal: the trust
    # package's seal); the snapshot layer knows no keys.
    seal: Callable[[bytes], bytes] | None = None


@dataclass(slots=True)
class Checkpoint:
    """What one checkpoint did and how long it took."""

    path: str | None
    meta: SnapshotMeta
    requested: float  # perf_counter at the request
    unwound: float  # the stack was in the buffer
    written: float  # the snapshot was on disk (0 while a background writer is at it)
    resumed: float = 0.0  # the app went on (0 if it stopped)
    error: str | None = None  # a background writer failed

    @property
    def pause(self) -> float:
        """From the request until the app went on (or the snapshot was written, if it stopped)."""
        return (self.resumed or self.written) - self.requested

    @property
    def latency(self) -> float:
        """From the request to the snapshot on disk."""
        return self.written - self.requested


def _stdio_offsets(stdio: tuple[int, ...]) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for n, fd in enumerate(stdio[:3]):
        try:
            out[str(n)] = os.lseek(fd, 0, os.SEEK_CUR) if stat.S_ISREG(os.fstat(fd).st_mode) else None
        except OSError:
            out[str(n)] = None
    return out


class Session:
    """A checkpointable command instance: run it, checkpoint it, let it go on or stop."""

    def __init__(self, rewritten: Rewritten, module: LoadedModule, wasi: Wasi,
                 limits: Limits = Limits(), options: CheckpointOptions | None = None, *,
                 module_path: str = "", lineage: Lineage | None = None,
                 countdown: int = 1 << 14, control: Control | None = None) -> None:
        """``control``: the runtime's stop / deadline / duty-cycle policy (a node's)."""
        self.rewritten = rewritten
        self.options = options or CheckpointOptions()
        self.module_path = module_path
        self.countdown = self.options.countdown or countdown
        self.adaptive = self.options.countdown is None
        self._after = self.options.after_safepoints
        self.safepoints = 0
        self.lineage = lineage or Lineage()
        self.pending = False
        self.rewinding = False
        self.stopped = False
        self.history: list[Checkpoint] = []
        self.resumed_at: float | None = None  # perf_counter when a rewind reached its import
        self.halted_at = 0.0  # wall time the last halt() stopped it (its last instruction)
        self._requested = 0.0
        sp = HostFunction(SAFEPOINT[0], SAFEPOINT[1], "", "i", self._safepoint)
        self.inst = Instance(module, wasi, limits, host_functions=(sp,), control=control)
        fn = self.inst.function
        try:
            self._start_unwind = fn("asyncify_start_unwind")
            self._stop_unwind = fn("asyncify_stop_unwind")
            self._start_rewind = fn("asyncify_start_rewind")
            self._stop_rewind = fn("asyncify_stop_rewind")
            self._get_state = fn("asyncify_get_state")
        except FogError:
            raise RewriteError(f"{module.path}: not a checkpointable module "
                               f"(no asyncify exports)") from None
        if not self.inst.has_memory:
            raise RewriteError(f"{module.path}: exports no memory; cannot be checkpointed")
        exported = self.inst.globals()
        self.globals: list[tuple[int, Global]] = sorted(
            (int(name[len(GLOBAL_PREFIX):]), g) for name, g in exported.items()
            if name.startswith(GLOBAL_PREFIX))
        cd = exported.get("fog_countdown")
        if cd is not None:  # the first interval too, not just the later ones
            cd.value = self.countdown
        self.buffer = 0
        self._used = 0
        self._module_zst: _format.PackedBlob | None = None
        self.last_bytes: bytes | None = None
        self._last_sp = time.perf_counter()
        self._halt = False
        self._writer: threading.Thread | None = None
        self.on_resume: Callable[[], None] | None = None  # called when a rewind completes

    # -- memory ---------------------------------------------------------------------------

    def view(self) -> memoryview:
        return self.inst.memory_view()

    def memory_pages(self) -> int:
        return self.inst.memory_pages()

    def grow_to(self, pages: int) -> None:
        have = self.memory_pages()
        if pages > have:
            try:
                self.inst.grow_memory(pages - have)
            except LimitExceeded:
                raise SnapshotError(f"cannot grow linear memory to {pages} pages "
                                    f"({pages * 64 // 1024} MiB): over the memory limit?") from None

    def reserve_buffer(self) -> None:
        """Grow memory once for the Asyncify stack data, before the app runs.

        Its last 64 KiB are the scratch area the loops' safepoints pass locals through.
        """
        self.buffer = self.memory_pages() * _format.PAGE
        self.grow_to(self.memory_pages() + BUFFER_PAGES)
        scratch = self.inst.globals().get("fog_scratch")
        if scratch is not None:
            scratch.value = self._buffer_end()

    def _buffer_end(self) -> int:
        return self.buffer + (BUFFER_PAGES - 1) * _format.PAGE

    def _arm_buffer(self) -> None:
        struct.pack_into("<II", self.view(), self.buffer, self.buffer + 8, self._buffer_end())

    # -- the request --------------------------------------------------------------------

    def halt(self) -> None:
        """Stop the app at its next safepoint or WASI call, writing nothing."""
        self._halt = True
        self.request()

    def resume(self) -> None:
        """After a :meth:`halt` that led nowhere (a move that failed): go on where it
        stopped; the next :meth:`run` rewinds the stack."""
        if not self.stopped or self.inst.wasi.state.exit_code is not None:
            raise SnapshotError("the command is not halted: nothing to resume")
        self._used = struct.unpack_from("<I", self.view(), self.buffer)[0] - self.buffer
        self.stopped = self._halt = False
        self._rewind()

    def request(self) -> None:
        """Ask for a checkpoint at the next safepoint or WASI call (any thread, signals)."""
        if not self.pending:
            self._requested = time.perf_counter()
            self.pending = True
            self.inst.binding.gate = self._gate

    def _begin_unwind(self) -> None:
        self._arm_buffer()
        self._start_unwind(self.buffer)

    def _end_rewind(self) -> None:
        self._stop_rewind()
        self.rewinding = False
        if self._used > 8:  # zero the stack data the rewind has consumed
            self.view()[self.buffer + 8:self.buffer + self._used] = bytes(self._used - 8)
            self._used = 0
        self.resumed_at = time.perf_counter()
        if self.on_resume is not None:
            self.on_resume()
        if not self.pending:
            self.inst.binding.gate = None

    def _safepoint(self) -> int:
        if self.rewinding:
            self._end_rewind()
            if not self.pending:
                return self.countdown
        else:
            self.safepoints += 1
            if self._after is not None and self.safepoints >= self._after:
                self._after = None
                self.request()
        if self.pending:
            self._begin_unwind()
            return 0
        if not self.adaptive:
            return self.countdown
        # Adapt the countdown so that safepoints come about every SAFEPOINT_INTERVAL:
        # rare enough to cost nothing, often enough for a prompt checkpoint.
        now = time.perf_counter()
        dt, self._last_sp = now - self._last_sp, now
        if dt < SAFEPOINT_INTERVAL / 2 and self.countdown < COUNTDOWN_MAX:
            self.countdown *= 2
        elif dt > SAFEPOINT_INTERVAL * 2 and self.countdown > COUNTDOWN_MIN:
            self.countdown //= 2
        return self.countdown

    def _gate(self, index: int) -> bool:
        if self.rewinding:
            self._end_rewind()
            if not self.pending:
                return False
        if self.pending:
            self._begin_unwind()
            return True
        return False

    # -- the run loop -------------------------------------------------------------------

    def run(self) -> RunResult:
        """Run (or, after :meth:`load`, resume) ``_start`` until it exits or stops."""
        if not self.buffer and not self.rewinding:
            self.reserve_buffer()
        while True:
            try:
                result = self.inst.run()
            except Trapped as e:
                if self.pending and self._get_state() == UNWINDING:
                    raise SnapshotError(
                        f"checkpoint failed while unwinding the stack ({e}); the call stack "
                        f"may be deeper than the {BUFFER_PAGES * 64} KiB Asyncify buffer") from None
                raise
            if self._get_state() != UNWINDING:
                return result
            unwound = time.perf_counter()
            self._stop_unwind()
            if self._halt:
                self.halted_at = time.time() - (time.perf_counter() - unwound)
                self.stopped = True
                self.pending = False
                return RunResult(0, result.stats)
            cp = self._write(unwound)
            if self.options.stop_after:
                self.stopped = True
                self.inst.close()
                return RunResult(0, result.stats)
            self._rewind()
            cp.resumed = time.perf_counter()

    def _rewind(self) -> None:
        self.rewinding = True
        self.inst.binding.gate = self._gate
        self._start_rewind(self.buffer)

    # -- capture ------------------------------------------------------------------------

    def capture_meta(self) -> SnapshotMeta:
        """Everything but the memory pages (the writer fills those in)."""
        used = self._used = struct.unpack_from("<I", self.view(), self.buffer)[0] - self.buffer
        globals_ = []
        for index, g in self.globals:
            globals_.append(GlobalMeta(type=g.type, mutable=g.mutable, index=index,
                                       value=encode_global(g.value, g.type)))
        state = self.inst.wasi.state
        self.lineage = Lineage(self.lineage.checkpoints + 1, self.lineage.restores)
        from foglayer import __version__

        return SnapshotMeta(
            kind=KIND,
            module=ModuleMeta(digest=self.rewritten.digest,
                              original_digest=self.rewritten.original_digest,
                              path=self.module_path, rewritten_size=self.rewritten.size),
            memory=EMPTY_MEMORY,
            globals=globals_,
            asyncify=AsyncifyMeta(buffer=self.buffer, size=BUFFER_PAGES * _format.PAGE,
                                  used=used, scratch=self._buffer_end()),
            wasi=save_state(state),
            files=_files.open_files(state),
            stdio=_stdio_offsets(self.inst.wasi.stdio),
            lineage=self.lineage,
            created=time.time(),
            host=HostInfo(node=platform.node(), machine=platform.machine()),
            foglayer=__version__,
        )

    def _module_blob(self) -> _format.PackedBlob:
        if self._module_zst is None:
            self._module_zst = _format.pack_blob(self.rewritten.path.read_bytes())
        return self._module_zst

    def _write(self, unwound: float) -> Checkpoint:
        opts = self.options
        self.wait_background()  # an older snapshot must never land after a newer one
        meta = self.capture_meta()
        blobs = {"module": self._module_blob()}
        if opts.with_files:  # now, before the app changes them
            blobs["files"] = _format.pack_blob(_files.pack_trees(
                self.inst.wasi.state, exclude={opts.path} if opts.path else set()))
        view = self.view()
        path = opts.path
        self.pending = False
        if path is not None and opts.background and not opts.stop_after and _CAN_FORK:
            cp = Checkpoint(path, meta, self._requested, unwound, 0.0)
            self.history.append(cp)
            self._fork_writer(cp, view, blobs)
            return cp
        if path is not None:
            meta = _format.save(path, meta, view, level=opts.level, blobs=blobs,
                                fsync=opts.fsync, seal=opts.seal)
        else:
            import io

            buf = io.BytesIO()
            meta = _format.write_snapshot(buf, meta, view, level=opts.level, blobs=blobs)
            self.last_bytes = buf.getvalue()
        cp = Checkpoint(path, meta, self._requested, unwound, time.perf_counter())
        self.history.append(cp)
        if opts.on_written is not None:
            opts.on_written(meta)
        return cp

    def _fork_writer(self, cp: Checkpoint, view: memoryview,
                     blobs: dict[str, _format.PackedBlob]) -> None:
        """Write the snapshot from a forked child: it sees memory as it is now (copy on
        write) while the app goes on in this process, as Redis's BGSAVE does."""
        opts = self.options
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: write, report, leave without running any cleanup
            code = 0
            try:
                os.close(r)
                _format.save(cp.path, cp.meta, view, level=opts.level, blobs=blobs,
                             fsync=opts.fsync, seal=opts.seal)
            except BaseException as e:  # noqa: BLE001 - reported to the parent
                os.write(w, str(e).encode()[:4000])
                code = 1
            os._exit(code)
        os.close(w)

        def reap() -> None:
            _, status = os.waitpid(pid, 0)
            with os.fdopen(r, "rb") as f:
                error = f.read().decode(errors="replace")
            cp.written = time.perf_counter()
            if status == 0 and not error:
                if opts.on_written is not None:
                    opts.on_written(cp.meta)
            else:
                cp.error = error or f"the snapshot writer died (status {status})"
                if opts.on_failed is not None:
                    opts.on_failed(cp.error)

        self._writer = threading.Thread(target=reap, name="fog-snapshot-writer", daemon=True)
        self._writer.start()

    def wait_background(self) -> None:
        """Wait until the snapshot being written in the background is on disk."""
        if self._writer is not None:
            self._writer.join()
            self._writer = None

    # -- restore ------------------------------------------------------------------------

    def load(self, snap: _format.Snapshot) -> None:
        """Put a snapshot's memory and globals into this fresh instance; arm the rewind."""
        self._check_globals(snap.meta, snap.where)
        load_memory(self.inst, snap)
        self.load_state(snap.meta, snap.where)

    def _check_globals(self, meta: SnapshotMeta, where: str) -> dict[int, Global]:
        by_index = dict(self.globals)
        if sorted(by_index) != sorted(g.index for g in meta.globals):
            raise SnapshotError(f"{where}: the module's globals do not match the snapshot's")
        for g in meta.globals:
            glob = by_index[g.index]
            if (glob.type, glob.mutable) != (g.type, g.mutable):
                raise SnapshotError(f"{where}: global {g.index} does not match the "
                                    f"module's ({glob.type}, mutable {glob.mutable})")
        return by_index

    def load_state(self, meta: SnapshotMeta, where: str) -> None:
        """Globals and the Asyncify stack of a snapshot whose memory is already in place
        (a restore, or the last step of a live migration); arm the rewind."""
        assert meta.asyncify is not None  # checked with the metadata
        by_index = self._check_globals(meta, where)
        for g in meta.globals:
            if g.mutable:
                by_index[g.index].value = decode_global(g)
        self.buffer = meta.asyncify.buffer
        self._used = meta.asyncify.used
        self.lineage = Lineage(meta.lineage.checkpoints, meta.lineage.restores + 1)
        self._rewind()


def load_memory(inst: Instance, snap: _format.Snapshot) -> None:
    """Make a fresh instance's linear memory equal to the snapshot's."""
    if not inst.has_memory:
        raise SnapshotError(f"{snap.where}: the module exports no memory")
    pages = snap.meta.memory.pages
    initial = inst.memory_pages()
    if pages < initial:
        raise SnapshotError(f"{snap.where}: memory of {pages} pages is smaller than the "
                            f"module's initial {initial}: not a snapshot of this module")
    if pages > initial:
        try:
            inst.grow_memory(pages - initial)
        except LimitExceeded:
            raise SnapshotError(f"{snap.where}: cannot grow linear memory to "
                                f"{pages * _format.PAGE >> 20} MiB (over the memory limit?)") from None
    view = inst.memory_view()
    stored = {e.index for e in snap.meta.memory.table}
    initial_view = view[:initial * _format.PAGE]
    for index in _format.nonzero_pages(initial_view):  # data the snapshot has as zeros
        if index not in stored:
            view[index * _format.PAGE:(index + 1) * _format.PAGE] = _format.ZERO_PAGE
    snap.load_into(view)


def default_checkpoint_path(module_path: str) -> str:
    stem = Path(module_path).stem or "app"
    return os.path.abspath(f"{stem}-{os.getpid()}.fogsnap")
