"""Crafted snapshots: real ones written by the format's own writer, then tampered with."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import msgspec

from foglayer.snapshot import _format, load_snapshot


def meta_dict(path: Path) -> dict:
    snap = load_snapshot(path)
    try:
        return msgspec.to_builtins(snap.meta)
    finally:
        snap.close()


def tamper(src: Path, dst: Path, edit: Callable[[dict], None] | None = None, *,
           data: bytes | None = None, sign: bool = False) -> Path:
    """``src`` with its metadata edited (as plain JSON) and its data area replaced.

    Unsigned by default: an attacker cannot compute the victim's HMAC.
    """
    snap = load_snapshot(src)
    try:
        meta = msgspec.to_builtins(snap.meta)
        body = bytes(snap.data) if data is None else data
    finally:
        snap.close()
    if edit is not None:
        edit(meta)
    with open(dst, "wb") as f:
        _format.write_parts(f, json.dumps(meta).encode(), [body], sign=sign)
    return dst


def replace_blob(src: Path, dst: Path, name: str, raw: bytes, *, packed: bytes | None = None,
                 size: int | None = None, edit: Callable[[dict], None] | None = None) -> Path:
    """``src`` with its blob ``name`` (the last one in the data area) replaced."""
    snap = load_snapshot(src)
    try:
        body = bytes(snap.data)
        b = snap.meta.blobs[name]
    finally:
        snap.close()
    assert b.offset + b.length == len(body), "the replaced blob must be the last one"
    blob = _format.pack_blob(raw)
    stored = blob.data if packed is None else packed

    def edit_meta(meta: dict) -> None:
        meta["blobs"][name] = {"offset": b.offset, "length": len(stored),
                               "size": blob.size if size is None else size,
                               "compression": "zstd", "sha256": blob.sha256}
        if edit is not None:
            edit(meta)

    return tamper(src, dst, edit_meta, data=body[:b.offset] + stored)


def zstd_bomb(size: int) -> bytes:
    """A small zstd frame that declares and unpacks to ``size`` zero bytes."""
    import zstandard

    c = zstandard.ZstdCompressor(level=1).compressobj(size=size)
    chunk = bytes(1 << 20)
    out = [c.compress(chunk) for _ in range(size >> 20)]
    out.append(c.flush())
    return b"".join(out)


def tree(root: Path) -> set[str]:
    return {os.path.relpath(os.path.join(d, n), root)
            for d, ds, fs in os.walk(root) for n in ds + fs}
