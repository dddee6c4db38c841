"""The files a snapshot refers to: records of open files, and archives of preopened trees.

Both come back from untrusted snapshots. An open file is judged by its content (sha256
of what the re-opened descriptor reads), never by size and mtime a snapshot could copy.
An archive unpacks only regular files, directories and symlinks that stay inside, into
fresh directories the restore chose, through a temporary directory renamed when whole.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

from foglayer.snapshot._errors import FilesChanged, SnapshotError
from foglayer.snapshot._meta import FileRecord
from foglayer.wasi import WasiState

# (dev, ino, size, mtime_ns, ctime_ns) -> sha256; ctime cannot be set back by utime()
_HASHES: dict[tuple[int, int, int, int, int], str] = {}
_CHUNK = 1 << 20


def fd_hash(fd: int, st: os.stat_result | None = None, cached: bool = True) -> str:
    """sha256 of a file's content read through ``fd`` (its offset is left alone)."""
    st = st or os.fstat(fd)
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    digest = _HASHES.get(key) if cached else None
    if digest is None:
        # A write-only descriptor cannot be read: read the same open file through /proc
        # (the same inode, no path walked).
        rd = fd if _readable(fd) else os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            h, pos = hashlib.sha256(), 0
            while chunk := os.pread(rd, _CHUNK, pos):
                h.update(chunk)
                pos += len(chunk)
        finally:
            if rd != fd:
                os.close(rd)
        digest = h.hexdigest()
        _HASHES[key] = digest  # this process's own checkpoints: unchanged files hash once
    return digest


def _readable(fd: int) -> bool:
    import fcntl

    return fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE != os.O_WRONLY


def _regular(state: WasiState):
    for fd, d in sorted(state.fds.items()):
        if d.memory:  # a secret: not even its hash goes into a snapshot
            continue
        if stat.S_ISREG(os.fstat(d.host_fd).st_mode if d.host_fd >= 0 else 0) and d.stdio < 0:
            yield fd, d


def open_files(state: WasiState) -> list[FileRecord]:
    """Size and content hash of every regular file the guest has open."""
    out = []
    for fd, d in _regular(state):
        st = os.fstat(d.host_fd)
        out.append(FileRecord(fd=fd, size=st.st_size, sha256=fd_hash(d.host_fd, st),
                              guest_path=d.guest_path))
    return out


def check_files(records: Sequence[FileRecord], state: WasiState) -> None:
    """Refuse to resume over open files whose content changed since the snapshot.

    The descriptors are already re-opened (inside their preopens): the hash is of what
    they read, so nothing can swap the file between this check and the run.
    """
    for rec in records:
        d = state.fds[rec.fd]
        st = os.fstat(d.host_fd)
        if st.st_size != rec.size:
            raise FilesChanged(f"{d.guest_path}: changed since the snapshot (size {st.st_size}, "
                               f"was {rec.size}): refusing to resume over it", remedy="force")
        if fd_hash(d.host_fd, st, cached=False) != rec.sha256:
            raise FilesChanged(f"{d.guest_path}: changed since the snapshot (content differs): "
                               f"refusing to resume over it", remedy="force")


# -- archives of the preopened trees ------------------------------------------------------


def pack_trees(state: WasiState, exclude: set[str] = frozenset()) -> bytes:
    """A tar of every preopened directory, preopen k under ``k/``: files, dirs, symlinks."""
    buf = io.BytesIO()
    excl = {os.path.realpath(p) for p in exclude}
    temps = tuple(f".{os.path.basename(e)}." for e in excl)  # their temp files

    with tarfile.open(fileobj=buf, mode="w:", format=tarfile.PAX_FORMAT) as tar:
        for k, p in enumerate(state.preopens):
            if p.memory:  # secrets never leave in a snapshot
                continue
            root = Path(p.host)
            tar.addfile(_dir_info(f"{k}", root))
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames.sort()
                for name in sorted(dirnames) + sorted(filenames):
                    full = os.path.join(dirpath, name)
                    if os.path.realpath(full) in excl or (temps and name.startswith(temps)):
                        continue
                    info = tar.gettarinfo(full, arcname=f"{k}/{os.path.relpath(full, root)}")
                    if info.islnk():  # a second name of a file: stored as a file again
                        info.type, info.linkname = tarfile.REGTYPE, ""
                        info.size = os.lstat(full).st_size
                    if info.isreg():
                        with open(full, "rb") as f:
                            tar.addfile(info, f)
                    elif info.isdir() or info.issym():
                        tar.addfile(info)
    return buf.getvalue()


def _dir_info(name: str, root: Path) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    st = root.stat()
    info.mode, info.mtime = st.st_mode & 0o7777, st.st_mtime
    return info


def safe_name(guest: str, k: int) -> str:
    """A directory name for preopen ``guest`` that is one plain component (``/..`` too)."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", guest.strip("/")).strip("_")
    return name or f"preopen{k}"


def _strict(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    """tarfile's ``data`` filter, and then only files, directories and inner symlinks."""
    if not (member.isreg() or member.isdir() or member.issym()):
        raise SnapshotError(f"{member.name[:200]!r} is a "
                            f"{'hard link' if member.islnk() else 'special file'}; only files, "
                            f"directories and symlinks are unpacked")
    try:
        return tarfile.data_filter(member, dest)
    except tarfile.FilterError as e:
        raise SnapshotError(f"{member.name[:200]!r}: {e}") from None


class Unpacked:
    """Trees unpacked into fresh directories; :meth:`undo` removes them again."""

    def __init__(self) -> None:
        self.made: list[Path] = []

    def undo(self) -> None:
        for d in self.made:
            shutil.rmtree(d, ignore_errors=True)
        self.made.clear()


def unpack_trees(archive: io.BufferedIOBase, targets: Sequence[str | None],
                 force: bool = False) -> Unpacked:
    """Unpack preopen k's tree (``k/`` in the tar) into ``targets[k]`` (None: it has none).

    Each target must be new or empty (unless ``force``). Everything goes to temporary
    directories beside the targets first; they are renamed into place only when the whole
    archive unpacked, so a refused archive leaves nothing behind.
    """
    dests = [Path(t).absolute() if t else None for t in targets]
    for dest in filter(None, dests):
        if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
            raise SnapshotError(f"{dest}: not a directory")
        if dest.exists() and any(dest.iterdir()) and not force:
            raise SnapshotError(f"{dest}: not empty: the snapshot carries the files and will "
                                f"not unpack over a directory (pick an empty one)", remedy="force")
    temps: list[Path | None] = []
    done = Unpacked()
    try:
        for dest in dests:
            if dest is None:
                temps.append(None)
                continue
            missing = [p for p in dest.parents if not p.exists()]
            if missing:  # made here: removed again if the archive is refused
                done.made.append(missing[-1])
            dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            temps.append(Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent)))
        with tarfile.open(fileobj=archive, mode="r:") as tar:  # explicit: never a probe
            for m in tar:
                top, _, rest = m.name.partition("/")
                k = int(top) if top.isdigit() and len(top) < 6 else -1
                if not 0 <= k < len(temps) or temps[k] is None:
                    raise SnapshotError(f"{m.name[:200]!r} belongs to no preopen")
                if not rest:
                    continue  # the preopen's own directory: the temp dir stands for it
                tar.extract(m.replace(name=rest, deep=False), temps[k],
                            filter=lambda mem, dest: _strict(mem, dest))
        made = done.made
        done.made = []  # from here: only what is moved into place
        for temp, dest in zip(temps, dests, strict=True):
            if temp is None or dest is None:
                continue
            if dest.exists():
                done.made += _merge(temp, dest)
            else:
                os.rename(temp, dest)
                done.made.append(dest)
        done.made += made
    except (tarfile.TarError, OSError) as e:
        done.undo()
        raise SnapshotError(f"cannot unpack the snapshot's files: {e}") from None
    except BaseException:
        done.undo()
        raise
    finally:
        for temp in filter(None, temps):
            shutil.rmtree(temp, ignore_errors=True)
    return done


def _merge(temp: Path, dest: Path) -> list[Path]:
    """Move the unpacked entries into an existing directory (empty, or ``force``)."""
    moved = []
    for entry in sorted(temp.iterdir()):
        target = dest / entry.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        os.rename(entry, target)
        moved.append(target)
    return moved
