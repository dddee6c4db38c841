"""A WASI state as a snapshot stores it, and its untrusted way back in.

A saved descriptor names its file by the preopen it lives under (an index) and a path
relative to that preopen, never by a host path. The restoring side decides which host
directory each preopen is; :func:`restore_saved` then re-opens every descriptor with the
same walk as ``path_open`` (held directory fds, ``O_NOFOLLOW``), with only the access its
rights allow, never creating or truncating anything. :func:`check_saved` bounds every
field first, so a crafted state ends in one :class:`SavedStateError` line.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from time import monotonic_ns
from typing import Annotated

import msgspec

from foglayer.wasi import _memdir, abi
from foglayer.wasi._core import rights_for, stdio_descriptor
from foglayer.wasi._memdir import MemoryDirs
from foglayer.wasi._paths import MAX_PATH, WasiError, resolve
from foglayer.wasi._state import Descriptor, Preopen, WasiState, inside
from foglayer.wasi._wasi import Wasi

SAVED_VERSION = 1
MAX_FDS = 1 << 16
_I64 = Annotated[int, msgspec.Meta(ge=-(1 << 63), le=(1 << 63) - 1)]
_Rights = Annotated[int, msgspec.Meta(ge=0, le=abi.RIGHTS_ALL)]
_Text = Annotated[str, msgspec.Meta(max_length=MAX_PATH)]
_ALL_FDFLAGS = (abi.FDFLAG_APPEND | abi.FDFLAG_DSYNC | abi.FDFLAG_NONBLOCK | abi.FDFLAG_RSYNC
                | abi.FDFLAG_SYNC)


class SavedStateError(ValueError):
    """A saved WASI state that cannot be restored: the message says what and where."""


class SavedPreopen(msgspec.Struct, forbid_unknown_fields=True):
    guest: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_PATH)]
    readonly: bool = False
    host: _Text = ""  # where it was, for people to read: never opened on restore
    memory: bool = False  # a read-only directory held in memory: its bytes are never saved


class SavedFd(msgspec.Struct, forbid_unknown_fields=True):
    fd: Annotated[int, msgspec.Meta(ge=0, lt=1 << 31)]
    kind: Annotated[int, msgspec.Meta(ge=abi.FT_UNKNOWN, le=abi.FT_SYMLINK)]
    rights_base: _Rights
    rights_inheriting: _Rights
    flags: Annotated[int, msgspec.Meta(ge=0, le=_ALL_FDFLAGS)] = 0  # fdflags
    preopen: Annotated[int, msgspec.Meta(ge=-1, lt=MAX_FDS)] = -1  # index; -1: none
    path: _Text = "."  # relative to the preopen
    root: bool = False  # the preopen's own descriptor
    offset: Annotated[int, msgspec.Meta(ge=0, le=(1 << 63) - 1)] = 0
    stdio: Annotated[int, msgspec.Meta(ge=-1, le=2)] = -1
    guest_path: _Text = ""  # for people to read

    @property
    def is_file(self) -> bool:
        """A regular file under a preopen (not a standard stream)."""
        return self.kind == abi.FT_REG and self.stdio < 0

    @property
    def kind_name(self) -> str:
        return _KIND_NAMES.get(self.kind, str(self.kind))


_KIND_NAMES = {abi.FT_REG: "file", abi.FT_DIR: "dir", abi.FT_CHAR: "chardev",
               abi.FT_UNKNOWN: "stream", abi.FT_STREAM: "socket", abi.FT_DGRAM: "socket",
               abi.FT_SYMLINK: "symlink", abi.FT_BLOCK: "blockdev"}


class SavedWasi(msgspec.Struct, forbid_unknown_fields=True):
    version: int
    args: Annotated[list[str], msgspec.Meta(max_length=MAX_FDS)]
    env: dict[str, str]
    preopens: Annotated[list[SavedPreopen], msgspec.Meta(max_length=MAX_FDS)]
    fds: Annotated[list[SavedFd], msgspec.Meta(max_length=MAX_FDS)]
    monotonic_ns: _I64 = 0
    exit_code: Annotated[int, msgspec.Meta(ge=0, lt=1 << 32)] | None = None


# -- capture ---------------------------------------------------------------------------


def save_state(state: WasiState) -> SavedWasi:
    """The state as plain data, each descriptor named by preopen and relative path; one
    that no preopen holds gets preopen -1, which :func:`check_saved` refuses."""
    fds = []
    index = {p.guest: k for k, p in enumerate(state.preopens)}
    for fd, d in sorted(state.fds.items()):
        offset = d.offset  # a state read back (not live) has its offset recorded
        if d.host_fd >= 0 and d.kind == abi.FT_REG and d.stdio < 0:
            try:
                offset = os.lseek(d.host_fd, 0, os.SEEK_CUR)
            except OSError:
                pass
        preopen, rel = -1, "."
        if d.preopen is not None:
            preopen = index.get(d.preopen, -1)
        elif d.memory:  # a flat directory: the file's name, or the directory itself
            preopen = index.get(d.memory, -1)
            rel = os.path.basename(d.guest_path) if d.kind == abi.FT_REG else "."
        elif d.stdio < 0 and d.host_path:
            # The innermost preopen holding it with the same write permission: a file is
            # always below the preopen it was opened from (the walk never leaves it).
            best = max((k for k, p in enumerate(state.preopens)
                        if p.readonly == d.readonly and not p.memory
                        and inside(d.host_path, p.host)),
                       key=lambda k: len(state.preopens[k].host), default=-1)
            if best >= 0:
                preopen = best
                rel = os.path.relpath(d.host_path, state.preopens[best].host)
        fds.append(SavedFd(fd=fd, kind=d.kind, rights_base=d.rights_base,
                           rights_inheriting=d.rights_inheriting, flags=d.flags,
                           preopen=preopen, path=rel, root=d.preopen is not None,
                           offset=offset, stdio=d.stdio, guest_path=d.guest_path))
    return SavedWasi(version=SAVED_VERSION, args=list(state.args), env=dict(state.env),
                     preopens=[SavedPreopen(p.guest, p.readonly, p.host, p.memory)
                               for p in state.preopens],
                     fds=fds, monotonic_ns=monotonic_ns() + state.monotonic_offset_ns,
                     exit_code=state.exit_code)


# -- checks ----------------------------------------------------------------------------


def check_saved(saved: SavedWasi) -> None:
    """Everything a restore relies on, checked before anything is opened."""
    if saved.version != SAVED_VERSION:
        raise SavedStateError(f"wasi.version: {saved.version} is not {SAVED_VERSION}")
    for k, a in enumerate(saved.args):
        if "\0" in a:
            raise SavedStateError(f"wasi.args[{k}]: contains a NUL byte")
    for key, value in saved.env.items():
        if "\0" in key or "=" in key or "\0" in value:
            raise SavedStateError(f"wasi.env[{key[:40]!r}]: not a KEY=VALUE pair")
    seen: set[str] = set()
    for k, p in enumerate(saved.preopens):
        if "\0" in p.guest or p.guest in seen:
            raise SavedStateError(f"wasi.preopens[{k}].guest: {p.guest[:80]!r} is a NUL or "
                                  f"repeated name")
        if p.memory and not p.readonly:
            raise SavedStateError(f"wasi.preopens[{k}]: a memory directory is read-only")
        seen.add(p.guest)
    fds: set[int] = set()
    roots: set[int] = set()
    for k, d in enumerate(saved.fds):
        where = f"wasi.fds[{k}] (fd {d.fd})"
        if d.fd in fds:
            raise SavedStateError(f"{where}: fd repeated")
        fds.add(d.fd)
        if d.stdio >= 0:
            if d.preopen != -1 or d.root:
                raise SavedStateError(f"{where}: a standard stream under a preopen")
            continue
        if d.preopen == -1:
            raise SavedStateError(f"{where}: {d.guest_path[:80]!r} is not inside a preopen")
        if not 0 <= d.preopen < len(saved.preopens):
            raise SavedStateError(f"{where}: preopen {d.preopen} does not exist "
                                  f"({len(saved.preopens)} preopens)")
        if d.kind not in (abi.FT_REG, abi.FT_DIR):
            raise SavedStateError(f"{where}: only files and directories can be re-opened "
                                  f"(file type {d.kind})")
        path = d.path
        if "\0" in path or path.startswith("/") or ".." in path.split("/"):
            raise SavedStateError(f"{where}: path {path[:80]!r} is not a plain path "
                                  f"relative to its preopen")
        if saved.preopens[d.preopen].memory and "/" in path:
            raise SavedStateError(f"{where}: a memory directory holds names, not paths")
        if d.root:
            if d.kind != abi.FT_DIR or path != "." or d.preopen in roots:
                raise SavedStateError(f"{where}: not a valid preopen descriptor")
            roots.add(d.preopen)


# -- restore ---------------------------------------------------------------------------


_WRITE_RIGHTS = abi.RIGHTS_FILE_WRITE
_FDFLAG_HOST = ((abi.FDFLAG_APPEND, os.O_APPEND), (abi.FDFLAG_DSYNC, os.O_DSYNC),
                (abi.FDFLAG_SYNC, os.O_SYNC), (abi.FDFLAG_NONBLOCK, os.O_NONBLOCK),
                (abi.FDFLAG_RSYNC, os.O_RSYNC))


def access_for(rights_base: int, fdflags: int) -> tuple[bool, bool]:
    """``(read, write)``: the access a descriptor with these rights and flags is opened for."""
    write = bool(rights_base & _WRITE_RIGHTS) or bool(fdflags & abi.FDFLAG_APPEND)
    read = bool(rights_base & (abi.R.FD_READ | abi.R.FD_READDIR)) or not write
    return read, write


def host_open_flags(read: bool, write: bool, fdflags: int, directory: bool) -> int:
    """Host ``os.open`` flags for a WASI open: never following a symlink at the end."""
    flags = os.O_CLOEXEC | os.O_NOFOLLOW
    if directory:
        flags |= os.O_DIRECTORY
    flags |= os.O_RDWR if read and write else os.O_WRONLY if write else os.O_RDONLY
    for wasi_flag, host_flag in _FDFLAG_HOST:
        if fdflags & wasi_flag:
            flags |= host_flag
    return flags


def restore_saved(saved: SavedWasi, hosts: Sequence[str], stdio: Sequence[int] = (0, 1, 2),
                  memory_dirs: MemoryDirs | None = None) -> Wasi:
    """Re-open a checked saved state; ``hosts[k]`` is the directory granted to preopen k
    (ignored for memory directories, whose files come from ``memory_dirs``).

    Raises :class:`SavedStateError` and closes what it opened.
    """
    check_saved(saved)
    if len(hosts) != len(saved.preopens):
        raise SavedStateError(f"{len(hosts)} directories for {len(saved.preopens)} preopens")
    memory = {g: dict(f) for g, f in (memory_dirs or {}).items()}
    preopens = [Preopen("", p.guest, True, memory=True) if p.memory else
                Preopen(os.path.realpath(h), p.guest, p.readonly)
                for h, p in zip(hosts, saved.preopens, strict=True)]
    for p in preopens:
        if p.memory and p.guest not in memory:
            raise SavedStateError(f"memory directory {p.guest}: its files were not handed in")
    state = WasiState(args=list(saved.args), env=dict(saved.env), preopens=preopens,
                      monotonic_offset_ns=saved.monotonic_ns - monotonic_ns(),
                      exit_code=saved.exit_code)
    roots: list[int] = []
    try:
        for p in preopens:
            try:
                roots.append(_memdir.open_dead_dir() if p.memory else
                             os.open(p.host, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
            except OSError as e:
                raise SavedStateError(f"{p.host}: cannot open the directory for preopen "
                                      f"{p.guest}: {e.strerror}") from None
        for s in saved.fds:
            if s.stdio >= 0:
                d = stdio_descriptor(s.stdio, stdio[s.stdio])
                d.rights_base &= s.rights_base
                d.rights_inheriting &= s.rights_inheriting
                d.flags = s.flags
            elif preopens[s.preopen].memory and not s.root:
                try:
                    d = _reopen_memory(s, preopens[s.preopen], memory, rights_for)
                except OSError as e:
                    raise SavedStateError(f"fd {s.fd}: cannot re-open: {e.strerror}") from None
            else:
                d = _reopen(s, preopens[s.preopen], roots[s.preopen], rights_for)
            state.fds[s.fd] = d
        for k, p in enumerate(preopens):  # a preopen whose fd the guest closed
            if not any(d.preopen == p.guest for d in state.fds.values()):
                os.close(roots[k])
                roots[k] = -1
    except BaseException:
        for d in state.fds.values():
            if d.host_fd >= 0 and d.stdio < 0 and d.host_fd not in roots:
                os.close(d.host_fd)
        for fd in roots:
            if fd >= 0:
                os.close(fd)
        raise
    wasi = Wasi(state, stdio)
    wasi.memory = memory
    return wasi


def adopt(wasi: Wasi, new: Wasi) -> None:
    """Put ``new``'s state into ``wasi``, which an instance is already bound to (a live
    migration's target prepares its instance before the state arrives). ``wasi``'s own
    descriptors are closed; its memory and interrupt stay."""
    wasi.close()
    wasi.state, wasi.fds = new.state, new.state.fds
    wasi.stdio, wasi.memory = new.stdio, new.memory


def _reopen_memory(s: SavedFd, p: Preopen, memory: dict[str, dict[str, bytes]],
                   rights_for) -> Descriptor:
    files = memory[p.guest]
    if s.kind == abi.FT_REG and s.path not in files:
        raise SavedStateError(f"fd {s.fd}: {p.guest}/{s.path} is not in the memory directory")
    fd = _memdir.open_file(files[s.path]) if s.kind == abi.FT_REG else _memdir.open_dead_dir()
    base, inh = rights_for(s.kind, True, False, True)
    d = Descriptor(kind=s.kind, host_path="",
                   guest_path=f"{p.guest}/{s.path}" if s.kind == abi.FT_REG else p.guest,
                   rights_base=base & s.rights_base, rights_inheriting=inh & s.rights_inheriting,
                   flags=s.flags, open_flags=os.O_RDONLY, readonly=True, memory=p.guest)
    if s.kind == abi.FT_REG:
        os.lseek(fd, s.offset, os.SEEK_SET)
    d.host_fd = fd
    return d


def _reopen(s: SavedFd, p: Preopen, root_fd: int, rights_for) -> Descriptor:
    where = f"fd {s.fd} ({p.guest}/{s.path})"
    directory = s.kind == abi.FT_DIR
    # A directory is only ever opened for reading (path_open refuses more: EISDIR).
    read, write = (True, False) if directory else access_for(s.rights_base, s.flags)
    if write and p.readonly:
        raise SavedStateError(f"{where}: opened for writing in the read-only preopen {p.guest}")
    if s.root:
        base, inh = rights_for(abi.FT_DIR, True, not p.readonly, p.readonly)
        d = Descriptor(kind=abi.FT_DIR, host_path=p.host, guest_path=p.guest,
                       rights_base=base & s.rights_base, rights_inheriting=inh & s.rights_inheriting,
                       flags=s.flags, open_flags=os.O_RDONLY | os.O_DIRECTORY,
                       preopen=p.guest, readonly=p.readonly, memory=p.guest if p.memory else "")
        d.host_fd = root_fd
        return d
    flags = host_open_flags(read, write, s.flags, directory)
    try:
        with resolve(root_fd, p.host, s.path, False) as t:
            fd = os.open(t.name, flags, dir_fd=t.dirfd)  # no O_CREAT, no O_TRUNC: ever
            host = t.host
    except WasiError as e:
        raise SavedStateError(f"{where}: cannot be reached inside the preopen "
                              f"(WASI errno {e.errno})") from None
    except OSError as e:
        raise SavedStateError(f"{where}: cannot re-open: {e.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISDIR(mode) if directory else stat.S_ISREG(mode)):
            raise SavedStateError(f"{where}: is no longer a {'directory' if directory else 'file'}")
        base, inh = rights_for(s.kind, read, write, p.readonly)
        d = Descriptor(kind=s.kind, host_path=host,
                       guest_path=os.path.normpath(os.path.join(p.guest, s.path)),
                       rights_base=base & s.rights_base, rights_inheriting=inh & s.rights_inheriting,
                       flags=s.flags, open_flags=flags & ~(os.O_CLOEXEC | os.O_NOFOLLOW),
                       readonly=p.readonly)
        if s.kind == abi.FT_REG and not flags & os.O_APPEND:
            os.lseek(fd, s.offset, os.SEEK_SET)
        d.host_fd = fd
    except BaseException:
        os.close(fd)
        raise
    return d
