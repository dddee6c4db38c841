"""Pre-copy of an app's volumes: directory trees moved in rounds of changed 64 KiB blocks.

A file is its size, its mode and the sha256 of each of its fixed 64 KiB blocks (every block
full but the last), as memory is pages. The source (:class:`TreeStream`) remembers the blocks
the target has; a round re-reads the files whose stat changed and sends only the blocks whose
hash changed (an append sends its last block, an in-place rewrite the blocks it touched), in
bounded chunks, and ends with the whole tree's manifest. The target (:class:`TreeSink`)
writes only below a directory it chose, through held directory fds and ``O_NOFOLLOW`` (as
the WASI walk does), never more bytes than its limit; each block is checked against its hash
before it is written, and a manifest makes the tree exactly that (files checked block by
block, links that stay inside, what is gone removed). A durable snapshot keeps blocks by hash
(:class:`TreeCollector` checks a round as it streams by; :class:`TreePlan` rebuilds the chunks
of a stored tree one at a time). Everything received or read back is untrusted.

Chunk layout: a :func:`~._precopy.frame` (``FOGTREE``) whose header lists its pieces
(``[path, offset, data offset, length, sha256]``, one block each) and whose data is their
bytes; the last chunk of a round is ``final`` and its data is the manifest (msgpack).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Literal

import msgspec

from foglayer.snapshot._errors import SnapshotError
from foglayer.snapshot._precopy import MAX_CHUNK, MAX_HEADER, frame, unframe

TREE_MAGIC = b"FOGTREE\0"
BLOCK = 64 << 10  # a file's unit of change, as a page is memory's
PIECE = 4 << 20  # block bytes per chunk
MAX_PIECES = 4096  # pieces per chunk
MAX_ENTRIES = 1 << 20
MAX_FILE_BLOCKS = 1 << 16  # 4 GiB a file
MAX_MANIFEST = 4 << 20  # the encoded manifest (the last chunk's data)
_HEADER_BUDGET = MAX_HEADER // 2  # of a chunk's header, for its pieces' paths
_Path = Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
_U63 = Annotated[int, msgspec.Meta(ge=0, le=(1 << 63) - 1)]
_Sha256 = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Entry(msgspec.Struct, array_like=True, frozen=True):
    """``[path, kind, mode, size, link target, block sha256s]`` of one thing in the tree.

    ``ref`` is a link's target; for a file it is empty (a record written before blocks named
    the whole file's sha256 there: :func:`check_manifest` refuses it)."""

    path: _Path
    kind: Literal["dir", "file", "link"]
    mode: Annotated[int, msgspec.Meta(ge=0, le=0o777)]
    size: _U63
    ref: Annotated[str, msgspec.Meta(max_length=4096)]
    blocks: Annotated[tuple[_Sha256, ...], msgspec.Meta(max_length=MAX_FILE_BLOCKS)] = ()


class Piece(msgspec.Struct, array_like=True, frozen=True):
    """``[path, offset in the file, offset in the chunk's data, length, sha256]``: one block."""

    path: _Path
    offset: Annotated[int, msgspec.Meta(ge=0, lt=MAX_FILE_BLOCKS * BLOCK, multiple_of=BLOCK)]
    data_offset: Annotated[int, msgspec.Meta(ge=0, le=MAX_CHUNK)]
    length: Annotated[int, msgspec.Meta(ge=1, le=BLOCK)]
    sha256: _Sha256


class TreeHeader(msgspec.Struct, forbid_unknown_fields=True):
    round: Annotated[int, msgspec.Meta(ge=0, lt=1 << 32)]
    seq: Annotated[int, msgspec.Meta(ge=0, lt=1 << 32)]
    data_length: Annotated[int, msgspec.Meta(ge=0, le=MAX_CHUNK)]
    pieces: Annotated[list[Piece], msgspec.Meta(max_length=MAX_PIECES)] = []
    final: bool = False  # the round's last chunk: its data is the manifest


_decoder = msgspec.json.Decoder(TreeHeader)
_manifest_decoder = msgspec.msgpack.Decoder(
    Annotated[list[Entry], msgspec.Meta(max_length=MAX_ENTRIES)])


@dataclass(frozen=True, slots=True)
class TreeRound:
    number: int
    chunks: list[bytes]
    files: int  # files with blocks sent (changed or new)
    bytes: int  # of the chunks
    blocks: int = 0  # blocks sent


def block_count(size: int) -> int:
    return -(-size // BLOCK)


def _sha256(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


# -- chunks -----------------------------------------------------------------------------


@dataclass
class _Chunks:
    """Pieces grouped into chunks within every bound a receiver checks (bytes, pieces, the
    header); the same grouping for a live round and for a stored tree's plan."""

    groups: list[list[tuple[str, int, int, str]]] = field(default_factory=lambda: [[]])
    used: int = 0
    head: int = 0
    placed: int = 0

    def add(self, path: str, offset: int, length: int, sha: str) -> bool:
        """Place a piece; True when it opened a new chunk."""
        cost = len(msgspec.json.encode(path)) + 100  # (as the header spells it: escapes)
        new = bool(self.groups[-1]) and (self.used + length > PIECE
                                         or len(self.groups[-1]) >= MAX_PIECES
                                         or self.head + cost > _HEADER_BUDGET)
        if new:
            self.groups.append([])
            self.used = self.head = 0
        self.groups[-1].append((path, offset, length, sha))
        self.placed += 1
        self.used += length
        self.head += cost
        return new


def _piece_frame(number: int, seq: int, group: list[tuple[str, int, int, str]],
                 data: list[bytes | memoryview]) -> bytes:
    pieces, at = [], 0
    for (path, offset, length, sha), part in zip(group, data, strict=True):
        pieces.append(Piece(path, offset, at, length, sha))
        at += len(part)
    return frame(TREE_MAGIC, TreeHeader(round=number, seq=seq, data_length=at,
                                        pieces=pieces), data)


def _manifest_frame(number: int, seq: int, manifest: list[Entry]) -> bytes:
    raw = msgspec.msgpack.encode(manifest)
    if len(raw) > MAX_MANIFEST:
        raise SnapshotError(f"the volumes' manifest takes {len(raw)} bytes, over the "
                            f"{MAX_MANIFEST} byte limit (too many files or blocks)")
    return frame(TREE_MAGIC, TreeHeader(round=number, seq=seq, data_length=len(raw),
                                        final=True), [raw])


def _open(chunk: bytes | memoryview, where: str, limit: int, used: int
          ) -> tuple[TreeHeader, list[tuple[Piece, memoryview]], list[Entry] | None, str]:
    """A chunk checked whole: its pieces (each block against its sha256, within ``limit``
    bytes counting ``used``) or its manifest (checked by :func:`check_manifest`)."""
    head, data = unframe(chunk, TREE_MAGIC, _decoder, "volume chunk", where)
    assert isinstance(head, TreeHeader)
    where = f"{where}: round {head.round} chunk {head.seq}"
    if head.data_length != len(data):
        raise SnapshotError(f"{where}: {len(data)} bytes of data, {head.data_length} declared")
    if head.final:
        if head.pieces or len(data) > MAX_MANIFEST:
            raise SnapshotError(f"{where}: a manifest chunk with pieces, or too big")
        try:
            manifest = _manifest_decoder.decode(data)
        except msgspec.DecodeError as e:
            raise SnapshotError(f"{where}: bad manifest: {' '.join(str(e).split())[:200]}"
                                ) from None
        check_manifest(manifest, where)
        return head, [], manifest, where
    if used + sum(p.length for p in head.pieces) > limit:
        raise SnapshotError(f"{where}: over the limit of {limit} bytes of files")
    out = []
    for p in head.pieces:
        _plain(p.path, where)
        block = data[p.data_offset:p.data_offset + p.length]
        if len(block) != p.length:
            raise SnapshotError(f"{where}: piece of {p.path[:200]!r} past the chunk's data")
        if _sha256(block) != p.sha256:
            raise SnapshotError(f"{where}: block {p.offset // BLOCK} of {p.path[:200]!r} "
                                "does not match its sha256")
        out.append((p, block))
    return head, out, None, where


# -- the source -------------------------------------------------------------------------


def _read_blocks(fd: int, size: int, have: tuple[str, ...],
                 send: Callable[[int, bytes, str], None]) -> tuple[int, tuple[str, ...]]:
    """Hash a file block by block, up to ``size`` (or its end: a file cut meanwhile ends
    there); ``send`` each block whose hash is not the one the target ``have``s there. The
    size and hashes are of the very bytes read: written meanwhile, it is consistent on the
    target, and goes again next round."""
    hashes: list[str] = []
    offset = 0
    while offset < size:
        data = os.pread(fd, min(BLOCK, size - offset), offset)
        if not data:
            break
        sha = _sha256(data)
        i = len(hashes)
        if i >= len(have) or have[i] != sha:
            send(offset, data, sha)
        hashes.append(sha)
        offset += len(data)
        if len(data) < BLOCK:
            break  # the last block (a short read is the end)
    return offset, tuple(hashes)


@dataclass
class PendingTree:
    """A round of a tree whose chunks are built on demand (:meth:`TreeStream.build`), in
    order, one at a time: the blocks are read when their chunk is asked for, never held."""

    number: int
    groups: list[list[tuple[str, int, int, str]]]  # (path, offset, length, sha256 at the scan)
    manifest: list[Entry]  # the tree at the scan
    keys: dict[str, tuple[int, ...]]  # the stat keys of the files it read
    files: int  # files with blocks to send
    built: int = 0
    bytes: int = 0
    actual: dict[str, dict[int, str]] = field(default_factory=dict)  # hashes as sent, if not
    torn: set[str] = field(default_factory=set)  # files cut short meanwhile: sent next round

    @property
    def count(self) -> int:
        return len(self.groups) + 1  # and the manifest

    @property
    def blocks(self) -> int:
        return sum(len(g) for g in self.groups)


def _open_below(root: str, rel: str) -> int:
    """A file below ``root`` opened for reading, walked by held dir fds, no link followed."""
    parts = rel.split("/")
    fd = os.open(root, _DIR_FLAGS)
    try:
        for name in parts[:-1]:
            nxt = os.open(name, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nxt
        return os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
    finally:
        os.close(fd)


class TreeStream:
    """The sending side: rounds of the blocks below ``root`` that the target lacks.

    :meth:`open_round` finds them (a file whose stat changed is re-read and hashed by
    block); :meth:`build` reads a chunk's blocks when it is asked for, so a round is never
    held whole (a live move's rounds). Blocks written between the two go with the hash of
    the very bytes sent, and the manifest says what the target then has: consistent, and
    sent again next round. :meth:`next_round` is both at once, for a tree that holds still.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = os.path.realpath(root)
        self.sent: dict[str, Entry] = {}
        self.rounds = 0
        self._keys: dict[str, tuple[int, ...]] = {}  # path -> stat key when sent (ctime too)

    def _scan(self) -> Iterator[tuple[Entry, int, tuple[int, ...]]]:
        """Every entry below the root; files with an open fd and their stat key."""
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames.sort()
            for name in dirnames + sorted(filenames):
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, self.root)
                st = os.lstat(full)
                mode = stat.S_IMODE(st.st_mode) & 0o777
                if stat.S_ISDIR(st.st_mode):
                    yield Entry(rel, "dir", mode, 0, ""), -1, ()
                elif stat.S_ISLNK(st.st_mode):
                    yield Entry(rel, "link", 0, 0, os.readlink(full)), -1, ()
                elif stat.S_ISREG(st.st_mode):
                    try:
                        fd = _open_below(self.root, rel)
                    except OSError:
                        continue  # gone, or not a plain file any more: next round
                    st = os.fstat(fd)
                    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
                    yield Entry(rel, "file", mode, st.st_size, ""), fd, key

    def open_round(self) -> PendingTree:
        """The blocks that changed since the last round, found now; built by :meth:`build`."""
        number, self.rounds = self.rounds, self.rounds + 1
        plan = _Chunks()
        manifest: list[Entry] = []
        keys: dict[str, tuple[int, ...]] = {}
        files = 0
        for entry, fd, key in self._scan():
            if fd < 0:
                manifest.append(entry)
                continue
            try:
                old = self.sent.get(entry.path)
                have = old.blocks if old is not None and old.kind == "file" else ()
                if old is not None and old.kind == "file" and old.mode == entry.mode \
                        and self._keys.get(entry.path) == key:
                    manifest.append(old)  # untouched since it was sent
                    continue
                if entry.size > MAX_FILE_BLOCKS * BLOCK:
                    raise SnapshotError(f"{entry.path[:200]!r}: a file over "
                                        f"{MAX_FILE_BLOCKS * BLOCK} bytes")
                before = plan.placed
                size, blocks = _read_blocks(
                    fd, entry.size, have,
                    lambda at, block, sha, path=entry.path: plan.add(path, at, len(block), sha))
                files += plan.placed != before
                keys[entry.path] = key
                manifest.append(Entry(entry.path, "file", entry.mode, size, "", blocks))
            finally:
                os.close(fd)
        return PendingTree(number, [g for g in plan.groups if g], manifest, keys, files)

    def build(self, rnd: PendingTree, seq: int) -> bytes:
        """Chunk ``seq`` of ``rnd``, its blocks read now (in order, each once); the last is
        the manifest of what the target then has."""
        if seq != rnd.built or seq >= rnd.count:
            raise ValueError(f"chunk {seq} of round {rnd.number}: expected {rnd.built} "
                             f"of {rnd.count}")
        if seq == len(rnd.groups):
            chunk = self._finish(rnd)
        else:
            group, data, fds = [], [], {}
            try:
                for path, offset, length, sha in rnd.groups[seq]:
                    if path in rnd.torn:
                        continue
                    try:
                        fd = fds.get(path)
                        if fd is None:
                            fd = fds[path] = _open_below(self.root, path)
                        block = os.pread(fd, length, offset)
                    except OSError:
                        block = b""
                    if len(block) != length:
                        rnd.torn.add(path)  # cut or gone meanwhile: left out, sent anew
                        continue
                    digest = _sha256(block)  # of the very bytes sent
                    if digest != sha:
                        rnd.actual.setdefault(path, {})[offset // BLOCK] = digest
                    group.append((path, offset, length, digest))
                    data.append(block)
            finally:
                for fd in fds.values():
                    os.close(fd)
            chunk = _piece_frame(rnd.number, seq, group, data)
        rnd.built += 1
        rnd.bytes += len(chunk)
        return chunk

    def _finish(self, rnd: PendingTree) -> bytes:
        manifest = []
        for e in rnd.manifest:
            if e.path in rnd.torn:
                rnd.keys.pop(e.path, None)
                continue
            if e.path in rnd.actual:
                blocks = list(e.blocks)
                for i, digest in rnd.actual[e.path].items():
                    blocks[i] = digest
                e = msgspec.structs.replace(e, blocks=tuple(blocks))
            manifest.append(e)
        chunk = _manifest_frame(rnd.number, len(rnd.groups), manifest)
        self.sent = {e.path: e for e in manifest}
        self._keys.update(rnd.keys)
        for path in rnd.torn:
            self._keys.pop(path, None)
        return chunk

    def next_round(self) -> TreeRound:
        """A whole round at once: every block that changed since the last, then the
        manifest (a tree that holds still meanwhile: a service between two calls)."""
        rnd = self.open_round()
        chunks = [self.build(rnd, seq) for seq in range(rnd.count)]
        return TreeRound(rnd.number, chunks, rnd.files, rnd.bytes, rnd.blocks)

    def spooled_round(self, spool_dir: str | os.PathLike, *, max_bytes: int,
                      in_memory: int = 8 << 20) -> SpooledRound:
        """A whole round at once, as :meth:`next_round`, its chunks kept in memory up to
        ``in_memory`` bytes and past that in an unlinked file in ``spool_dir``: what a
        snapshot taken between two calls holds until it is sent. Over ``max_bytes`` of
        chunks, a :class:`SnapshotError` (and the round is not counted as sent)."""
        sent, keys = dict(self.sent), dict(self._keys)
        rnd = self.open_round()
        spool = tempfile.SpooledTemporaryFile(max_size=in_memory, dir=spool_dir)
        try:
            spans = []
            for seq in range(rnd.count):
                chunk = self.build(rnd, seq)
                spans.append((spool.tell(), len(chunk)))
                spool.write(chunk)
                if rnd.bytes > max_bytes:
                    raise SnapshotError(f"the volumes changed by more than {max_bytes} bytes "
                                        "since the last snapshot")
        except BaseException:
            spool.close()
            self.sent, self._keys = sent, keys
            raise
        return SpooledRound(rnd.number, rnd.files, rnd.blocks, rnd.bytes, spool, spans)


class SpooledRound:
    """A round's chunks in a spool (:meth:`TreeStream.spooled_round`); :meth:`close` it."""

    def __init__(self, number: int, files: int, blocks: int, size: int, spool,
                 spans: list[tuple[int, int]]) -> None:
        self.number, self.files, self.blocks, self.bytes = number, files, blocks, size
        self._spool, self._spans = spool, spans

    @property
    def count(self) -> int:
        return len(self._spans)

    def chunk(self, seq: int) -> bytes:
        at, length = self._spans[seq]
        self._spool.seek(at)
        return self._spool.read(length)

    def close(self) -> None:
        self._spool.close()


def check_manifest(manifest: list[Entry], where: str) -> None:
    """Every path plain and relative, once; every link's target inside the tree; every file
    named by its blocks, as many as its size makes (untrusted: a stored or received
    manifest is checked first)."""
    seen: set[str] = set()
    for e in manifest:
        _plain(e.path, where)
        if e.path in seen:
            raise SnapshotError(f"{where}: {e.path[:200]!r} is named twice")
        seen.add(e.path)
        if e.kind == "link":
            target = posixpath.normpath(posixpath.join(posixpath.dirname(e.path), e.ref))
            if e.ref.startswith("/") or target == ".." or target.startswith("../"):
                raise SnapshotError(f"{where}: link {e.path[:200]!r} points outside")
        elif e.kind == "file" and e.ref:
            raise SnapshotError(f"{where}: file {e.path[:200]!r} is kept whole (a record "
                                "from before volume blocks): not restored; a new deploy "
                                "starts it fresh")
        elif e.kind == "file" and len(e.blocks) != block_count(e.size):
            raise SnapshotError(f"{where}: file {e.path[:200]!r} of {e.size} bytes names "
                                f"{len(e.blocks)} blocks, not {block_count(e.size)}")
        elif e.kind != "file" and e.blocks:
            raise SnapshotError(f"{where}: {e.path[:200]!r} is no file but names blocks")


def _file_blocks(manifest: list[Entry]) -> Iterator[tuple[str, int, int, str]]:
    """``(path, offset, length, sha256)`` of every block of every file."""
    for e in manifest:
        if e.kind == "file":
            for i, sha in enumerate(e.blocks):
                yield e.path, i * BLOCK, min(BLOCK, e.size - i * BLOCK), sha


def block_lengths(manifest: list[Entry]) -> dict[str, int]:
    """sha256 -> length of every block a (checked) manifest names."""
    return {sha: length for _path, _offset, length, sha in _file_blocks(manifest)}


class TreePlan:
    """A stored tree (its manifest) as the chunks of one round a :class:`TreeSink` applies,
    built one at a time from blocks fetched by hash: the store is read chunk by chunk, the
    whole tree never held. The manifest is checked first."""

    def __init__(self, manifest: list[Entry], *, number: int = 0,
                 where: str = "stored volume") -> None:
        check_manifest(manifest, where)
        self.manifest, self.number, self.where = manifest, number, where
        plan = _Chunks()
        for path, offset, length, sha in _file_blocks(manifest):
            plan.add(path, offset, length, sha)
        self.groups = [g for g in plan.groups if g]
        self.size = sum(e.size for e in manifest if e.kind == "file")

    @property
    def count(self) -> int:
        return len(self.groups) + 1  # and the manifest

    def needs(self, seq: int) -> list[str]:
        """The block hashes chunk ``seq`` is made of (each once)."""
        return list(dict.fromkeys(sha for *_, sha in self.groups[seq])) \
            if seq < len(self.groups) else []

    def chunk(self, seq: int, blocks: Mapping[str, bytes]) -> bytes:
        """Chunk ``seq`` from ``blocks`` (hash -> bytes, as fetched: each checked)."""
        if seq == len(self.groups):
            return _manifest_frame(self.number, seq, self.manifest)
        group = self.groups[seq]
        for path, _offset, length, sha in group:
            block = blocks.get(sha)
            if block is None or len(block) != length or _sha256(block) != sha:
                raise SnapshotError(f"{self.where}: a block of {path[:200]!r} does not match "
                                    "its sha256")
        return _piece_frame(self.number, seq, group, [blocks[sha] for *_, sha in group])


class TreeCollector:
    """One round of a tree, checked as it streams by, for whoever stores blocks by hash:
    :meth:`apply` hands back each chunk's blocks (checked) to store at once; the manifest
    comes last and :meth:`finish` checks that every block it names came or is held."""

    def __init__(self, *, max_bytes: int, where: str = "volume stream") -> None:
        self.max_bytes, self.where = max_bytes, where
        self.came: dict[str, int] = {}  # sha256 -> length of the blocks that came
        self.manifest: list[Entry] | None = None
        self.received = 0

    def apply(self, chunk: bytes | memoryview) -> dict[str, bytes]:
        """sha256 -> bytes of the chunk's blocks (none for the manifest)."""
        if self.manifest is not None:
            raise SnapshotError(f"{self.where}: a chunk after the manifest")
        _head, pieces, manifest, _ = _open(chunk, self.where, self.max_bytes, self.received)
        if manifest is not None:
            self.manifest = manifest
            return {}
        blocks = {p.sha256: bytes(b) for p, b in pieces}
        self.received += sum(p.length for p, _ in pieces)
        self.came.update((sha, len(b)) for sha, b in blocks.items())
        return blocks

    def finish(self, held: Mapping[str, int]) -> list[Entry]:
        """The manifest, once every block it names came in this round or is ``held``
        (sha256 -> length, :func:`block_lengths` of the stored tree), each as long as its
        place in the file."""
        if self.manifest is None:
            raise SnapshotError(f"{self.where}: the round has no manifest")
        for path, _offset, length, sha in _file_blocks(self.manifest):
            if self.came.get(sha, held.get(sha)) != length:
                raise SnapshotError(f"{self.where}: a block of {path[:200]!r} neither came "
                                    "nor is stored at its length: send every block again")
        return self.manifest


# -- the target -------------------------------------------------------------------------


def _plain(path: str, where: str) -> list[str]:
    parts = path.split("/")
    if "\0" in path or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise SnapshotError(f"{where}: {path[:200]!r} is not a plain relative path")
    return parts


class TreeSink:
    """The receiving side: makes ``dest`` (a directory this side chose) the source's tree.

    ``max_bytes`` bounds the file bytes written in all. It remembers the hash of each block
    it wrote or checked, so a manifest re-reads only what it does not know.
    """

    def __init__(self, dest: str | os.PathLike, *, max_bytes: int = 2 << 30,
                 where: str = "volume stream") -> None:
        os.makedirs(dest, mode=0o700, exist_ok=True)
        self.dest, self.max_bytes, self.where = os.path.realpath(dest), max_bytes, where
        self.written = 0
        # path -> block index -> (sha256, length) of what is on disk there
        self._known: dict[str, dict[int, tuple[str, int]]] = {}

    def _parent(self, parts: list[str], create: bool) -> int:
        """A held fd of the directory holding ``parts[-1]``, walked without following links."""
        fd = os.open(self.dest, _DIR_FLAGS)
        try:
            for name in parts[:-1]:
                try:
                    nxt = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    os.mkdir(name, 0o700, dir_fd=fd)
                    nxt = os.open(name, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = nxt
        except BaseException:
            os.close(fd)
            raise
        return fd

    def apply(self, chunk: bytes | memoryview) -> int:
        """Check a chunk whole (every block against its hash), then write its blocks in
        place (or apply its manifest)."""
        _head, pieces, manifest, where = _open(chunk, self.where, self.max_bytes, self.written)
        try:
            if manifest is not None:
                self._settle(manifest, where)
                return 0
            for p, block in pieces:
                parts = _plain(p.path, where)
                dfd = self._parent(parts, create=True)
                try:
                    st = _lstat(parts[-1], dfd)
                    # A dir or link before, a file now; a file hard-linked elsewhere (left
                    # by a former instance) is written as a file of its own.
                    if st is not None and (not stat.S_ISREG(st.st_mode) or st.st_nlink > 1):
                        _remove(dfd, parts[-1], st)
                        self._known.pop(p.path, None)
                    fd = os.open(parts[-1], os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW
                                 | os.O_CLOEXEC, 0o600, dir_fd=dfd)
                finally:
                    os.close(dfd)
                try:
                    os.pwrite(fd, block, p.offset)
                finally:
                    os.close(fd)
                self._known.setdefault(p.path, {})[p.offset // BLOCK] = (p.sha256, p.length)
                self.written += p.length
        except OSError as e:
            raise SnapshotError(f"{where}: cannot write below {self.dest}: "
                                f"{e.strerror}") from None
        return len(pieces)

    def _settle(self, manifest: list[Entry], where: str) -> None:
        """Make the tree exactly the manifest: dirs, links, files checked, the rest removed."""
        want = {}
        for e in manifest:
            parts = _plain(e.path, where)
            want[e.path] = e
            dfd = self._parent(parts, create=True)
            try:
                name = parts[-1]
                st = _lstat(name, dfd)
                if e.kind == "dir":
                    if st is not None and not stat.S_ISDIR(st.st_mode):
                        os.unlink(name, dir_fd=dfd)
                        st = None
                    if st is None:
                        os.mkdir(name, 0o700, dir_fd=dfd)
                    fd = os.open(name, _DIR_FLAGS, dir_fd=dfd)
                    try:
                        os.fchmod(fd, e.mode | 0o700)
                    finally:
                        os.close(fd)
                elif e.kind == "link":
                    if st is not None:
                        _remove(dfd, name, st)
                    os.symlink(e.ref, name, dir_fd=dfd)
                else:
                    if st is not None and not stat.S_ISREG(st.st_mode):
                        _remove(dfd, name, st)  # (then it must be empty: no block came)
                    fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                                 0o600, dir_fd=dfd)
                    try:
                        self._check_file(fd, e, where)
                        os.fchmod(fd, e.mode & 0o755 | 0o600)
                    finally:
                        os.close(fd)
            finally:
                os.close(dfd)
        self._prune("", want)
        self._known = {p: k for p, k in self._known.items()
                       if p in want and want[p].kind == "file"}

    def _check_file(self, fd: int, e: Entry, where: str) -> None:
        """The file on disk is exactly ``e``: cut to its size, each block as it names (read
        back only where this sink does not know it)."""
        if os.fstat(fd).st_size > e.size:
            os.ftruncate(fd, e.size)
        known = self._known.get(e.path, {})
        if os.fstat(fd).st_size != e.size:
            known = {}
        else:
            lengths = [min(BLOCK, e.size - i * BLOCK) for i in range(len(e.blocks))]
            for i, sha in enumerate(e.blocks):
                if known.get(i) == (sha, lengths[i]):
                    continue  # written or checked here, whole, with this hash
                if _sha256(os.pread(fd, lengths[i], i * BLOCK)) != sha:
                    break
            else:
                self._known[e.path] = dict(enumerate(zip(e.blocks, lengths, strict=True)))
                return
        self._known.pop(e.path, None)
        raise SnapshotError(f"{where}: file {e.path[:200]!r} does not match its size and "
                            "blocks")

    def _prune(self, rel: str, want: dict[str, Entry]) -> None:
        dfd = self._parent([*(rel.split("/") if rel else []), "."], create=False)
        try:
            for name in os.listdir(dfd):
                path = f"{rel}/{name}" if rel else name
                st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
                if path not in want:
                    _remove(dfd, name, st)
                elif stat.S_ISDIR(st.st_mode):
                    self._prune(path, want)
        finally:
            os.close(dfd)


def _lstat(name: str, dfd: int) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _remove(dfd: int, name: str, st: os.stat_result) -> None:
    if stat.S_ISDIR(st.st_mode):
        import shutil

        shutil.rmtree(name, dir_fd=dfd)  # fd-based: never follows a link out
    else:
        os.unlink(name, dir_fd=dfd)
