"""``fog inspect``: what a snapshot holds, as text."""

from __future__ import annotations

import datetime
import os

from foglayer.snapshot import _format
from foglayer.wasi import _abi as abi

_KINDS = {abi.FT_REG: "file", abi.FT_DIR: "dir", abi.FT_CHAR: "chardev",
          abi.FT_UNKNOWN: "stream", abi.FT_STREAM: "socket", abi.FT_DGRAM: "socket",
          abi.FT_SYMLINK: "symlink", abi.FT_BLOCK: "blockdev"}


def _size(n: int) -> str:
    from foglayer.runtime import format_size

    return format_size(n)


def _global_value(g: dict) -> str:
    v = g["value"]
    if g["type"] in ("f32", "f64"):
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
    mem = m["memory"]
    mod = m["module"]
    out = [f"snapshot       {snap.where}",
           f"format         version {m['format']} ({m.get('kind', '?')} snapshot, "
           f"foglayer {m.get('foglayer', '?')})"]
    if "created" in m:
        when = datetime.datetime.fromtimestamp(m["created"]).isoformat(timespec="seconds")
        host = m.get("host", {})
        out.append(f"taken          {when} on {host.get('node', '?')} ({host.get('machine', '?')})")
    out.append(f"module         sha256 {mod['original_digest']}")
    if mod.get("digest") != mod.get("original_digest"):
        out.append(f"checkpointable sha256 {mod['digest']}")
    if mod.get("path"):
        out.append(f"module path    {mod['path']}")
    blobs = m.get("blobs", {})
    stored_bytes = sum(e[3] for e in mem["table"])
    out.append(f"memory         {mem['pages']} pages ({_size(mem['pages'] * mem['page_size'])}); "
               f"{mem['stored']} stored, {mem['pages'] - mem['stored']} zero")
    out.append(f"page data      {_size(stored_bytes)} ({mem['compression']}); file {_size(file_size)}"
               + (f"; carries the module ({_size(blobs['module']['length'])})" if "module" in blobs else "")
               + (f"; carries the preopened files ({_size(blobs['files']['length'])})"
                  if "files" in blobs else ""))
    if "asyncify" in m:
        a = m["asyncify"]
        out.append(f"asyncify       buffer at 0x{a['buffer']:x} ({_size(a['size'])}), "
                   f"{a['used']} bytes of stack data")
    if "lineage" in m:
        lin = m["lineage"]
        out.append(f"lineage        checkpoint {lin.get('checkpoints', 0)}, "
                   f"after {lin.get('restores', 0)} restores")
    out.append(f"globals        {len(m['globals'])}")
    for g in m["globals"]:
        name = g.get("name") or f"global {g['index']}"
        out.append(f"  {name:<20} {g['type']} {'mut' if g['mutable'] else 'const'} "
                   f"= {_global_value(g)}")
    w = m["wasi"]
    out.append(f"args           {' '.join(w['args'])}")
    if w["env"]:
        out.append(f"env            {' '.join(f'{k}={v}' for k, v in w['env'].items())}")
    for p in w["preopens"]:
        out.append(f"preopen        {p['guest']} -> {p['host']}{' (read-only)' if p['readonly'] else ''}")
    out.append(f"descriptors    {len(w['fds'])}")
    for fd, d in sorted(w["fds"].items(), key=lambda kv: int(kv[0])):
        kind = _KINDS.get(d["kind"], str(d["kind"]))
        where = d["guest_path"] if d["stdio"] < 0 else f"<stdio {d['stdio']}>"
        line = f"  fd {fd:<3} {kind:<8} {where}"
        if d["kind"] == abi.FT_REG and d["stdio"] < 0:
            line += f"  offset {d['offset']}"
            if d["open_flags"] & os.O_APPEND:
                line += " (append)"
            line += f"  host {d['host_path']}"
        out.append(line)
    for rec in m.get("files", []):
        out.append(f"  file fd {rec['fd']}: {rec['size']} bytes, sha256 {rec['sha256'][:16]}…")
    return "\n".join(out)
