"""The snapshot's metadata: one typed, versioned schema, checked whole before any use.

A snapshot is untrusted input (it may come from another node). :func:`decode_meta` parses
the JSON straight into these types (msgspec: wrong types, unknown fields and values out of
range are refused with the field's path), then :func:`check_meta` checks what one field
says about another (pages inside memory, data inside the file, the Asyncify buffer inside
memory, globals of their declared type). Either way the error is one line.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from foglayer.snapshot._errors import SnapshotError
from foglayer.wasi import SavedStateError, SavedWasi, check_saved

FORMAT_VERSION = 2
PAGE = 65536
MAX_PAGES = 65536  # wasm32: 4 GiB of linear memory
MAX_META = 64 << 20  # metadata bytes
MAX_GLOBALS = 1 << 16
# zstd's worst case for one 64 KiB page (ZSTD_compressBound) and then some.
MAX_STORED_PAGE = PAGE + (PAGE >> 8) + 1024

_U32 = Annotated[int, msgspec.Meta(ge=0, lt=1 << 32)]
_U63 = Annotated[int, msgspec.Meta(ge=0, le=(1 << 63) - 1)]
_Digest = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]
_PageHash = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{32}$")]
_Name = Annotated[str, msgspec.Meta(max_length=4096)]
Compression = Literal["zstd", "none"]


class _Strict(msgspec.Struct, forbid_unknown_fields=True):
    pass


class PageEntry(msgspec.Struct, array_like=True, frozen=True):
    """One stored page: ``[index, hash of the raw page, offset in the data, stored length]``."""

    index: Annotated[int, msgspec.Meta(ge=0, lt=MAX_PAGES)]
    hash: _PageHash
    offset: _U63
    length: Annotated[int, msgspec.Meta(ge=1, le=MAX_STORED_PAGE)]


class MemoryMeta(_Strict):
    pages: Annotated[int, msgspec.Meta(ge=0, le=MAX_PAGES)]
    compression: Compression
    table: list[PageEntry]
    page_size: Literal[65536] = PAGE

    @property
    def stored(self) -> int:
        return len(self.table)


EMPTY_MEMORY = MemoryMeta(pages=0, compression="none", table=[])  # the writer fills it in


class BlobMeta(_Strict):
    """A named blob in the data area: where it is, and what it unpacks to (declared)."""

    offset: _U63
    length: _U63
    size: _U63  # bytes once decompressed: decompression stops there
    compression: Compression
    sha256: _Digest  # of the decompressed bytes


class ModuleMeta(_Strict):
    digest: _Digest  # the module that runs (checkpointable form for commands)
    original_digest: _Digest
    path: _Name = ""
    rewritten_size: _U63 = 0


GlobalType = Literal["i32", "i64", "f32", "f64"]


class GlobalMeta(_Strict):
    type: GlobalType
    mutable: bool
    value: int | Annotated[str, msgspec.Meta(max_length=64)]  # ints; floats as float.hex()
    index: Annotated[int, msgspec.Meta(ge=0, lt=MAX_GLOBALS)] | None = None  # commands
    name: _Name | None = None  # services: exported globals by name


class AsyncifyMeta(_Strict):
    buffer: _U32  # address of the Asyncify buffer in linear memory
    size: _U32
    used: _U32  # bytes of it holding the unwound stack (from its 8-byte header)
    scratch: _U32  # the last page of the buffer: the safepoints' locals


class FileRecord(_Strict):
    """A regular file the guest had open: the restore checks it is still the same."""

    fd: Annotated[int, msgspec.Meta(ge=0, lt=1 << 31)]
    size: _U63
    sha256: _Digest
    guest_path: _Name = ""


class Lineage(_Strict, frozen=True):
    checkpoints: _U63 = 0
    restores: _U63 = 0


class HostInfo(_Strict, frozen=True):
    node: _Name = ""
    machine: _Name = ""


class SnapshotMeta(_Strict):
    """Everything a snapshot says about itself, except its pages' bytes."""

    kind: Literal["command", "service"]
    module: ModuleMeta
    memory: MemoryMeta
    wasi: SavedWasi
    globals: Annotated[list[GlobalMeta], msgspec.Meta(max_length=MAX_GLOBALS)] = []
    asyncify: AsyncifyMeta | None = None  # commands only
    files: list[FileRecord] = []
    stdio: dict[Literal["0", "1", "2"], _U63 | None] = {}  # offsets of stdio that are files
    blobs: dict[Literal["module", "files"], BlobMeta] = {}
    lineage: Lineage = Lineage()
    created: float = 0.0
    host: HostInfo = HostInfo()
    foglayer: Annotated[str, msgspec.Meta(max_length=64)] = ""
    # Set when the pages came in a pre-copy stream (the table is then empty): sha256 of the
    # page map the stream delivered, which the target checks against its own.
    stream_digest: _Digest | None = None
    format: Literal[2] = FORMAT_VERSION


_decoder = msgspec.json.Decoder(SnapshotMeta)
_encoder = msgspec.json.Encoder()


def encode_meta(meta: SnapshotMeta) -> bytes:
    return _encoder.encode(meta)


def decode_meta(raw: bytes | memoryview, data_len: int, where: str) -> SnapshotMeta:
    """Parse and check metadata against the schema and the data area's length."""
    if len(raw) > MAX_META:
        raise SnapshotError(f"{where}: bad metadata: {len(raw)} bytes, over the "
                            f"{MAX_META >> 20} MiB limit")
    try:
        meta = _decoder.decode(raw)
    except msgspec.ValidationError as e:
        raise SnapshotError(f"{where}: bad metadata: {_one_line(e)}") from None
    except msgspec.DecodeError as e:
        raise SnapshotError(f"{where}: corrupted snapshot (bad metadata: {_one_line(e)})") from None
    check_meta(meta, data_len, where)
    return meta


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())[:300]


def check_meta(meta: SnapshotMeta, data_len: int, where: str) -> None:
    """What the types alone cannot say: one field against another, all before any use."""
    def bad(what: str) -> SnapshotError:
        return SnapshotError(f"{where}: bad metadata: {what}")

    mem = meta.memory
    if meta.stream_digest is not None and mem.table:
        raise bad("memory.table: pages in a snapshot whose pages come in a stream")
    last = -1
    for k, e in enumerate(mem.table):
        at = f"memory.table[{k}]"
        if e.index <= last:
            raise bad(f"{at}: page {e.index} out of order or repeated")
        if e.index >= mem.pages:
            raise bad(f"{at}: page {e.index} outside memory of {mem.pages} pages")
        if e.offset + e.length > data_len:
            raise bad(f"{at}: data at {e.offset}+{e.length} past the end ({data_len} bytes)")
        if mem.compression == "none" and e.length != PAGE:
            raise bad(f"{at}: a raw page of {e.length} bytes")
        last = e.index
    for name, b in meta.blobs.items():
        if b.offset + b.length > data_len:
            raise bad(f"blobs.{name}: data at {b.offset}+{b.length} past the end "
                      f"({data_len} bytes)")
        if b.compression == "none" and b.size != b.length:
            raise bad(f"blobs.{name}: raw blob of {b.length} bytes declares {b.size}")
    for k, g in enumerate(meta.globals):
        _check_global(g, f"globals[{k}]", bad)
    if meta.kind == "command":
        if any(g.index is None or g.name is not None for g in meta.globals):
            raise bad("globals: a command snapshot names its globals by index")
        if len({g.index for g in meta.globals}) != len(meta.globals):
            raise bad("globals: an index repeated")
        a = meta.asyncify
        if a is None:
            raise bad("asyncify: missing from a command snapshot")
        end = mem.pages * PAGE
        if a.buffer % PAGE or a.size < 2 * PAGE or a.size % PAGE or a.buffer + a.size > end:
            raise bad(f"asyncify: buffer {a.buffer:#x}+{a.size:#x} is not whole pages "
                      f"inside memory of {end:#x} bytes")
        if a.scratch != a.buffer + a.size - PAGE or not 8 <= a.used <= a.size - PAGE:
            raise bad(f"asyncify: used {a.used} / scratch {a.scratch:#x} outside the buffer")
    else:
        if meta.asyncify is not None:
            raise bad("asyncify: in a service snapshot")
        names = [g.name for g in meta.globals]
        if None in names or len(set(names)) != len(names):
            raise bad("globals: a service snapshot names each global once")
    try:
        check_saved(meta.wasi)
    except SavedStateError as e:
        raise bad(str(e)) from None
    regular = {d.fd for d in meta.wasi.fds if d.is_file}
    for k, f in enumerate(meta.files):
        if f.fd not in regular:
            raise bad(f"files[{k}]: fd {f.fd} is not an open file of the snapshot")


_INT_RANGE = {"i32": (-(1 << 31), 1 << 31), "i64": (-(1 << 63), 1 << 63)}  # as wasmtime


def _check_global(g: GlobalMeta, at: str, bad) -> None:
    if g.type in _INT_RANGE:
        lo, hi = _INT_RANGE[g.type]
        if not isinstance(g.value, int) or not lo <= g.value < hi:
            raise bad(f"{at}: {str(g.value)[:40]!r} is not an {g.type}")
        return
    if not isinstance(g.value, str):
        raise bad(f"{at}: an {g.type} is written as float.hex(), not {g.value!r}")
    try:
        float.fromhex(g.value)
    except (ValueError, OverflowError):
        raise bad(f"{at}: {g.value[:40]!r} is not an {g.type}") from None


def encode_global(value: object, kind: str) -> int | str:
    if kind in ("f32", "f64"):
        return float(value).hex()  # type: ignore[arg-type]
    return int(value)  # type: ignore[call-overload]


def decode_global(g: GlobalMeta) -> int | float:
    if g.type in ("f32", "f64"):
        return float.fromhex(g.value)  # type: ignore[arg-type]
    return int(g.value)
