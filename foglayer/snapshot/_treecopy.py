"""Pre-copy of an app's volumes: directory trees moved in rounds, by content hash.

The source (:class:`TreeStream`) remembers what the target has (each file's size and
sha256); a round sends the files that changed, in pieces of bounded chunks, and ends with
the whole tree's manifest. The target (:class:`TreeSink`) writes only below a directory it
chose, through held directory fds and ``O_NOFOLLOW`` (as the WASI walk does), never more
bytes than its limit; a manifest makes the tree exactly that (files checked against their
hashes, links that stay inside, what is gone removed). Everything it receives is untrusted.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Literal

import msgspec

from foglayer.snapshot._errors import SnapshotError
from foglayer.snapshot._precopy import MAX_CHUNK, frame, unframe

TREE_MAGIC = b"FOGTREE\0"
PIECE = 4 << 20  # file bytes per chunk
MAX_ENTRIES = 1 << 20
_Path = Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
_U63 = Annotated[int, msgspec.Meta(ge=0, le=(1 << 63) - 1)]
_SHA256 = re.compile(r"[0-9a-f]{64}")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Entry(msgspec.Struct, array_like=True, frozen=True):
    """``[path, kind, mode, size, sha256 or link target]`` of one thing in the tree."""

    path: _Path
    kind: Literal["dir", "file", "link"]
    mode: Annotated[int, msgspec.Meta(ge=0, le=0o777)]
    size: _U63
    ref: Annotated[str, msgspec.Meta(max_length=4096)]  # a file's sha256, a link's target


class Piece(msgspec.Struct, array_like=True, frozen=True):
    """``[path, offset in the file, offset in the chunk's data, length]``."""

    path: _Path
    offset: _U63
    data_offset: Annotated[int, msgspec.Meta(ge=0, le=MAX_CHUNK)]
    length: Annotated[int, msgspec.Meta(ge=0, le=PIECE)]


class TreeHeader(msgspec.Struct, forbid_unknown_fields=True):
    round: Annotated[int, msgspec.Meta(ge=0, lt=1 << 32)]
    seq: Annotated[int, msgspec.Meta(ge=0, lt=1 << 32)]
    data_length: Annotated[int, msgspec.Meta(ge=0, le=MAX_CHUNK)]
    pieces: Annotated[list[Piece], msgspec.Meta(max_length=4096)] = []
    manifest: Annotated[list[Entry], msgspec.Meta(max_length=MAX_ENTRIES)] | None = None


_decoder = msgspec.json.Decoder(TreeHeader)


@dataclass(frozen=True, slots=True)
class TreeRound:
    number: int
    chunks: list[bytes]
    files: int  # files sent (changed or new)
    bytes: int  # of the chunks


# -- the source -------------------------------------------------------------------------


def _sha256_fd(fd: int) -> str:
    h, pos = hashlib.sha256(), 0
    while chunk := os.pread(fd, 1 << 20, pos):
        h.update(chunk)
        pos += len(chunk)
    return h.hexdigest()


class TreeStream:
    """The sending side: rounds of the files below ``root`` that the target lacks.

    A file's hash in the manifest is the hash of the very bytes sent, so a file written
    while it is read is consistent on the target, and sent again next round.
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
                    fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                    st = os.fstat(fd)
                    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
                    yield Entry(rel, "file", mode, st.st_size, ""), fd, key

    def next_round(self) -> TreeRound:
        """Chunks of every file that changed since the last round, then the manifest."""
        number, self.rounds = self.rounds, self.rounds + 1
        out = _Writer(number)
        manifest: list[Entry] = []
        for entry, fd, key in self._scan():
            if fd < 0:
                manifest.append(entry)
                continue
            try:
                old = self.sent.get(entry.path)
                if old is not None and self._keys.get(entry.path) == key and old.mode == entry.mode:
                    manifest.append(old)  # untouched since it was sent
                    continue
                if old is not None and (old.size, old.mode) == (entry.size, entry.mode) \
                        and _sha256_fd(fd) == old.ref:
                    self._keys[entry.path] = key  # touched, not changed
                    manifest.append(old)
                    continue
                size, digest = out.add(entry.path, lambda n, at, fd=fd: os.pread(fd, n, at),
                                       entry.size)
                self._keys[entry.path] = key
                manifest.append(Entry(entry.path, "file", entry.mode, size, digest))
            finally:
                os.close(fd)
        chunks = out.finish(manifest)
        self.sent = {e.path: e for e in manifest}
        return TreeRound(number, chunks, out.files, sum(len(c) for c in chunks))


class _Writer:
    """Tree chunks: files in pieces of bounded chunks, the manifest in the last chunk."""

    def __init__(self, number: int) -> None:
        self.number, self.files = number, 0
        self.chunks: list[bytes] = []
        self.pieces: list[Piece] = []
        self.parts: list[bytes] = []
        self.used = 0

    def _flush(self, manifest: list[Entry] | None = None) -> None:
        head = TreeHeader(round=self.number, seq=len(self.chunks), data_length=self.used,
                          pieces=list(self.pieces), manifest=manifest)
        self.chunks.append(frame(TREE_MAGIC, head, self.parts))
        self.pieces.clear()
        self.parts.clear()
        self.used = 0

    def add(self, path: str, read, size: int) -> tuple[int, str]:
        """A whole file, ``read(n, offset)`` up to ``size`` bytes: its size and sha256 (of
        the very bytes sent: a file written meanwhile is consistent, and goes again)."""
        self.files += 1
        h, offset = hashlib.sha256(), 0
        while True:  # an empty file is one empty piece
            if self.used >= PIECE or len(self.pieces) == 4096:
                self._flush()
            data = read(PIECE - self.used, offset)
            h.update(data)
            self.pieces.append(Piece(path, offset, self.used, len(data)))
            self.parts.append(data)
            self.used += len(data)
            offset += len(data)
            if not data or offset >= size:
                return offset, h.hexdigest()

    def finish(self, manifest: list[Entry]) -> list[bytes]:
        if self.pieces:
            self._flush()
        self._flush(manifest)
        return self.chunks


def check_manifest(manifest: list[Entry], where: str) -> None:
    """Every path plain and relative, once; every link's target inside the tree; every file
    named by a full sha256 (untrusted: a stored or received manifest is checked first)."""
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
        elif e.kind == "file" and not _SHA256.fullmatch(e.ref):
            raise SnapshotError(f"{where}: file {e.path[:200]!r} has no sha256")


def tree_chunks(manifest: list[Entry], blob, *, number: int = 0,
                where: str = "stored volume") -> list[bytes]:
    """A whole tree as chunks a :class:`TreeSink` applies: every file's bytes from
    ``blob(sha256, size)`` (checked against the manifest), then the manifest."""
    check_manifest(manifest, where)
    out = _Writer(number)
    for e in manifest:
        if e.kind != "file":
            continue
        data = blob(e.ref, e.size)
        if len(data) != e.size or hashlib.sha256(data).hexdigest() != e.ref:
            raise SnapshotError(f"{where}: file {e.path[:200]!r} does not match its sha256")
        out.add(e.path, lambda n, at, data=data: data[at:at + n], e.size)
    return out.finish(manifest)


class TreeCollector:
    """One round of a tree, checked whole and held in memory by whoever stores volumes by
    content hash (never written anywhere): the files that came, and the manifest."""

    def __init__(self, *, max_bytes: int, where: str = "volume stream") -> None:
        self.max_bytes, self.where = max_bytes, where
        self.files: dict[str, bytearray] = {}
        self.manifest: list[Entry] | None = None
        self.received = 0

    def apply(self, chunk: bytes | memoryview) -> int:
        head, data = unframe(chunk, TREE_MAGIC, _decoder, "volume chunk", self.where)
        assert isinstance(head, TreeHeader)
        where = f"{self.where}: round {head.round} chunk {head.seq}"
        if head.data_length != len(data) or self.manifest is not None:
            raise SnapshotError(f"{where}: data length, or a chunk after the manifest")
        total = sum(p.length for p in head.pieces)
        if self.received + total > self.max_bytes:
            raise SnapshotError(f"{where}: over the limit of {self.max_bytes} bytes of files")
        for p in head.pieces:
            _plain(p.path, where)
            buf = self.files.get(p.path) if p.offset else None
            if p.data_offset + p.length > len(data) or (p.offset and (
                    buf is None or len(buf) != p.offset)):
                raise SnapshotError(f"{where}: piece of {p.path[:200]!r} out of range or order")
        for p in head.pieces:
            if p.offset == 0:
                self.files[p.path] = bytearray()  # a changed file comes whole
            self.files[p.path] += data[p.data_offset:p.data_offset + p.length]
        self.received += total
        if head.manifest is not None:
            check_manifest(head.manifest, where)
            self.manifest = head.manifest
        return len(head.pieces)

    def blobs(self) -> dict[str, bytes]:
        """sha256 -> content of the manifest's files that came in this round (each checked);
        the others the receiver must already hold."""
        if self.manifest is None:
            raise SnapshotError(f"{self.where}: the round has no manifest")
        out = {}
        for e in self.manifest:
            data = self.files.get(e.path) if e.kind == "file" else None
            if data is None:
                continue
            if len(data) != e.size or hashlib.sha256(data).hexdigest() != e.ref:
                raise SnapshotError(f"{self.where}: file {e.path[:200]!r} does not match its "
                                    "size and sha256")
            out[e.ref] = bytes(data)
        return out


# -- the target -------------------------------------------------------------------------


def _plain(path: str, where: str) -> list[str]:
    parts = path.split("/")
    if "\0" in path or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise SnapshotError(f"{where}: {path[:200]!r} is not a plain relative path")
    return parts


class TreeSink:
    """The receiving side: makes ``dest`` (a directory this side chose) the source's tree.

    ``max_bytes`` bounds the file bytes written in all.
    """

    def __init__(self, dest: str | os.PathLike, *, max_bytes: int = 2 << 30,
                 where: str = "volume stream") -> None:
        os.makedirs(dest, mode=0o700, exist_ok=True)
        self.dest, self.max_bytes, self.where = os.path.realpath(dest), max_bytes, where
        self.written = 0

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
        """Check a chunk whole, then write its pieces (and apply its manifest)."""
        head, data = unframe(chunk, TREE_MAGIC, _decoder, "volume chunk", self.where)
        assert isinstance(head, TreeHeader)
        where = f"{self.where}: round {head.round} chunk {head.seq}"
        if head.data_length != len(data):
            raise SnapshotError(f"{where}: {len(data)} bytes of data, {head.data_length} declared")
        total = sum(p.length for p in head.pieces)
        if self.written + total > self.max_bytes:
            raise SnapshotError(f"{where}: over the limit of {self.max_bytes} bytes of files")
        for p in head.pieces:
            _plain(p.path, where)
            if p.data_offset + p.length > len(data) or p.offset + p.length > self.max_bytes:
                raise SnapshotError(f"{where}: piece of {p.path[:200]!r} out of range")
        try:
            for p in head.pieces:
                parts = _plain(p.path, where)
                dfd = self._parent(parts, create=True)
                try:
                    fd = os.open(parts[-1], os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                                 0o600, dir_fd=dfd)
                finally:
                    os.close(dfd)
                try:
                    if p.offset == 0:
                        os.ftruncate(fd, 0)  # a changed file comes whole
                    os.pwrite(fd, data[p.data_offset:p.data_offset + p.length], p.offset)
                finally:
                    os.close(fd)
                self.written += p.length
            if head.manifest is not None:
                self._settle(head.manifest, where)
        except OSError as e:
            raise SnapshotError(f"{where}: cannot write below {self.dest}: "
                                f"{e.strerror}") from None
        return len(head.pieces)

    def _settle(self, manifest: list[Entry], where: str) -> None:
        """Make the tree exactly the manifest: dirs, links, files checked, the rest removed."""
        check_manifest(manifest, where)
        want = {}
        for e in manifest:
            parts = _plain(e.path, where)
            want[e.path] = e
            dfd = self._parent(parts, create=True)
            try:
                name = parts[-1]
                try:
                    st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
                except FileNotFoundError:
                    st = None
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
                    if st is None or not stat.S_ISREG(st.st_mode):
                        raise SnapshotError(f"{where}: file {e.path[:200]!r} never arrived")
                    fd = os.open(name, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
                    try:
                        if os.fstat(fd).st_size != e.size or _sha256_fd(fd) != e.ref:
                            raise SnapshotError(f"{where}: file {e.path[:200]!r} does not "
                                                f"match its size and sha256")
                        os.fchmod(fd, e.mode & 0o755 | 0o600)
                    finally:
                        os.close(fd)
            finally:
                os.close(dfd)
        self._prune("", want)

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


def _remove(dfd: int, name: str, st: os.stat_result) -> None:
    if stat.S_ISDIR(st.st_mode):
        import shutil

        shutil.rmtree(name, dir_fd=dfd)  # fd-based: never follows a link out
    else:
        os.unlink(name, dir_fd=dfd)
