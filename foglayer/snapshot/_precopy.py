"""Pre-copy: linear memory moves in rounds of changed pages while the source runs.

The source side (:class:`PageStream`) remembers the hash of every page the target has;
each round sends the pages whose hash changed (and zero entries for pages that became
zero), as bounded, self-describing, hashed chunks. The target side (:class:`PageSink`)
is an instance prepared early; it checks each chunk whole (its sha256, the declared sizes,
every page's hash after a capped decompression) before one byte goes into memory.
The last round is taken while the source is stopped, with its state (:func:`final_state`:
globals, the Asyncify stack, the WASI state, as an ordinary snapshot without pages);
:func:`finish_service` / :func:`finish_command` put it into the target.

Chunk layout (integers little-endian)::

    "FOGPAGE\\0"  u32 version  u32 header length  header JSON (:class:`ChunkHeader`)
    page data (each page zstd or raw; zero pages have none)  sha256 of all before it
"""

from __future__ import annotations

import hashlib
import hmac
import io
import mmap
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Literal

import msgspec
import zstandard

from foglayer.snapshot import _format
from foglayer.snapshot._dirty import differing
from foglayer.snapshot._errors import SnapshotError
from foglayer.snapshot._meta import (
    MAX_PAGES,
    MAX_STORED_PAGE,
    PAGE,
    MemoryMeta,
    SnapshotMeta,
    encode_meta,
)

if TYPE_CHECKING:
    from foglayer.runtime import Instance
    from foglayer.snapshot._capture import Session
    from foglayer.wasi import MemoryDirs

CHUNK_MAGIC = b"FOGPAGE\0"
CHUNK_VERSION = 1
_HEAD = struct.Struct("<8sII")
MAX_HEADER = 1 << 20
CHUNK_PAGES = 64  # pages per chunk: at most 4 MiB raw, so a chunk fits a NATS message
MAX_CHUNK = CHUNK_PAGES * MAX_STORED_PAGE + MAX_HEADER + 4096
ZERO_HASH = _format.page_hash(_format.ZERO_PAGE)


class ChunkPage(msgspec.Struct, array_like=True, frozen=True):
    """``[index, hash of the raw page, offset in the chunk's data, stored length]``;
    length 0: the page is now all zeros."""

    index: Annotated[int, msgspec.Meta(ge=0, lt=MAX_PAGES)]
    hash: Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{32}$")]
    offset: Annotated[int, msgspec.Meta(ge=0, le=MAX_CHUNK)]
    length: Annotated[int, msgspec.Meta(ge=0, le=MAX_STORED_PAGE)]


class ChunkHeader(msgspec.Struct, forbid_unknown_fields=True):
    round: Annotated[int, msgspec.Meta(ge=0, lt=1 << 32)]
    seq: Annotated[int, msgspec.Meta(ge=0, lt=1 << 32)]
    memory_pages: Annotated[int, msgspec.Meta(ge=0, le=MAX_PAGES)]  # source memory size
    compression: Literal["zstd", "none"]
    data_length: Annotated[int, msgspec.Meta(ge=0, le=MAX_CHUNK)]
    pages: Annotated[list[ChunkPage], msgspec.Meta(max_length=CHUNK_PAGES)]


_header_decoder = msgspec.json.Decoder(ChunkHeader)


def map_digest(hashes: dict[int, str]) -> str:
    """One hash for a whole memory: its non-zero pages' indices and hashes."""
    h = hashlib.sha256()
    for index in sorted(hashes):
        h.update(b"%d:%s;" % (index, hashes[index].encode()))
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class Round:
    """One round of a pre-copy: its chunks and what they carry."""

    number: int
    chunks: list[bytes]
    pages: int  # pages sent (zero entries included)
    bytes: int  # bytes of the chunks

    @property
    def empty(self) -> bool:
        return self.pages == 0


@dataclass(slots=True)
class PendingRound:
    """A round whose chunks are built on demand (:meth:`PageStream.build`), in order."""

    number: int
    dirty: list[int]  # the pages that differed when the round opened
    chunk_pages: int
    built: int = 0  # chunks built so far
    pages: int = 0  # pages they carry
    bytes: int = 0  # and their bytes

    @property
    def count(self) -> int:
        """How many chunks it has (at least one: it tells the memory size)."""
        return max(1, -(-len(self.dirty) // self.chunk_pages))


# -- the source -------------------------------------------------------------------------


class PageStream:
    """The sending side: rounds of the pages the target does not have yet.

    ``read`` returns a view of the source's linear memory as it is now (it may be called
    while the source runs: a page torn by a concurrent write is sent again next round,
    because the hash sent is the hash of the very bytes sent).
    """

    def __init__(self, read: Callable[[], memoryview], *, level: int | None = 1,
                 chunk_pages: int = CHUNK_PAGES) -> None:
        if not 1 <= chunk_pages <= CHUNK_PAGES:
            raise ValueError(f"chunk_pages must be 1..{CHUNK_PAGES}")
        self.read, self.level, self.chunk_pages = read, level, chunk_pages
        self.sent: dict[int, str] = {}  # index -> hash, of the non-zero pages the target has
        self.rounds = 0
        # What the target has, byte for byte: a round finds changed pages by comparing
        # memory with it (_dirty: one native call), far faster than hashing them
        # (anonymous memory: untouched pages cost nothing).
        self._shadow = mmap.mmap(-1, PAGE)

    def _shadow_for(self, size: int) -> memoryview:
        if len(self._shadow) < size:
            bigger = mmap.mmap(-1, size)
            bigger[:len(self._shadow)] = self._shadow
            self._shadow.close()
            self._shadow = bigger
        return memoryview(self._shadow)

    def dirty(self) -> list[int]:
        """Pages whose content differs from what the target has."""
        view = self.read()
        shadow = self._shadow_for(len(view))
        try:
            return differing(view, shadow, len(view) // PAGE)
        finally:
            shadow.release()

    def open_round(self) -> PendingRound:
        """The pages that changed since the last round; its chunks are built one at a time
        by :meth:`build` (a round of 1 GiB never sits in memory as chunks)."""
        dirty = self.dirty()
        number, self.rounds = self.rounds, self.rounds + 1
        return PendingRound(number, dirty, self.chunk_pages)

    def build(self, rnd: PendingRound, seq: int) -> bytes:
        """Chunk ``seq`` of ``rnd`` from memory as it is now (built in order, each once)."""
        if seq != rnd.built or seq >= rnd.count:
            raise ValueError(f"chunk {seq} of round {rnd.number}: expected {rnd.built} "
                             f"of {rnd.count}")
        view = self.read()
        compress = zstandard.ZstdCompressor(level=self.level).compress if self.level else None
        batch: list[tuple[int, str, bytes]] = []
        shadow = self._shadow_for(len(view))
        try:
            for index in rnd.dirty[seq * rnd.chunk_pages:(seq + 1) * rnd.chunk_pages]:
                raw = bytes(view[index * PAGE:(index + 1) * PAGE])  # one copy, hashed and sent
                if raw == shadow[index * PAGE:(index + 1) * PAGE]:
                    continue  # written back as it was
                shadow[index * PAGE:(index + 1) * PAGE] = raw
                if raw == _format.ZERO_PAGE:
                    del self.sent[index]
                    batch.append((index, ZERO_HASH, b""))
                else:
                    digest = _format.page_hash(raw)  # of the copy: what the target will get
                    self.sent[index] = digest
                    batch.append((index, digest, compress(raw) if compress else raw))
        finally:
            shadow.release()
        # (also an empty chunk: it still tells the memory size)
        chunk = encode_chunk(rnd.number, seq, len(view) // PAGE, batch,
                             "zstd" if compress else "none")
        rnd.built += 1
        rnd.pages += len(batch)
        rnd.bytes += len(chunk)
        return chunk

    def next_round(self) -> Round:
        """Chunks for every page that changed since the last round (all, the first time)."""
        rnd = self.open_round()
        chunks = [self.build(rnd, i) for i in range(rnd.count)]
        return Round(rnd.number, chunks, rnd.pages, rnd.bytes)

    @property
    def digest(self) -> str:
        return map_digest(self.sent)


def page_hashes(view: memoryview) -> dict[int, str]:
    """Hash of every non-zero page of ``view`` (two threads: hashing releases the GIL)."""
    nonzero = _format.nonzero_pages(view)

    def part(indices: list[int]) -> list[tuple[int, str]]:
        return [(i, _format.page_hash(view[i * PAGE:(i + 1) * PAGE])) for i in indices]

    if len(nonzero) < 64:
        return dict(part(nonzero))
    step = 256
    parts = [nonzero[k:k + step] for k in range(0, len(nonzero), step)]
    return {i: h for p in _format._get_pool(2).map(part, parts) for i, h in p}


def encode_chunk(number: int, seq: int, memory_pages: int,
                 pages: Sequence[tuple[int, str, bytes]], compression: str) -> bytes:
    """A self-describing chunk of ``(index, hash, stored bytes)`` pages, hashed whole."""
    entries, offset = [], 0
    for index, digest, data in pages:
        entries.append(ChunkPage(index, digest, offset, len(data)))
        offset += len(data)
    head = ChunkHeader(round=number, seq=seq, memory_pages=memory_pages,
                       compression=compression, data_length=offset, pages=entries)
    return frame(CHUNK_MAGIC, head, [data for _, _, data in pages])


def frame(magic: bytes, head: msgspec.Struct, parts: Sequence[bytes | memoryview]) -> bytes:
    """``magic, version, header length, header JSON, data, sha256 of all that``."""
    raw = msgspec.json.encode(head)
    out = io.BytesIO()
    out.write(_HEAD.pack(magic, CHUNK_VERSION, len(raw)))
    out.write(raw)
    for part in parts:
        out.write(part)
    out.write(hashlib.sha256(out.getbuffer()).digest())
    return out.getvalue()


def unframe(chunk: bytes | memoryview, magic: bytes, decoder: msgspec.json.Decoder,
            what: str, where: str) -> tuple[msgspec.Struct, memoryview]:
    """A :func:`frame` checked whole (size, hash, header schema): its header and data."""
    view = memoryview(chunk)
    n = len(view)
    if n > MAX_CHUNK:
        raise SnapshotError(f"{where}: a chunk of {n} bytes, over the {MAX_CHUNK} byte limit")
    if n < _HEAD.size + 32 or bytes(view[:8]) != magic:
        raise SnapshotError(f"{where}: not a {what}")
    _magic, version, head_len = _HEAD.unpack_from(view, 0)
    if version != CHUNK_VERSION:
        raise SnapshotError(f"{where}: {what} version {version}, not {CHUNK_VERSION}")
    if head_len > MAX_HEADER or _HEAD.size + head_len > n - 32:
        raise SnapshotError(f"{where}: {what} header of {head_len} bytes does not fit")
    if not hmac.compare_digest(hashlib.sha256(view[:n - 32]).digest(), bytes(view[n - 32:])):
        raise SnapshotError(f"{where}: {what} does not match its hash")
    try:
        head = decoder.decode(view[_HEAD.size:_HEAD.size + head_len])
    except msgspec.DecodeError as e:  # ValidationError included
        raise SnapshotError(f"{where}: bad {what} header: {' '.join(str(e).split())[:200]}"
                            ) from None
    return head, view[_HEAD.size + head_len:n - 32]


def decode_chunk(chunk: bytes | memoryview, *, max_pages: int = MAX_PAGES,
                 where: str = "page stream") -> tuple[ChunkHeader, list[tuple[int, str, bytes]]]:
    """Check a chunk whole and unpack its pages: ``(index, hash, raw 64 KiB or b"")``.

    Everything is untrusted: the length, the hash, the header's schema and sizes, every
    page's capped decompression and its hash. Nothing partial comes out.
    """
    head, data = unframe(chunk, CHUNK_MAGIC, _header_decoder, "page chunk", where)
    assert isinstance(head, ChunkHeader)
    where = f"{where}: round {head.round} chunk {head.seq}"
    if head.data_length != len(data):
        raise SnapshotError(f"{where}: {len(data)} bytes of data, {head.data_length} declared")
    if head.memory_pages > max_pages:
        raise SnapshotError(f"{where}: memory of {head.memory_pages} pages, over the limit "
                            f"of {max_pages}")
    seen: set[int] = set()
    out = []
    d = _format._decompressor()
    for p in head.pages:
        if p.index >= head.memory_pages or p.index in seen:
            raise SnapshotError(f"{where}: page {p.index} outside memory or repeated")
        seen.add(p.index)
        if p.offset + p.length > len(data):
            raise SnapshotError(f"{where}: page {p.index} past the chunk's data")
        stored = data[p.offset:p.offset + p.length]
        if p.length == 0:
            raw = b""
            if p.hash != ZERO_HASH:
                raise SnapshotError(f"{where}: page {p.index} has no data and is not zero")
        elif head.compression == "zstd":
            try:
                raw = _format.unzstd_page(d, stored)
            except SnapshotError as e:
                raise SnapshotError(f"{where}: page {p.index}: {e}") from None
        elif p.length == PAGE:
            raw = bytes(stored)
        else:
            raise SnapshotError(f"{where}: raw page {p.index} of {p.length} bytes")
        if raw and _format.page_hash(raw) != p.hash:
            raise SnapshotError(f"{where}: page {p.index} does not match its hash")
        out.append((p.index, p.hash, raw))
    return head, out


# -- the target -------------------------------------------------------------------------


class PageSink:
    """The receiving side: a fresh instance of the same module, filled chunk by chunk.

    ``max_pages`` is this side's limit on the memory it accepts (default: the instance's
    own memory limit, else 4 GiB).
    """

    def __init__(self, inst: Instance, *, max_pages: int | None = None,
                 where: str = "page stream") -> None:
        if not inst.has_memory:
            raise SnapshotError(f"{inst.module.path}: exports no memory")
        self.inst, self.where = inst, where
        limit = inst.limits.max_memory
        self.max_pages = min(max_pages or MAX_PAGES, (limit // PAGE) if limit else MAX_PAGES)
        self.have: dict[int, str] = {}
        self.pages_written = 0
        # Start from all zeros: the stream brings every non-zero page of the source.
        view = inst.memory_view()
        for index in _format.nonzero_pages(view):
            view[index * PAGE:(index + 1) * PAGE] = _format.ZERO_PAGE

    def apply(self, chunk: bytes | memoryview) -> int:
        """Check a chunk whole, then write its pages; returns how many."""
        head, pages = decode_chunk(chunk, max_pages=self.max_pages, where=self.where)
        have = self.inst.memory_pages()
        if head.memory_pages < have:
            raise SnapshotError(f"{self.where}: memory of {head.memory_pages} pages, smaller "
                                f"than this instance's {have}: not the same module")
        if head.memory_pages > have:
            try:
                self.inst.grow_memory(head.memory_pages - have)
            except Exception as e:  # noqa: BLE001 - the runtime's limit error, one line
                raise SnapshotError(f"{self.where}: cannot grow memory to "
                                    f"{head.memory_pages} pages: {e}") from None
        view = self.inst.memory_view()
        for index, digest, raw in pages:
            view[index * PAGE:(index + 1) * PAGE] = raw or _format.ZERO_PAGE
            if raw:
                self.have[index] = digest
            else:
                self.have.pop(index, None)
        self.pages_written += len(pages)
        return len(pages)

    @property
    def digest(self) -> str:
        return map_digest(self.have)


# -- the switch -------------------------------------------------------------------------


def final_state(meta: SnapshotMeta, stream: PageStream) -> bytes:
    """The source's state once stopped (after the last round): a snapshot without pages
    that names the page map the stream delivered."""
    pages = len(stream.read()) // PAGE
    meta = msgspec.structs.replace(
        meta, memory=MemoryMeta(pages=pages, compression="none", table=[]),
        stream_digest=stream.digest)
    buf = io.BytesIO()
    _format.write_parts(buf, encode_meta(meta), [], sign=False)
    return buf.getvalue()


def service_state(inst: Instance, stream: PageStream) -> bytes:
    """:func:`final_state` of a service instance between two calls."""
    from foglayer.snapshot._service import service_meta

    return final_state(service_meta(inst), stream)


def command_state(session: Session, stream: PageStream) -> bytes:
    """:func:`final_state` of a command session stopped by ``halt()`` (stack unwound)."""
    if not session.stopped:
        raise SnapshotError("the command has not stopped: halt() it and let run() return")
    return final_state(session.capture_meta(), stream)


def _state(sink: PageSink, state: bytes, kind: str) -> _format.Snapshot:
    snap = _format.parse(state, f"{sink.where}: state")
    meta = snap.meta
    if meta.kind != kind:
        raise SnapshotError(f"{snap.where}: a {meta.kind} state, not a {kind} one")
    if meta.stream_digest is None:
        raise SnapshotError(f"{snap.where}: not the state of a page stream")
    if meta.module.digest != sink.inst.module.digest:
        raise SnapshotError(f"{snap.where}: the state of module {meta.module.digest[:12]}, "
                            f"the target runs {sink.inst.module.digest[:12]}")
    if meta.memory.pages != sink.inst.memory_pages() or meta.stream_digest != sink.digest:
        raise SnapshotError(f"{snap.where}: the target's memory is not the source's "
                            f"(a chunk is missing or extra)")
    return snap


def _adopt_wasi(sink: PageSink, snap: _format.Snapshot, dirs: dict[str, str] | None,
                memory_dirs: MemoryDirs | None, force: bool, stdio: Sequence[int]) -> None:
    from foglayer.snapshot._run import prepare_wasi
    from foglayer.wasi import adopt

    new = prepare_wasi(snap, dirs=dirs, force=force, stdio=stdio, memory_dirs=memory_dirs)
    adopt(sink.inst.wasi, new)


def finish_service(sink: PageSink, state: bytes, *, dirs: dict[str, str] | None = None,
                   memory_dirs: MemoryDirs | None = None, force: bool = False,
                   stdio: Sequence[int] = (0, 1, 2)) -> Instance:
    """The switch for a service: WASI state (re-opened inside ``dirs``) and globals."""
    from foglayer.snapshot._service import check_globals, set_globals

    snap = _state(sink, state, "service")
    try:
        check_globals(sink.inst, snap.meta)
        _adopt_wasi(sink, snap, dirs, memory_dirs, force, stdio)
        set_globals(sink.inst, snap.meta)
    finally:
        snap.close()
    return sink.inst


def finish_command(session: Session, sink: PageSink, state: bytes, *,
                   dirs: dict[str, str] | None = None, memory_dirs: MemoryDirs | None = None,
                   force: bool = False, stdio: Sequence[int] = (0, 1, 2)) -> Session:
    """The switch for a command: WASI state, globals, the Asyncify stack; ready to run()."""
    if sink.inst is not session.inst:
        raise ValueError("the sink must fill the session's own instance")
    snap = _state(sink, state, "command")
    try:
        session._check_globals(snap.meta, snap.where)
        _adopt_wasi(sink, snap, dirs, memory_dirs, force, stdio)
        session.load_state(snap.meta, snap.where)
    finally:
        snap.close()
    return session
