"""``fog inspect``: what a snapshot holds, as text."""

from __future__ import annotations

import datetime
import os

from foglayer.snapshot import _format
from foglayer.snapshot._meta import GlobalMeta


def _size(n: int) -> str:
    from foglayer.runtime import format_size

    return format_size(n)


def _global_value(g: GlobalMeta) -> str:
    v = g.value
    if isinstance(v, str):
        return repr(float.fromhex(v))
    return f"{v} (0x{v & 0xFFFFFFFFFFFFFFFF:x})"


def describe(path: str | os.PathLike) -> str:
    snap = _format.load(path)
    try:
        return _describe(snap, os.path.getsize(path))
    finally:
        snap.close()


def _describe(snap: _format.Snapshot, file_size: int) -> str:
    m = snap.meta
    mem = m.memory
    mod = m.module
    out = [f"snapshot       {snap.where}",
           f"format         version {m.format} ({m.kind} snapshot, "
           f"foglayer {m.foglayer or '?'}{'' if snap.trusted else '; not written by you here'})"]
    if m.created:
        when = datetime.datetime.fromtimestamp(m.created).isoformat(timespec="seconds")
        out.append(f"taken          {when} on {m.host.node or '?'} ({m.host.machine or '?'})")
    out.append(f"module         sha256 {mod.original_digest}")
    if mod.digest != mod.original_digest:
        out.append(f"checkpointable sha256 {mod.digest}")
    if mod.path:
        out.append(f"module path    {mod.path}")
    blobs = m.blobs
    stored_bytes = sum(e.length for e in mem.table)
    out.append(f"memory         {mem.pages} pages ({_size(mem.pages * mem.page_size)}); "
               f"{mem.stored} stored, {mem.pages - mem.stored} zero")
    out.append(f"page data      {_size(stored_bytes)} ({mem.compression}); file {_size(file_size)}"
               + (f"; carries the module ({_size(blobs['module'].length)})"
                  if "module" in blobs else "")
               + (f"; carries the preopened files ({_size(blobs['files'].length)})"
                  if "files" in blobs else ""))
    if m.asyncify is not None:
        a = m.asyncify
        out.append(f"asyncify       buffer at 0x{a.buffer:x} ({_size(a.size)}), "
                   f"{a.used} bytes of stack data")
    if m.kind == "command":
        out.append(f"lineage        checkpoint {m.lineage.checkpoints}, "
                   f"after {m.lineage.restores} restores")
    out.append(f"globals        {len(m.globals)}")
    for g in m.globals:
        name = g.name or f"global {g.index}"
        out.append(f"  {name:<20} {g.type} {'mut' if g.mutable else 'const'} "
                   f"= {_global_value(g)}")
    w = m.wasi
    out.append(f"args           {' '.join(w.args)}")
    if w.env:
        out.append(f"env            {' '.join(f'{k}={v}' for k, v in w.env.items())}")
    for p in w.preopens:
        out.append(f"preopen        {p.guest} (was {p.host or '?'})"
                   f"{' (read-only)' if p.readonly else ''}")
    out.append(f"descriptors    {len(w.fds)}")
    for d in w.fds:
        where = (f"<stdio {d.stdio}>" if d.stdio >= 0 else
                 f"{w.preopens[d.preopen].guest} + {d.path}" if d.preopen >= 0 else d.guest_path)
        line = f"  fd {d.fd:<3} {d.kind_name:<8} {where}"
        if d.is_file:
            line += f"  offset {d.offset}"
        out.append(line)
    for rec in m.files:
        out.append(f"  file fd {rec.fd}: {rec.size} bytes, sha256 {rec.sha256[:16]}…")
    return "\n".join(out)
