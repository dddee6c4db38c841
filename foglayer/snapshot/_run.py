"""Checkpointable runs and restores as a process does them: signals, timers, the registry."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
from collections.abc import Sequence
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
from foglayer.wasi import Preopen, Wasi, WasiState


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


def _drive(session: Session) -> Outcome:
    """Run a session with SIGUSR1 and the periodic timer wired to its checkpoints."""
    opts = session.options
    old_handler = None
    in_main = threading.current_thread() is threading.main_thread()
    if in_main and opts.path is not None:  # before the announcement: never killed by it
        old_handler = signal.signal(signal.SIGUSR1, lambda *_: session.request())
    announcement = None
    if opts.path is not None:
        announcement = _registry.Announcement(opts.path)
        user_hook = opts.on_written

        def on_written(meta: dict) -> None:
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
    except FogError as e:
        if announcement is not None:
            announcement.failed(str(e))
        raise
    finally:
        stop.set()
        session.wait_background()
        if old_handler is not None:
            signal.signal(signal.SIGUSR1, old_handler)
        if announcement is not None:
            announcement.withdraw()
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
    return _drive(session)


# -- restore ---------------------------------------------------------------------------


def _find_module(snap: _format.Snapshot, module: str | os.PathLike | None) -> Rewritten:
    mod = snap.meta["module"]
    digest, original = mod["digest"], mod["original_digest"]
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
        blob = snap.blob("module")
        if blob is None:
            raise SnapshotError(f"{snap.where}: carries no module, and module {digest[:12]} is "
                                f"not in the cache", remedy="module")
        try:
            data = _format.zstandard.ZstdDecompressor().decompressobj().decompress(blob)
        except _format.zstandard.ZstdError:
            raise SnapshotError(f"{snap.where}: corrupted module in the snapshot") from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise SnapshotError(f"{snap.where}: the module it carries does not match its digest")
        from foglayer._dirs import atomic_write
        from foglayer.snapshot._rewrite import _rewritten_dir

        path = _rewritten_dir() / f"{digest}.wasm"
        atomic_write(path, data)
    return Rewritten(path, digest, original, 0, path.stat().st_size, True)


def prepare_wasi(snap: _format.Snapshot, *, dirs: dict[str, str] | None = None,
                 force: bool = False, files_to: str | os.PathLike | None = None,
                 stdio: Sequence[int] = (0, 1, 2)) -> Wasi:
    """The snapshot's WASI state, remapped, its files checked (or unpacked), re-opened."""
    meta = snap.meta
    try:
        state = WasiState.from_dict(meta["wasi"])
    except (KeyError, TypeError, ValueError) as e:
        raise SnapshotError(f"{snap.where}: corrupted WASI state ({e})") from None
    dirs = dict(dirs or {})
    names = [p.guest for p in state.preopens]
    for guest in dirs:
        if guest not in names:
            have = ", ".join(names) or "none"
            raise SnapshotError(f"the snapshot has no preopen {guest} (it has: {have})",
                                where="dirs", subject=guest)
    archive = snap.blob("files")
    if archive is not None:
        targets = {}
        for k, p in enumerate(state.preopens):
            if p.guest in dirs:
                targets[p.guest] = dirs[p.guest]
            elif files_to is not None:
                safe = p.guest.strip("/").replace("/", "_") or f"preopen{k}"
                targets[p.guest] = os.path.join(files_to, safe)
            else:
                targets[p.guest] = p.host
        _files.unpack_trees(archive, state, targets, force=force)
        dirs = targets
    elif files_to is not None:
        raise SnapshotError(f"{snap.where}: carries no files (it was taken without them)",
                            where="files_to")
    state.remap({g: os.path.realpath(h) for g, h in dirs.items()})
    for p in state.preopens:
        if not os.path.isdir(p.host):
            raise SnapshotError(f"{p.host}: the preopen {p.guest} is not there",
                                remedy="dirs", subject=p.guest)
    if not force:
        _files.check_files(meta.get("files", []), state)
    try:
        return Wasi.restore(state, stdio)
    except OSError as e:
        raise SnapshotError(f"{e.filename}: {e.strerror}") from None


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
) -> Outcome:
    """``fog restore``: resume a snapshot in this process, checkpointable again."""
    options = options or CheckpointOptions()
    snap = _format.load(snapshot)
    if options.path is None:
        options.path = default_checkpoint_path(snap.meta.get("module", {}).get("path") or "app")
    try:
        session = open_session(snap, dirs=dirs, force=force, files_to=files_to, module=module,
                               limits=limits, stdio=stdio, options=options, stats=stats)
    finally:
        snap.close()
    return _drive(session)


def open_session(snap: _format.Snapshot, *, dirs: dict[str, str] | None = None,
                 force: bool = False, files_to: str | os.PathLike | None = None,
                 module: str | os.PathLike | None = None, limits: Limits = Limits(),
                 stdio: Sequence[int] = (0, 1, 2), options: CheckpointOptions | None = None,
                 stats: bool = False) -> Session:
    """A session holding the snapshot's state, ready to :meth:`Session.run` (rewinding)."""
    kind = snap.meta.get("kind")
    if kind != KIND:
        raise SnapshotError(f"{snap.where}: a {kind} snapshot; only command snapshots resume "
                            f"with fog restore (service snapshots restore through the API)")
    rewritten = _find_module(snap, module)
    loaded = load_module(rewritten.path, settings_for(limits, stats=stats))
    wasi = prepare_wasi(snap, dirs=dirs, force=force, files_to=files_to, stdio=stdio)
    session = Session(rewritten, loaded, wasi, limits, options or CheckpointOptions(),
                      module_path=snap.meta["module"].get("path", ""))
    try:
        session.load(snap)
    except BaseException:
        session.inst.close()
        raise
    return session
