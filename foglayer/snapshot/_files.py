"""The files a snapshot refers to: records of open files, and archives of preopened trees."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
from pathlib import Path
from typing import Any

from foglayer.snapshot._errors import FilesChanged, SnapshotError
from foglayer.wasi import WasiState
from foglayer.wasi import _abi as abi

_HASHES: dict[tuple[int, int, int, int], str] = {}  # (dev, ino, size, mtime_ns) -> sha256


def file_hash(path: str, st: os.stat_result | None = None) -> str:
    st = st or os.stat(path)
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    digest = _HASHES.get(key)
    if digest is None:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        digest = _HASHES[key] = h.hexdigest()
    return digest


def open_files(state: WasiState) -> list[dict[str, Any]]:
    """Size, mtime and content hash of every regular file the guest has open."""
    out = []
    for fd, d in sorted(state.fds.items()):
        if d.kind != abi.FT_REG or d.stdio >= 0 or not d.host_path:
            continue
        st = os.fstat(d.host_fd) if d.host_fd >= 0 else os.stat(d.host_path)
        out.append({"fd": fd, "guest_path": d.guest_path, "host_path": d.host_path,
                    "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                    "sha256": file_hash(d.host_path, os.stat(d.host_path))})
    return out


def check_files(records: list[dict[str, Any]], state: WasiState) -> None:
    """Refuse to resume over open files that changed since the snapshot.

    Size and mtime are the quick check; when the mtime differs (a copy, a touch) the
    content hash decides.
    """
    by_fd = state.fds
    for rec in records:
        d = by_fd.get(rec["fd"])
        path = d.host_path if d is not None else rec["host_path"]
        try:
            st = os.stat(path)
        except OSError:
            raise FilesChanged(f"{path}: the app had {rec['guest_path']} open, and it is gone",
                               remedy="force") from None
        if st.st_size != rec["size"]:
            raise FilesChanged(f"{path}: changed since the snapshot (size {st.st_size}, was "
                               f"{rec['size']}): refusing to resume over it", remedy="force")
        if st.st_mtime_ns != rec["mtime_ns"] and file_hash(path, st) != rec["sha256"]:
            raise FilesChanged(f"{path}: changed since the snapshot (content differs): "
                               f"refusing to resume over it", remedy="force")


def pack_trees(state: WasiState, exclude: set[str] = frozenset()) -> bytes:
    """A zstd-compressed tar of every preopened directory, by guest name."""
    import zstandard

    buf = io.BytesIO()
    excl = {os.path.realpath(p) for p in exclude}
    temps = tuple(f".{os.path.basename(e)}." for e in excl)  # their temp files

    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for k, p in enumerate(state.preopens):
            root = Path(p.host)
            tar.addfile(_dir_info(f"{k}", root))
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames.sort()
                for name in sorted(dirnames) + sorted(filenames):
                    full = os.path.join(dirpath, name)
                    if os.path.realpath(full) in excl or (temps and name.startswith(temps)):
                        continue
                    arc = f"{k}/{os.path.relpath(full, root)}"
                    info = tar.gettarinfo(full, arcname=arc)
                    if info.isreg():
                        with open(full, "rb") as f:
                            tar.addfile(info, f)
                    elif info.isdir() or info.issym():
                        tar.addfile(info)
    return zstandard.ZstdCompressor(level=3).compress(buf.getvalue())


def _dir_info(name: str, root: Path) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    st = root.stat()
    info.mode, info.mtime = st.st_mode & 0o7777, st.st_mtime
    return info


def unpack_trees(archive: bytes, state: WasiState, targets: dict[str, str],
                 force: bool = False) -> None:
    """Unpack each preopen's tree into ``targets[guest]`` (empty or new, unless ``force``)."""
    import zstandard

    try:
        raw = zstandard.ZstdDecompressor().decompressobj().decompress(archive)
    except zstandard.ZstdError as e:
        raise SnapshotError(f"corrupted files archive in the snapshot: {e}") from None
    for p in state.preopens:
        dest = Path(targets[p.guest])
        if dest.exists() and any(dest.iterdir()) and not force:
            raise SnapshotError(f"{dest}: not empty: the snapshot carries the files of "
                                f"{p.guest} and will not overwrite a directory "
                                f"(pick an empty one)", remedy="force")
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r") as tar:
        members = tar.getmembers()
        for k, p in enumerate(state.preopens):
            dest = Path(targets[p.guest])
            dest.mkdir(parents=True, exist_ok=True)
            prefix = f"{k}/"
            mine = []
            for m in members:
                if m.name.startswith(prefix):
                    m = m.replace(name=m.name[len(prefix):], deep=False)
                    mine.append(m)
            for m in mine:
                target = dest / m.name
                if force and target.is_dir() and not m.isdir() and not target.is_symlink():
                    shutil.rmtree(target)
            try:
                tar.extractall(dest, members=mine, filter="tar")
            except (tarfile.TarError, OSError) as e:
                raise SnapshotError(f"{dest}: cannot unpack the snapshot's files: {e}") from None
