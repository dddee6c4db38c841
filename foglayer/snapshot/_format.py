"""The snapshot format: versioned, self-describing, portable, no pickles.

Layout (all integers little-endian)::

    header   "FOGSNAP\\0"  u32 format version  u32 flags (0)  u64 metadata length
    metadata JSON (UTF-8): modules, globals, memory size, the page table, WASI state,
             Asyncify buffer, open files...
    data     the stored pages, one after another (each zstd-compressed, or raw), then
             named blobs: the checkpointable module (zstd), and with ``--with-files``
             a zstd-compressed tar of the preopened directories
    trailer  u64 length of everything before the trailer  u32 CRC-32 of it  "FEND"

The page table lists ``[page index, sha256/128 of the raw page, offset, length]`` for
every 64 KiB page that is not all zeros; pages left out are zero. The per-page hashes
let a live migration send only the pages that changed (:func:`diff_pages`).
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import mmap
import os
import struct
import threading
import zlib
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import zstandard

from foglayer.snapshot._errors import SnapshotError

FORMAT_VERSION = 1
MAGIC = b"FOGSNAP\0"
HEADER = struct.Struct("<8sIIQ")
TRAILER = struct.Struct("<QI4s")
TRAILER_MAGIC = b"FEND"
PAGE = 65536
ZERO_PAGE = bytes(PAGE)
DEFAULT_LEVEL = 1  # zstd level: fast; 0 or None stores raw pages
_PARALLEL_PAGES = 64  # non-zero pages below which one thread is faster than two


def page_hash(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


# -- writing ---------------------------------------------------------------------------


_memcmp = ctypes.CDLL(None).memcmp
_memcmp.restype = ctypes.c_int
_memcmp.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
_ZERO_BUF = ctypes.create_string_buffer(PAGE)


def nonzero_pages(view: memoryview) -> list[int]:
    """Indices of the 64 KiB pages of ``view`` that are not all zeros (memcmp, no copies)."""
    npages = len(view) // PAGE
    if view.readonly:
        return [i for i in range(npages) if view[i * PAGE:(i + 1) * PAGE].tobytes() != ZERO_PAGE]
    base = ctypes.addressof(ctypes.c_char.from_buffer(view))
    zero = ctypes.addressof(_ZERO_BUF)
    return [i for i in range(npages) if _memcmp(base + i * PAGE, zero, PAGE)]


_local = threading.local()
_pool: ThreadPoolExecutor | None = None


def _get_pool(threads: int) -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(threads, thread_name_prefix="fog-snapshot")
    return _pool


def _forget_pool() -> None:
    global _pool, _local
    _pool = None  # its threads do not exist in a forked child
    _local = threading.local()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _compressor(level: int) -> Callable[[memoryview], bytes]:
    cs = getattr(_local, "compressors", None)
    if cs is None:
        cs = _local.compressors = {}
    c = cs.get(level)
    if c is None:
        c = cs[level] = zstandard.ZstdCompressor(level=level).compress
    return c


def _encode(view: memoryview, indices: list[int], level: int | None) -> list[tuple]:
    compress = _compressor(level) if level else None
    out = []
    for index in indices:
        page = view[index * PAGE:(index + 1) * PAGE]
        out.append((index, page_hash(page), compress(page) if compress else page))
    return out


def encode_pages(view: memoryview, level: int | None = DEFAULT_LEVEL,
                 threads: int = 2) -> list[tuple[int, str, bytes | memoryview]]:
    """``(index, hash, stored bytes)`` of every non-zero page of ``view``.

    Hashing and compression run on ``threads`` threads (both release the GIL).
    Uncompressed pages are views into ``view``: write them out before memory changes.
    """
    nonzero = nonzero_pages(view)
    if len(nonzero) < _PARALLEL_PAGES or threads < 2:
        return _encode(view, nonzero, level)
    step = 64
    chunks = [nonzero[k:k + step] for k in range(0, len(nonzero), step)]
    return [p for part in _get_pool(threads).map(lambda c: _encode(view, c, level), chunks)
            for p in part]


class _CrcWriter:
    def __init__(self, f: BinaryIO) -> None:
        self.f, self.crc, self.n = f, 0, 0

    def write(self, data: bytes | memoryview) -> None:
        self.f.write(data)
        self.crc = zlib.crc32(data, self.crc)
        self.n += len(data)


def write_snapshot(f: BinaryIO, meta: dict[str, Any], memory: memoryview | None,
                   *, level: int | None = DEFAULT_LEVEL,
                   blobs: Mapping[str, bytes] | None = None) -> dict:
    """Write a whole snapshot to ``f``; fills in ``meta['memory']``; returns ``meta``."""
    pages = encode_pages(memory, level) if memory is not None else []
    table, offset = [], 0
    for index, digest, data in pages:
        table.append([index, digest, offset, len(data)])
        offset += len(data)
    meta = dict(meta)
    meta["format"] = FORMAT_VERSION
    meta["memory"] = {
        "pages": len(memory) // PAGE if memory is not None else 0,
        "page_size": PAGE,
        "stored": len(table),
        "compression": "zstd" if level else "none",
        "table": table,
    }
    meta["blobs"] = {}
    for name, blob in (blobs or {}).items():
        meta["blobs"][name] = {"offset": offset, "length": len(blob)}
        offset += len(blob)
    head = json.dumps(meta, separators=(",", ":")).encode()
    w = _CrcWriter(f)
    w.write(HEADER.pack(MAGIC, FORMAT_VERSION, 0, len(head)))
    w.write(head)
    for _, _, data in pages:
        w.write(data)
    for blob in (blobs or {}).values():
        w.write(blob)
    f.write(TRAILER.pack(w.n, w.crc, TRAILER_MAGIC))
    return meta


def save(path: str | os.PathLike, meta: dict[str, Any], memory: memoryview | None,
         *, level: int | None = DEFAULT_LEVEL, blobs: Mapping[str, bytes] | None = None,
         fsync: bool = True) -> dict:
    """Write a snapshot file atomically: a temp file beside it, then a rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            meta = write_snapshot(f, meta, memory, level=level, blobs=blobs)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise SnapshotError(f"{path}: cannot write the snapshot: {e.strerror}") from None
    return meta


# -- reading ---------------------------------------------------------------------------


@dataclass
class Snapshot:
    """A snapshot read and checked: its metadata, and its data (pages, files archive)."""

    meta: dict[str, Any]
    data: memoryview  # the data area: pages then the files archive
    where: str = "<bytes>"
    _keep: list = field(default_factory=list, repr=False)

    @property
    def compression(self) -> str:
        return self.meta["memory"]["compression"]

    def page_table(self) -> list[list]:
        return self.meta["memory"]["table"]

    def pages(self) -> list[tuple[int, bytes | memoryview]]:
        """``(index, raw 64 KiB)`` for every stored page."""
        out = []
        if self.compression == "zstd":
            d = zstandard.ZstdDecompressor()
            for index, _digest, off, length in self.page_table():
                out.append((index, d.decompress(self.data[off:off + length], max_output_size=PAGE)))
        else:
            for index, _digest, off, length in self.page_table():
                out.append((index, self.data[off:off + length]))
        return out

    def load_into(self, view: memoryview, threads: int = 2) -> None:
        """Write every stored page into ``view`` (linear memory, already big enough)."""
        table = self.page_table()
        zstd = self.compression == "zstd"
        if len(table) < _PARALLEL_PAGES or threads < 2:
            _load_pages(view, self.data, table, zstd)
            return
        step = 64
        chunks = [table[k:k + step] for k in range(0, len(table), step)]
        list(_get_pool(threads).map(lambda c: _load_pages(view, self.data, c, zstd), chunks))

    def blob(self, name: str) -> bytes | None:
        b = self.meta.get("blobs", {}).get(name)
        if not b:
            return None
        return bytes(self.data[b["offset"]:b["offset"] + b["length"]])

    def close(self) -> None:
        self.data.release()
        for obj in self._keep:
            try:
                obj.release() if isinstance(obj, memoryview) else obj.close()
            except BufferError:
                pass  # a page view is still in use; the map closes when it is dropped
        self._keep.clear()


def _load_pages(view: memoryview, data: memoryview, table: list[list], zstd: bool) -> None:
    if zstd:
        d = getattr(_local, "decompressor", None)
        if d is None:
            d = _local.decompressor = zstandard.ZstdDecompressor()
        for index, _digest, off, length in table:
            view[index * PAGE:(index + 1) * PAGE] = d.decompress(data[off:off + length],
                                                                 max_output_size=PAGE)
    else:
        for index, _digest, off, _length in table:
            view[index * PAGE:(index + 1) * PAGE] = data[off:off + PAGE]


def _bad(where: str, what: str) -> SnapshotError:
    return SnapshotError(f"{where}: {what}")


def parse(buf: bytes | mmap.mmap | memoryview, where: str = "<bytes>") -> Snapshot:
    """Check and parse a snapshot held in memory (bytes or an mmap)."""
    view = memoryview(buf)
    n = len(view)
    if n < HEADER.size or bytes(view[:8]) != MAGIC:
        raise _bad(where, "not a foglayer snapshot (bad magic number)")
    _magic, version, _flags, meta_len = HEADER.unpack_from(view, 0)
    if version > FORMAT_VERSION:
        raise _bad(where, f"snapshot format version {version} is newer than this foglayer "
                          f"reads (up to {FORMAT_VERSION}): upgrade foglayer")
    if version < 1:
        raise _bad(where, f"unknown snapshot format version {version}")
    body_end = n - TRAILER.size
    if body_end < HEADER.size + meta_len or n < HEADER.size + TRAILER.size:
        raise _bad(where, f"truncated snapshot ({n} bytes, cut before the end of its data)")
    length, crc, tmagic = TRAILER.unpack_from(view, body_end)
    if tmagic != TRAILER_MAGIC or length != body_end:
        raise _bad(where, f"truncated snapshot ({n} bytes; its end marker is missing)")
    if zlib.crc32(view[:body_end]) != crc:
        raise _bad(where, "corrupted snapshot (checksum mismatch)")
    try:
        meta = json.loads(bytes(view[HEADER.size:HEADER.size + meta_len]))
        if not isinstance(meta, dict) or meta.get("format") != version:
            raise ValueError("format field")
        data = view[HEADER.size + meta_len:body_end]
        spans = [(e[2], e[3]) for e in meta["memory"]["table"]]
        spans += [(b["offset"], b["length"]) for b in meta.get("blobs", {}).values()]
        for off, length in spans:
            if off < 0 or length < 0 or off + length > len(data):
                raise ValueError("data out of range")
    except (ValueError, KeyError, TypeError) as e:
        raise _bad(where, f"corrupted snapshot (bad metadata: {e})") from None
    return Snapshot(meta, data, where, [view])


def load(path: str | os.PathLike) -> Snapshot:
    """Open, check and parse a snapshot file (memory-mapped: pages are read on demand)."""
    where = os.fspath(path)
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise _bad(where, "no such file") from None
    except IsADirectoryError:
        raise _bad(where, "is a directory, not a snapshot") from None
    except OSError as e:
        raise _bad(where, f"cannot read: {e.strerror}") from None
    try:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise _bad(where, "not a foglayer snapshot (empty file)")
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except BaseException:
        f.close()
        raise
    try:
        snap = parse(mm, where)
    except BaseException:
        f.close()
        try:
            mm.close()
        except BufferError:
            pass  # views of it live on in the traceback; it closes when they go
        raise
    snap._keep += [mm, f]  # after the view: released first
    return snap


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    snap = load(path)
    try:
        return snap.meta
    finally:
        snap.close()


# -- pre-copy: what changed between two snapshots ---------------------------------------


@dataclass(frozen=True, slots=True)
class PageDiff:
    """Pages to send to turn the ``old`` memory into the ``new`` one."""

    changed: list[int]  # stored in new, and absent or different in old
    zeroed: list[int]  # stored in old, all zero in new
    unchanged: int
    pages: int  # memory size of new, in pages

    @property
    def bytes_to_send(self) -> int:
        return len(self.changed) * PAGE


def diff_pages(old: dict[str, Any] | Snapshot, new: dict[str, Any] | Snapshot) -> PageDiff:
    """Compare two snapshots' page tables (by page hash); nothing is decompressed."""
    om = old.meta if isinstance(old, Snapshot) else old
    nm = new.meta if isinstance(new, Snapshot) else new
    before = {e[0]: e[1] for e in om["memory"]["table"]}
    after = {e[0]: e[1] for e in nm["memory"]["table"]}
    changed = sorted(i for i, h in after.items() if before.get(i) != h)
    zeroed = sorted(i for i in before if i not in after and i < nm["memory"]["pages"])
    return PageDiff(changed, zeroed, len(after) - len(changed), nm["memory"]["pages"])
