"""Checkpointable runs and restores as a process does them: signals, timers, the registry."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from foglayer.errors import FogError
from foglayer.runtime import Limits, RunResult, load_module, settings_for
from foglayer.snapshot import _files, _format, _registry
from foglayer.snapshot._capture import (
    KIND,
    Checkpoint,
    CheckpointOptions,
    Session,
    default_checkpoint_path,
)
from foglayer.snapshot._errors import SnapshotError
from foglayer.snapshot._rewrite import Rewritten, cached_rewritten, make_checkpointable
from foglayer.wasi import MemoryDirs, Preopen, SavedStateError, Wasi, restore_saved

MAX_MODULE = 512 << 20  # bytes a carried module may unpack to
MAX_FILES = 2 << 30  # bytes a carried files archive may unpack to (streamed to disk)


@dataclass(slots=True)
class Outcome:
    """How a checkpointable run ended: its result, whether it stopped after a checkpoint."""

    result: RunResult
    stopped: bool
    checkpoints: list[Checkpoint] = field(default_factory=list)
    safepoints: int = 0  # safepoint calls the app made (rewinds not counted)

    @property
    def exit_code(self) -> int:
        return self.result.exit_code


@contextmanager
def _held_requests() -> Iterator[None]:
    """Hold SIGUSR1 pending (blocked) until a session can take it (``_drive``).

    A request that comes while the module is rewritten or loaded then neither kills
    the process nor is lost. When no run is left to take it, it is dropped.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    try:
        yield
    finally:
        if signal.SIGUSR1 not in old:
            prev = signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # discards a pending one
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
            signal.signal(signal.SIGUSR1, prev)


def _check_destination(path: str) -> None:
    """Refuse, before the app starts, a snapshot path no checkpoint could be written to: a
    periodic checkpoint fails in a forked writer, long after, where nobody would see it."""
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise SnapshotError(f"{path}: cannot write snapshots there: no directory {parent}",
                            where="checkpoint_to")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise SnapshotError(f"{path}: cannot write snapshots there: {parent} is not writable",
                            where="checkpoint_to")
    if os.path.isdir(path):
        raise SnapshotError(f"{path}: is a directory (give a file name)", where="checkpoint_to")


@contextmanager
def _announced(path: str | None) -> Iterator[_registry.Announcement | None]:
    """This run in the registry from its start (``fog checkpoint PID`` finds it while the
    module is still being rewritten: the request waits, held, see :func:`_held_requests`)."""
    if path is not None:
        _check_destination(path)
    announcement = _registry.Announcement(path) if path is not None else None
    try:
        yield announcement
    except FogError as e:
        if announcement is not None:
            announcement.failed(str(e))
        raise
    finally:
        if announcement is not None:
            announcement.withdraw()


def _drive(session: Session, announcement: _registry.Announcement | None) -> Outcome:
    """Run a session with SIGUSR1 and the periodic timer wired to its checkpoints."""
    opts = session.options
    old_handler = None
    in_main = threading.current_thread() is threading.main_thread()
    if in_main and opts.path is not None:
        old_handler = signal.signal(signal.SIGUSR1, lambda *_: session.request())
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})  # held ones arrive now
    if announcement is not None:
        user_hook = opts.on_written

        def on_written(meta) -> None:
            announcement.written()
            if user_hook is not None:
                user_hook(meta)

        opts.on_written = on_written
        opts.on_failed = announcement.failed
    stop = threading.Event()
    if opts.every:
        def tick() -> None:
            while not stop.wait(opts.every):
                session.request()

        threading.Thread(target=tick, name="fog-checkpoint-every", daemon=True).start()
    try:
        result = session.run()
    finally:
        stop.set()
        session.wait_background()
        if old_handler is not None:
            signal.signal(signal.SIGUSR1, old_handler)
        session.inst.close()
    return Outcome(result, session.stopped, session.history, session.safepoints)


def run_checkpointable(
    module: str | os.PathLike,
    args: Sequence[str] = (),
    *,
    env: dict[str, str] | None = None,
    preopens: Sequence[Preopen] = (),
    limits: Limits = Limits(),
    stdio: Sequence[int] = (0, 1, 2),
    options: CheckpointOptions | None = None,
    stats: bool = False,
    progress: bool = True,
) -> Outcome:
    """``fog run --checkpointable``: rewrite (cached), run, checkpoint on request."""
    options = options or CheckpointOptions()
    if options.path is None:
        options.path = default_checkpoint_path(os.fspath(module))
    with _held_requests(), _announced(options.path) as announcement:
        return _run_checkpointable(module, args, env=env, preopens=preopens, limits=limits,
                                   stdio=stdio, options=options, stats=stats,
                                   progress=progress, announcement=announcement)


def _run_checkpointable(module, args, *, env, preopens, limits, stdio, options, stats,
                        progress, announcement) -> Outcome:
    rewritten = make_checkpointable(module, progress=progress)
    loaded = load_module(rewritten.path, settings_for(limits, stats=stats))
    name = os.path.basename(os.fspath(module))
    try:
        wasi = Wasi.create([name, *args], env or {}, preopens, stdio)
    except OSError as e:
        raise FogError(f"cannot preopen {e.filename}: {e.strerror}") from None
    session = Session(rewritten, loaded, wasi, limits, options,
                      module_path=os.path.abspath(os.fspath(module)))
    session.reserve_buffer()
    return _drive(session, announcement)


# -- restore ---------------------------------------------------------------------------


def _find_module(snap: _format.Snapshot, module: str | os.PathLike | None) -> Rewritten:
    mod = snap.meta.module
    digest, original = mod.digest, mod.original_digest
    if module is not None:
        try:
            data = Path(module).read_bytes()
        except OSError as e:
            raise SnapshotError(f"{module}: cannot read: {e.strerror}") from None
        have = hashlib.sha256(data).hexdigest()
        if have == original:
            rw = make_checkpointable(module)
            if rw.digest != digest:
                raise SnapshotError(
                    f"{module}: rewriting it here gives another checkpointable module "
                    f"({rw.digest[:12]}, the snapshot needs {digest[:12]}): the rewriting tools "
                    f"differ: the checkpointable module itself is needed", remedy="module")
            return rw
        if have != digest:
            raise SnapshotError(f"{module}: not the module of this snapshot (sha256 "
                                f"{have[:12]}; the snapshot is of {original[:12]}, "
                                f"checkpointable form {digest[:12]})")
        return Rewritten(Path(module), digest, original, 0, len(data), True)
    path = cached_rewritten(digest)
    if path is None:
        data = snap.blob("module", MAX_MODULE)
        if data is None:
            raise SnapshotError(f"{snap.where}: carries no module, and module {digest[:12]} is "
                                f"not in the cache", remedy="module")
        if hashlib.sha256(data).hexdigest() != digest:
            raise SnapshotError(f"{snap.where}: the module it carries does not match its digest")
        from foglayer._dirs import atomic_write
        from foglayer.snapshot._rewrite import _rewritten_dir

        path = _rewritten_dir() / f"{digest}.wasm"
        atomic_write(path, data)
    return Rewritten(path, digest, original, 0, path.stat().st_size, True)


def prepare_wasi(snap: _format.Snapshot, *, dirs: dict[str, str] | None = None,
                 force: bool = False, files_to: str | os.PathLike | None = None,
                 stdio: Sequence[int] = (0, 1, 2), files_limit: int = MAX_FILES,
                 memory_dirs: MemoryDirs | None = None) -> Wasi:
    """The snapshot's WASI state on directories this side chose, its files checked.

    Each preopen gets the directory ``dirs`` names for it; with a files archive, a fresh
    directory under ``files_to``. The host directory a snapshot recorded is used only if
    this user wrote the snapshot here (its HMAC verifies): anything else is untrusted.
    Every descriptor is re-opened inside its preopen (see :func:`restore_saved`). The
    files of memory directories (secrets) are never in a snapshot: ``memory_dirs``.
    """
    meta = snap.meta
    saved = meta.wasi
    dirs = dict(dirs or {})
    names = [p.guest for p in saved.preopens]
    for guest in dirs:
        if guest not in names:
            have = ", ".join(names) or "none"
            raise SnapshotError(f"the snapshot has no preopen {guest} (it has: {have})",
                                where="dirs", subject=guest)
    has_files = "files" in meta.blobs
    if files_to is not None and not has_files:
        raise SnapshotError(f"{snap.where}: carries no files (it was taken without them)",
                            where="files_to")
    hosts: list[str] = []
    for k, p in enumerate(saved.preopens):
        if p.memory:
            hosts.append("")  # its files come from memory_dirs
        elif p.guest in dirs:
            hosts.append(dirs[p.guest])
        elif has_files and files_to is not None:
            name = _files.safe_name(p.guest, k)  # one plain component: never "..", never "/"
            if os.path.join(files_to, name) in hosts:
                name = f"{name}-{k}"
            hosts.append(os.path.join(files_to, name))
        elif has_files:
            raise SnapshotError(f"{snap.where}: carries the files of {p.guest}, and no "
                                f"directory was chosen for them", remedy="files_to",
                                subject=p.guest)
        elif snap.trusted and p.host:
            hosts.append(p.host)
        else:
            raise SnapshotError(f"{snap.where}: preopen {p.guest}: the snapshot was not written "
                                f"by this user here, so its host directory is not trusted",
                                remedy="dirs", subject=p.guest)
    real = [os.path.realpath(h) for h in hosts if h]
    if has_files and len(set(real)) != len(real):
        raise SnapshotError(f"{snap.where}: two preopens' files would unpack into one directory")
    unpacked = None
    if has_files:
        unpacked = _unpack(snap, hosts, force, files_limit)
    try:
        for p, host in zip(saved.preopens, hosts, strict=True):
            if not p.memory and not os.path.isdir(host):
                raise SnapshotError(f"{host}: the preopen {p.guest} is not there",
                                    remedy="dirs", subject=p.guest)
        try:
            wasi = restore_saved(saved, hosts, stdio, memory_dirs)
        except SavedStateError as e:
            raise SnapshotError(f"{snap.where}: refused: {e}") from None
        if not force:
            try:
                _files.check_files(meta.files, wasi.state)
            except BaseException:
                wasi.close()
                raise
    except BaseException:
        if unpacked is not None:
            unpacked.undo()  # a refused restore leaves nothing behind
        raise
    return wasi


def _unpack(snap: _format.Snapshot, hosts: list[str], force: bool, limit: int):
    import tempfile

    with tempfile.SpooledTemporaryFile(max_size=64 << 20) as tar:
        snap.blob_to("files", tar, limit)
        tar.seek(0)
        return _files.unpack_trees(tar, [h or None for h in hosts], force=force)


def restore(
    snapshot: str | os.PathLike,
    *,
    dirs: dict[str, str] | None = None,
    force: bool = False,
    files_to: str | os.PathLike | None = None,
    module: str | os.PathLike | None = None,
    limits: Limits = Limits(),
    stdio: Sequence[int] = (0, 1, 2),
    options: CheckpointOptions | None = None,
    stats: bool = False,
    unseal: Callable[[bytes, str], bytes] | None = None,
) -> Outcome:
    """``fog restore``: resume a snapshot in this process, checkpointable again. ``unseal``
    opens a sealed snapshot file (fog run --seal) in memory."""
    options = options or CheckpointOptions()
    with _held_requests():
        snap = _format.load(snapshot, unseal)
        if options.path is None:
            options.path = default_checkpoint_path(snap.meta.module.path or "app")
        with _announced(options.path) as announcement:
            try:
                session = open_session(snap, dirs=dirs, force=force, files_to=files_to,
                                       module=module, limits=limits, stdio=stdio,
                                       options=options, stats=stats)
            finally:
                snap.close()
            return _drive(session, announcement)


def open_session(snap: _format.Snapshot, *, dirs: dict[str, str] | None = None,
                 force: bool = False, files_to: str | os.PathLike | None = None,
                 module: str | os.PathLike | None = None, limits: Limits = Limits(),
                 stdio: Sequence[int] = (0, 1, 2), options: CheckpointOptions | None = None,
                 stats: bool = False) -> Session:
    """A session holding the snapshot's state, ready to :meth:`Session.run` (rewinding)."""
    kind = snap.meta.kind
    if kind != KIND:
        raise SnapshotError(f"{snap.where}: a {kind} snapshot; only command snapshots resume "
                            f"with fog restore (service snapshots restore through the API)")
    rewritten = _find_module(snap, module)
    loaded = load_module(rewritten.path, settings_for(limits, stats=stats))
    wasi = prepare_wasi(snap, dirs=dirs, force=force, files_to=files_to, stdio=stdio)
    session = Session(rewritten, loaded, wasi, limits, options or CheckpointOptions(),
                      module_path=snap.meta.module.path)
    try:
        session.load(snap)
    except BaseException:
        session.inst.close()
        wasi.close()
        raise
    return session
