"""Snapshots of service (reactor) instances, taken between two calls of their exports.

Between calls a reactor has no call stack: its state is linear memory, its globals and
its WASI state, so no rewrite is needed. Exported globals are captured by name; the
others (the compiler's ``__stack_pointer``) are back at their initial values whenever no
call is running.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Sequence

from foglayer.runtime import (
    Control,
    EngineSettings,
    HostFunction,
    Instance,
    Limits,
    LoadedModule,
    load_module,
)
from foglayer.snapshot import _files, _format
from foglayer.snapshot._capture import load_memory
from foglayer.snapshot._errors import SnapshotError
from foglayer.snapshot._meta import (
    EMPTY_MEMORY,
    GlobalMeta,
    ModuleMeta,
    SnapshotMeta,
    decode_global,
    encode_global,
)
from foglayer.wasi import MemoryDirs, save_state

KIND = "service"


def snapshot_instance(inst: Instance, *, level: int | None = _format.DEFAULT_LEVEL) -> bytes:
    """A snapshot (bytes) of a reactor instance between two calls."""
    meta = service_meta(inst)
    view = inst.memory_view() if inst.has_memory else None
    buf = io.BytesIO()
    _format.write_snapshot(buf, meta, view, level=level)
    return buf.getvalue()


def check_globals(inst: Instance, meta: SnapshotMeta) -> None:
    """The snapshot's globals are the module's exported ones, of the same types."""
    exported = inst.globals()
    for g in meta.globals:
        ext = exported.get(g.name)  # type: ignore[arg-type]
        if ext is None:
            raise SnapshotError(f"the module has no exported global {g.name!r}")
        if (ext.type, ext.mutable) != (g.type, g.mutable):
            raise SnapshotError(f"global {g.name!r} does not match the module's "
                                f"({ext.type}, mutable {ext.mutable})")


def set_globals(inst: Instance, meta: SnapshotMeta) -> None:
    exported = inst.globals()
    for g in meta.globals:
        if g.mutable:
            exported[g.name].value = decode_global(g)  # type: ignore[index]


def service_meta(inst: Instance) -> SnapshotMeta:
    """A reactor instance's state between two calls, but for its memory's pages."""
    from foglayer import __version__

    globals_ = [GlobalMeta(type=g.type, mutable=g.mutable, name=name,
                           value=encode_global(g.value, g.type))
                for name, g in inst.globals().items()]
    state = inst.wasi.state
    return SnapshotMeta(
        kind=KIND,
        module=ModuleMeta(digest=inst.module.digest, original_digest=inst.module.digest,
                          path=str(inst.module.path)),
        memory=EMPTY_MEMORY,
        globals=globals_,
        wasi=save_state(state),
        files=_files.open_files(state),
        created=time.time(),
        foglayer=__version__,
    )


def restore_instance(
    module: LoadedModule | str | os.PathLike | bytes,
    data: bytes,
    *,
    dirs: dict[str, str] | None = None,
    force: bool = False,
    limits: Limits = Limits(),
    stdio: Sequence[int] = (0, 1, 2),
    host_functions: tuple[HostFunction, ...] = (),
    settings: EngineSettings = EngineSettings(),
    memory_dirs: MemoryDirs | None = None,
    control: Control | None = None,
) -> Instance:
    """A fresh instance of ``module`` holding the state of a :func:`snapshot_instance`.

    ``control`` stops, times and throttles it (as :class:`~foglayer.runtime.Instance` takes it).
    """
    from foglayer.snapshot._run import prepare_wasi

    snap = _format.parse(data)
    meta = snap.meta
    if meta.kind != KIND:
        raise SnapshotError(f"a {meta.kind} snapshot, not a service snapshot: "
                            f"resume it with fog restore")
    if not isinstance(module, LoadedModule):
        module = load_module(module, settings)
    want = meta.module.digest
    if module.digest != want:
        raise SnapshotError(f"{module.path}: not the module of this snapshot (sha256 "
                            f"{module.digest[:12]}; the snapshot is of {want[:12]})")
    wasi = prepare_wasi(snap, dirs=dirs, force=force, stdio=stdio, memory_dirs=memory_dirs)
    try:
        inst = Instance(module, wasi, limits, host_functions, control=control)
    except BaseException:
        wasi.close()
        raise
    try:
        check_globals(inst, meta)
        load_memory(inst, snap)
        set_globals(inst, meta)
    except BaseException:
        wasi.close()
        inst.close()
        raise
    return inst
