"""The snapshot format: versioned, self-describing, portable, no pickles.

Layout (all integers little-endian)::

    header   "FOGSNAP\\0"  u32 format version  u32 flags (0)  u64 metadata length
    metadata JSON (UTF-8), typed and versioned: :class:`SnapshotMeta` (``_meta.py``)
    data     the stored pages, one after another (each zstd-compressed, or raw), then
             named blobs, each with its declared unpacked size and sha256: the
             checkpointable module (zstd), and with ``--with-files`` a zstd-compressed
             tar of the preopened directories
    trailer  u64 length of everything before the trailer  u32 CRC-32 of it
             32-byte HMAC-SHA256 of the metadata under the writing user's key  "FEND"

The page table lists ``[page index, sha256/128 of the raw page, offset, length]`` for
every 64 KiB page that is not all zeros; pages left out are zero. The per-page hashes
let a live migration send only the pages that changed (:func:`diff_pages`).

Everything read is untrusted: the metadata is checked whole before use, and every
decompression is streamed and capped at its declared size and at the reader's limit.
The HMAC only says "written by this user on this machine": such a snapshot may name
the host directories of its preopens; any other must be granted them by the restore.
"""

from __future__ import annotations

import ctypes
import hashlib
import hmac
import io
import mmap
import os
import struct
import threading
import zlib
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import msgspec
import zstandard

from foglayer.snapshot._errors import SnapshotError
from foglayer.snapshot._meta import (
    FORMAT_VERSION,
    PAGE,
    BlobMeta,
    MemoryMeta,
    PageEntry,
    SnapshotMeta,
    decode_meta,
    encode_meta,
)

MAGIC = b"FOGSNAP\0"
HEADER = struct.Struct("<8sIIQ")
TRAILER = struct.Struct("<QI32s4s")
TRAILER_MAGIC = b"FEND"
NO_MAC = bytes(32)
MAX_WINDOW = 1 << 23  # zstd window a reader accepts (our writers use far less)
BLOB_LEVEL = 3
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


@dataclass(frozen=True, slots=True)
class PackedBlob:
    """A blob ready to store: its stored bytes and what they unpack to."""

    data: bytes
    size: int
    sha256: str
    compression: str = "zstd"


def pack_blob(raw: bytes | memoryview, level: int = BLOB_LEVEL) -> PackedBlob:
    return PackedBlob(zstandard.ZstdCompressor(level=level).compress(raw), len(raw),
                      hashlib.sha256(raw).hexdigest())


# -- the writing user's key: "this snapshot was written by me, here" --------------------


_KEYS: dict[str, bytes | None] = {}


def _key() -> bytes | None:
    """This user's snapshot key (created on first use, 0600 in a 0700 directory)."""
    from foglayer._dirs import data_dir

    d = data_dir("keys")
    if str(d) not in _KEYS:
        _KEYS[str(d)] = _read_key(d)
    return _KEYS[str(d)]


def _read_key(d: Path) -> bytes | None:
    path = d / "snapshot.key"
    try:
        os.chmod(d, 0o700)
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        tmp = d / f".snapshot.key.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(32))
        try:
            os.link(tmp, path)  # atomic, and never over another process's key
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
        return _read_key(d)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if st.st_uid != os.getuid() or st.st_mode & 0o077:
            return None  # not ours alone: trust nothing signed with it
        key = f.read(64)
    return key if len(key) == 32 else None


def _mac(head: bytes) -> bytes:
    key = _key()
    return hmac.digest(key, head, "sha256") if key else NO_MAC


class _CrcWriter:
    def __init__(self, f: BinaryIO) -> None:
        self.f, self.crc, self.n = f, 0, 0

    def write(self, data: bytes | memoryview) -> None:
        self.f.write(data)
        self.crc = zlib.crc32(data, self.crc)
        self.n += len(data)


def write_snapshot(f: BinaryIO, meta: SnapshotMeta, memory: memoryview | None,
                   *, level: int | None = DEFAULT_LEVEL,
                   blobs: Mapping[str, PackedBlob] | None = None) -> SnapshotMeta:
    """Write a whole snapshot to ``f``; fills in the memory table and blobs; returns the meta."""
    pages = encode_pages(memory, level) if memory is not None else []
    table, offset = [], 0
    for index, digest, data in pages:
        table.append(PageEntry(index, digest, offset, len(data)))
        offset += len(data)
    memory_meta = MemoryMeta(pages=len(memory) // PAGE if memory is not None else 0,
                             compression="zstd" if level else "none", table=table)
    blob_meta = {}
    for name, blob in (blobs or {}).items():
        blob_meta[name] = BlobMeta(offset, len(blob.data), blob.size, blob.compression,
                                   blob.sha256)
        offset += len(blob.data)
    meta = msgspec.structs.replace(meta, memory=memory_meta, blobs=blob_meta,
                                   format=FORMAT_VERSION)
    write_parts(f, encode_meta(meta), [data for _, _, data in pages]
                + [blob.data for blob in (blobs or {}).values()])
    return meta


def write_parts(f: BinaryIO, head: bytes, parts: Iterable[bytes | memoryview], *,
                sign: bool = True) -> None:
    """Frame encoded metadata and the data area: header, CRC, and this user's HMAC."""
    w = _CrcWriter(f)
    w.write(HEADER.pack(MAGIC, FORMAT_VERSION, 0, len(head)))
    w.write(head)
    for part in parts:
        w.write(part)
    f.write(TRAILER.pack(w.n, w.crc, _mac(head) if sign else NO_MAC, TRAILER_MAGIC))


def private_file(path: str | os.PathLike) -> BinaryIO:
    """A new file only this user can read (snapshots hold all of a guest's memory)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600)
    return os.fdopen(fd, "wb")


def save(path: str | os.PathLike, meta: SnapshotMeta, memory: memoryview | None,
         *, level: int | None = DEFAULT_LEVEL, blobs: Mapping[str, PackedBlob] | None = None,
         fsync: bool = True, seal: Callable[[bytes], bytes] | None = None) -> SnapshotMeta:
    """Write a snapshot file atomically (0600): a temp file beside it, then a rename. With
    ``seal``, the snapshot is built in memory and only ``seal(bytes)`` reaches the disk."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        with private_file(tmp) as f:
            if seal is None:
                meta = write_snapshot(f, meta, memory, level=level, blobs=blobs)
            else:
                buf = io.BytesIO()
                meta = write_snapshot(buf, meta, memory, level=level, blobs=blobs)
                f.write(seal(buf.getvalue()))
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise SnapshotError(f"{path}: cannot write the snapshot: {e.strerror}") from None
    return meta


# -- reading ---------------------------------------------------------------------------


def _decompressor() -> zstandard.ZstdDecompressor:
    return zstandard.ZstdDecompressor(max_window_size=MAX_WINDOW)


def unzstd_page(d: zstandard.ZstdDecompressor, data: memoryview | bytes) -> bytes:
    """One stored page back to its 64 KiB: a frame that declares anything else is refused
    before any memory is allocated for it (zstd trusts a frame's declared size)."""
    try:
        if zstandard.frame_content_size(data) != PAGE:
            raise SnapshotError("a stored page does not unpack to 64 KiB")
        out = d.decompress(data, max_output_size=PAGE)
    except zstandard.ZstdError as e:
        raise SnapshotError(f"a stored page is corrupted ({e})") from None
    if len(out) != PAGE:
        raise SnapshotError("a stored page does not unpack to 64 KiB")
    return out


@dataclass
class Snapshot:
    """A snapshot read and checked: its metadata, and its data (pages, files archive)."""

    meta: SnapshotMeta
    data: memoryview  # the data area: pages then the blobs
    where: str = "<bytes>"
    trusted: bool = False  # written by this user here (its HMAC verifies)
    _keep: list = field(default_factory=list, repr=False)

    @property
    def compression(self) -> str:
        return self.meta.memory.compression

    def page_table(self) -> list[PageEntry]:
        return self.meta.memory.table

    def pages(self) -> list[tuple[int, bytes | memoryview]]:
        """``(index, raw 64 KiB)`` for every stored page."""
        if self.compression == "zstd":
            d = _decompressor()
            return [(e.index, self._page(d, e)) for e in self.page_table()]
        return [(e.index, self.data[e.offset:e.offset + e.length]) for e in self.page_table()]

    def _page(self, d: zstandard.ZstdDecompressor, e: PageEntry) -> bytes:
        try:
            return unzstd_page(d, self.data[e.offset:e.offset + e.length])
        except SnapshotError as err:
            raise SnapshotError(f"{self.where}: page {e.index}: {err}") from None

    def load_into(self, view: memoryview, threads: int = 2) -> None:
        """Write every stored page into ``view`` (linear memory, already big enough)."""
        table = self.page_table()
        if table and table[-1].index * PAGE + PAGE > len(view):
            raise SnapshotError(f"{self.where}: page {table[-1].index} is outside memory")
        zstd = self.compression == "zstd"
        if len(table) < _PARALLEL_PAGES or threads < 2:
            self._load_pages(view, table, zstd)
            return
        step = 64
        chunks = [table[k:k + step] for k in range(0, len(table), step)]
        list(_get_pool(threads).map(lambda c: self._load_pages(view, c, zstd), chunks))

    def _load_pages(self, view: memoryview, table: list[PageEntry], zstd: bool) -> None:
        data = self.data
        if zstd:
            d = getattr(_local, "decompressor", None)
            if d is None:
                d = _local.decompressor = _decompressor()
            for e in table:
                view[e.index * PAGE:(e.index + 1) * PAGE] = self._page(d, e)
        else:
            for e in table:
                view[e.index * PAGE:(e.index + 1) * PAGE] = data[e.offset:e.offset + PAGE]

    def blob(self, name: str, limit: int) -> bytes | None:
        """A blob unpacked in memory: at most its declared size, and at most ``limit``."""
        import io

        out = io.BytesIO()
        return out.getvalue() if self.blob_to(name, out, limit) else None

    def blob_to(self, name: str, out: BinaryIO, limit: int) -> bool:
        """Stream a blob, unpacked, into ``out``: capped at its declared size and ``limit``,
        checked against its sha256. False if the snapshot has no such blob."""
        b = self.meta.blobs.get(name)  # type: ignore[call-overload]
        if b is None:
            return False
        where = f"{self.where}: the {name} it carries"
        if b.size > limit:
            raise SnapshotError(f"{where} declares {b.size} bytes unpacked, over the limit "
                                f"of {limit} bytes")
        raw = self.data[b.offset:b.offset + b.length]
        h, n = hashlib.sha256(), 0
        try:
            reader = (_decompressor().stream_reader(raw, read_across_frames=True)
                      if b.compression == "zstd" else None)
            while True:
                chunk = reader.read(1 << 20) if reader is not None else raw[n:n + (1 << 20)]
                if not chunk:
                    break
                n += len(chunk)
                if n > b.size:
                    raise SnapshotError(f"{where} unpacks to more than its declared "
                                        f"{b.size} bytes")
                h.update(chunk)
                out.write(chunk)
        except zstandard.ZstdError as e:
            raise SnapshotError(f"{where} is corrupted ({e})") from None
        if n != b.size or h.hexdigest() != b.sha256:
            raise SnapshotError(f"{where} does not match its declared size and sha256")
        return True

    def close(self) -> None:
        self.data.release()
        for obj in self._keep:
            try:
                obj.release() if isinstance(obj, memoryview) else obj.close()
            except BufferError:
                pass  # a page view is still in use; the map closes when it is dropped
        self._keep.clear()


def _bad(where: str, what: str) -> SnapshotError:
    return SnapshotError(f"{where}: {what}")


def parse(buf: bytes | mmap.mmap | memoryview, where: str = "<bytes>") -> Snapshot:
    """Check and parse a snapshot held in memory (bytes or an mmap)."""
    view = memoryview(buf)
    n = len(view)
    if n < HEADER.size or bytes(view[:8]) != MAGIC:
        if bytes(view[:7]) == b"FOGSEAL":  # (foglayer.trust's sealed files)
            raise _bad(where, "a sealed snapshot: only fog restore opens it, in memory, where "
                              "its key is released")
        raise _bad(where, "not a foglayer snapshot (bad magic number)")
    _magic, version, _flags, meta_len = HEADER.unpack_from(view, 0)
    if version > FORMAT_VERSION:
        raise _bad(where, f"snapshot format version {version} is newer than this foglayer "
                          f"reads (up to {FORMAT_VERSION}): upgrade foglayer")
    if version < FORMAT_VERSION:
        raise _bad(where, f"snapshot format version {version} is no longer read (it named "
                          f"files by host path); take a new snapshot")
    body_end = n - TRAILER.size
    if n < HEADER.size + TRAILER.size or body_end < HEADER.size + meta_len:
        raise _bad(where, f"truncated snapshot ({n} bytes, cut before the end of its data)")
    length, crc, mac, tmagic = TRAILER.unpack_from(view, body_end)
    if tmagic != TRAILER_MAGIC or length != body_end:
        raise _bad(where, f"truncated snapshot ({n} bytes; its end marker is missing)")
    if zlib.crc32(view[:body_end]) != crc:
        raise _bad(where, "corrupted snapshot (checksum mismatch)")
    head = bytes(view[HEADER.size:HEADER.size + meta_len])
    data = view[HEADER.size + meta_len:body_end]
    meta = decode_meta(head, len(data), where)
    trusted = mac != NO_MAC and hmac.compare_digest(mac, _mac(head))
    return Snapshot(meta, data, where, trusted, [view])


def load(path: str | os.PathLike, unseal: Callable[[bytes, str], bytes] | None = None
         ) -> Snapshot:
    """Open, check and parse a snapshot file (memory-mapped: pages are read on demand).
    ``unseal(bytes, where)`` opens a file that is not a plain snapshot (fog run --seal): it
    is read and opened in memory."""
    where = os.fspath(path)
    if unseal is not None and not _starts_with_magic(path):
        try:
            blob = Path(path).read_bytes()
        except OSError as e:
            raise _bad(where, f"cannot read: {e.strerror}") from None
        return parse(memoryview(unseal(blob, where)), where)
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


def _starts_with_magic(path: str | os.PathLike) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except OSError:
        return True  # (load says what is wrong with it)


def read_meta(path: str | os.PathLike) -> SnapshotMeta:
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


def diff_pages(old: SnapshotMeta | Snapshot, new: SnapshotMeta | Snapshot) -> PageDiff:
    """Compare two snapshots' page tables (by page hash); nothing is decompressed."""
    om = old.meta if isinstance(old, Snapshot) else old
    nm = new.meta if isinstance(new, Snapshot) else new
    before = {e.index: e.hash for e in om.memory.table}
    after = {e.index: e.hash for e in nm.memory.table}
    changed = sorted(i for i, h in after.items() if before.get(i) != h)
    zeroed = sorted(i for i in before if i not in after and i < nm.memory.pages)
    return PageDiff(changed, zeroed, len(after) - len(changed), nm.memory.pages)
