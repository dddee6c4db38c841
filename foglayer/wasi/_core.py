"""The core of our WASI: the descriptor table, construction and restore, and the helpers
that every family of calls (``_fd``, ``_path``, ``_poll``, ``_sock``, ``_proc``) uses.

Every call takes the raw integer arguments the guest passed and returns a WASI errno. Guest
memory is reached through a cached ``memoryview`` (``GuestMemory``) that re-maps itself only
when the guest has grown its memory; every call checks its own pointers against it. File
data moves straight between the OS and guest memory (``os.readv``/``os.writev`` on views).
"""

from __future__ import annotations

import os
import posixpath
import select
import stat
import struct
import time
from collections.abc import Sequence
from typing import Self

from foglayer.errors import FogError
from foglayer.wasi import _memdir, abi
from foglayer.wasi._memory import GuestMemory, Interrupt, Interrupted, NoMemory
from foglayer.wasi._paths import Target, WasiError, resolve
from foglayer.wasi._state import Descriptor, Preopen, WasiState
from foglayer.wasi.abi import E, R

U32 = struct.Struct("<I")
U64 = struct.Struct("<Q")
IOVEC = struct.Struct("<II")
FDSTAT = struct.Struct("<BxHxxxxQQ")
FILESTAT = struct.Struct("<QQB7xQQQQQ")
DIRENT = struct.Struct("<QQIB3x")
PRESTAT = struct.Struct("<BxxxI")
SUBSCRIPTION = struct.Struct("<QB7xIxxxxQQH6x")  # userdata, tag, clock id / fd, timeout, precision, flags
EVENT = struct.Struct("<QHBxxxxxQH6x")  # userdata, error, type, nbytes, flags

WRITE_RIGHTS_FOR_OPEN = abi.RIGHTS_FILE_WRITE
READ_RIGHTS_FOR_OPEN = R.FD_READ | R.FD_READDIR

ADVICE = {
    0: os.POSIX_FADV_NORMAL, 1: os.POSIX_FADV_SEQUENTIAL, 2: os.POSIX_FADV_RANDOM,
    3: os.POSIX_FADV_WILLNEED, 4: os.POSIX_FADV_DONTNEED, 5: os.POSIX_FADV_NOREUSE,
}

monotonic_ns = time.monotonic_ns
time_ns = time.time_ns


class ProcExit(Exception):
    """Raised out of ``proc_exit``: the binding turns it into a trap that ends the run."""

    def __init__(self, code: int) -> None:
        self.code = code


def wait(interrupt: Interrupt | None, readers: list[int], writers: list[int],
         timeout: float | None) -> tuple[list[int], list[int]]:
    """``select`` that also ends when the instance is stopped or its deadline passes
    (then raises :class:`Interrupted`): a sleeping guest obeys ``--timeout`` and ``fog stop``."""
    if interrupt is None:
        if not readers and not writers:
            time.sleep(timeout or 0)
            return [], []
        r, w, _ = select.select(readers, writers, [], timeout)
        return r, w
    stop = interrupt.fileno()
    left = interrupt.remaining()
    cut = left is not None and (timeout is None or left < timeout)
    r, w, _ = select.select([*readers, stop], writers, [], left if cut else timeout)
    if stop in r or (cut and not r and not w):
        raise Interrupted
    return r, w


def check_interrupt(interrupt: Interrupt | None) -> None:
    """Raise :class:`Interrupted` if the instance was stopped or its deadline passed: long
    host work checks this between steps."""
    if interrupt is None:
        return
    if interrupt.remaining() == 0 or select.select([interrupt.fileno()], [], [], 0)[0]:
        raise Interrupted


def filetype(mode: int) -> int:
    if stat.S_ISREG(mode):
        return abi.FT_REG
    if stat.S_ISDIR(mode):
        return abi.FT_DIR
    if stat.S_ISLNK(mode):
        return abi.FT_SYMLINK
    if stat.S_ISCHR(mode):
        return abi.FT_CHAR
    if stat.S_ISBLK(mode):
        return abi.FT_BLOCK
    if stat.S_ISSOCK(mode):
        return abi.FT_STREAM
    return abi.FT_UNKNOWN


def rights_for(kind: int, readable: bool, writable: bool, readonly_tree: bool) -> tuple[int, int]:
    if kind == abi.FT_DIR:
        base, inh = abi.RIGHTS_DIRECTORY, abi.RIGHTS_DIRECTORY | abi.RIGHTS_REGULAR_FILE
    elif kind == abi.FT_REG:
        base, inh = abi.RIGHTS_REGULAR_FILE, 0
        if not readable:
            base &= ~R.FD_READ
        if not writable:
            base &= ~WRITE_RIGHTS_FOR_OPEN
    else:
        base, inh = abi.RIGHTS_TTY, 0
        if not readable:
            base &= ~R.FD_READ
        if not writable:
            base &= ~R.FD_WRITE
    if readonly_tree:
        # Inheriting keeps the file write rights so that a libc open(O_WRONLY) asks for
        # them and gets EPERM (as wasmtime), not a silently read-only descriptor.
        base &= ~abi.RIGHTS_WRITE
        inh &= ~(abi.RIGHTS_WRITE & ~WRITE_RIGHTS_FOR_OPEN)
    return base, inh


def stdio_descriptor(n: int, host_fd: int) -> Descriptor:
    # As wasmtime: a terminal is a character device, anything else (file, pipe) unknown.
    kind = abi.FT_CHAR if os.isatty(host_fd) else abi.FT_UNKNOWN
    base, inh = rights_for(kind, n == 0, n != 0, False)
    d = Descriptor(kind=kind, host_path="", guest_path=f"<stdio:{n}>",
                   rights_base=base, rights_inheriting=inh, stdio=n)
    d.host_fd = host_fd
    return d


DEFAULT_MAX_FDS = 1024


class PreopenError(FogError):
    """Preopened directories that cannot be granted as given (e.g. two with one guest name)."""


def normalise_preopens(preopens: Sequence[Preopen]) -> list[Preopen]:
    """The preopens as granted: guest names normalised (``//a//b//`` is ``/a/b``), each name
    once, and one host directory granted under several names read-only under all of them
    if under any (``:ro`` must not be defeated by naming the directory twice)."""
    out: list[Preopen] = []
    names: set[str] = set()
    readonly: set[tuple[int, int]] = set()
    keys: list[tuple[int, int] | None] = []
    for p in preopens:
        guest = _guest_name(p.guest)
        if guest in names:
            raise PreopenError(f"preopen {p.guest!r}: the guest directory {guest} is given twice",
                               where=p.guest, remedy="dirs", subject=p.guest)
        names.add(guest)
        key = None
        if not p.memory:
            try:
                st = os.stat(p.host)
            except OSError as e:
                raise PreopenError(f"preopen {p.guest!r}: {p.host}: {e.strerror}",
                                   where=p.host, remedy="dirs", subject=p.guest) from None
            key = (st.st_dev, st.st_ino)
            if p.readonly:
                readonly.add(key)
        keys.append(key)
        out.append(Preopen(host=p.host, guest=guest, readonly=p.readonly, memory=p.memory))
    for p, key in zip(out, keys, strict=True):
        if key in readonly:
            p.readonly = True
    return out


def _guest_name(guest: str) -> str:
    if not guest or "\0" in guest:
        raise PreopenError(f"preopen guest directory {guest!r}: not a directory name",
                           where=guest, remedy="dirs", subject=guest)
    name = posixpath.normpath(guest)
    return "/" + name.lstrip("/") if guest.startswith("/") else name


class WasiCore:
    """The WASI host of one instance. ``state`` is its whole, serializable state.

    ``max_fds`` caps the descriptors the guest holds open (stdio and preopens count): past
    it, opening one more is ``EMFILE``, so that a guest exhausts its own budget, never the
    host process's.
    """

    max_fds: int = DEFAULT_MAX_FDS

    def __init__(self, state: WasiState, stdio: Sequence[int] = (0, 1, 2)) -> None:
        self.state = state
        self.fds: dict[int, Descriptor] = state.fds
        self.mem: GuestMemory = NoMemory()
        self.stdio = tuple(stdio)
        self.memory: dict[str, dict[str, bytes]] = {}
        self.interrupt: Interrupt | None = None  # set by the runtime: blocking calls wait on it

    # -- construction -------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        preopens: Sequence[Preopen] = (),
        stdio: Sequence[int] = (0, 1, 2),
        memory_dirs: _memdir.MemoryDirs | None = None,
        max_fds: int | None = None,
    ) -> Self:
        """A fresh WASI: stdio on fds 0–2, then the preopens from fd 3 in order, then the
        read-only ``memory_dirs`` (guest dir -> {name: bytes}; see ``_memdir``).
        ``max_fds``: see the class (default :data:`DEFAULT_MAX_FDS`)."""
        preopens = normalise_preopens(preopens)
        state = WasiState(args=list(args), env=dict(env or {}), preopens=list(preopens))
        self = cls(state, stdio)
        if max_fds is not None:
            self.max_fds = max_fds
        for n in range(3):
            self.fds[n] = stdio_descriptor(n, self.stdio[n])
        for p in preopens:
            self._open_preopen(p)
        for guest, files in (memory_dirs or {}).items():
            p = Preopen(host="", guest=guest, readonly=True, memory=True)
            state.preopens.append(p)
            self.memory[guest] = dict(files)
            self._open_preopen(p)
        return self

    def _open_preopen(self, p: Preopen) -> None:
        if p.memory:
            host, fd = "", _memdir.open_dead_dir()
        else:
            host = os.path.realpath(p.host)
            p.host = host
            fd = os.open(host, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        base, inh = rights_for(abi.FT_DIR, True, not p.readonly, p.readonly)
        d = Descriptor(kind=abi.FT_DIR, host_path=host, guest_path=p.guest, rights_base=base,
                       rights_inheriting=inh, open_flags=os.O_RDONLY | os.O_DIRECTORY,
                       preopen=p.guest, readonly=p.readonly,
                       memory=p.guest if p.memory else "")
        d.host_fd = fd
        self.fds[self._next_fd()] = d

    def close(self) -> None:
        """Close every host descriptor this WASI opened (never the host's stdio)."""
        for d in self.fds.values():
            if d.host_fd >= 0 and d.stdio < 0:
                try:
                    os.close(d.host_fd)
                except OSError:
                    pass
            d.host_fd = -1

    def attach_memory(self, mem: GuestMemory) -> None:
        self.mem = mem

    def _free_fd(self) -> int:
        """The lowest free fd number for a descriptor the guest opens; EMFILE at the cap."""
        if len(self.fds) >= self.max_fds:
            raise WasiError(E.MFILE)
        return self._next_fd()

    def _next_fd(self) -> int:
        fd = 0
        while fd in self.fds:
            fd += 1
        return fd

    def _room(self) -> None:
        """Before a host descriptor is opened for the guest: EMFILE if it could not keep it."""
        if len(self.fds) >= self.max_fds:
            raise WasiError(E.MFILE)

    # -- helpers ------------------------------------------------------------------------

    def _string(self, ptr: int, length: int) -> str:
        mem = self.mem
        if not mem.check(ptr, length):
            raise WasiError(E.FAULT)
        try:
            return bytes(mem.view[ptr:ptr + length]).decode()
        except UnicodeDecodeError:
            raise WasiError(E.ILSEQ) from None

    def _dir(self, fd: int, right: int) -> Descriptor:
        d = self.fds.get(fd)
        if d is None:
            raise WasiError(E.BADF)
        if d.kind != abi.FT_DIR:
            raise WasiError(E.BADF)  # as wasmtime: a file fd is no directory capability
        if not d.rights_base & right:
            # A read-only tree refuses changes with EPERM, as wasmtime's DirPerms::READ does.
            raise WasiError(E.PERM if d.readonly and right & abi.RIGHTS_WRITE else E.NOTCAPABLE)
        return d

    def _fd(self, fd: int, right: int = 0) -> Descriptor:
        d = self.fds.get(fd)
        if d is None:
            raise WasiError(E.BADF)
        if right and not d.rights_base & right:
            raise WasiError(E.BADF if right & (R.FD_READ | R.FD_WRITE) else E.NOTCAPABLE)
        return d

    def _path(self, fd: int, right: int, ptr: int, length: int,
              follow: bool) -> tuple[Descriptor, Target]:
        d = self._dir(fd, right)
        return d, resolve(d.host_fd, d.host_path, self._string(ptr, length), follow)

    def _mutable(self, d: Descriptor) -> None:
        if d.readonly:
            raise WasiError(E.PERM)

    def _iovecs(self, iovs: int, n: int) -> list[memoryview] | tuple[memoryview] | None:
        """Views of the guest's buffers, or None if any lies outside memory (EFAULT)."""
        mem = self.mem
        if n == 1 and not iovs & 3 and iovs + 8 <= mem.size:
            p, ln = mem.v32[iovs >> 2], mem.v32[(iovs >> 2) + 1]
            if p + ln > mem.size and not mem.check(p, ln):
                return None
            return (mem.view[p:p + ln],)
        if not mem.check(iovs, n * 8):
            return None
        view = mem.view
        out = []
        for i in range(n):
            p, ln = IOVEC.unpack_from(view, iovs + 8 * i)
            if not mem.check(p, ln):
                return None
            out.append(mem.view[p:p + ln])
        return out

    def _put_u32(self, ptr: int, value: int) -> int:
        mem = self.mem
        if ptr + 4 > mem.size and not mem.check(ptr, 4):
            return E.FAULT
        if ptr & 3:
            U32.pack_into(mem.view, ptr, value)
        else:
            mem.v32[ptr >> 2] = value
        return 0

    def _put_u64(self, ptr: int, value: int) -> int:
        mem = self.mem
        if ptr + 8 > mem.size and not mem.check(ptr, 8):
            return E.FAULT
        if ptr & 7:
            U64.pack_into(mem.view, ptr, value)
        else:
            mem.v64[ptr >> 3] = value
        return 0

    def _put_filestat(self, ptr: int, st: os.stat_result) -> int:
        mem = self.mem
        if not mem.check(ptr, 64):
            return E.FAULT
        FILESTAT.pack_into(mem.view, ptr, st.st_dev, st.st_ino, filetype(st.st_mode),
                            st.st_nlink, st.st_size, st.st_atime_ns, st.st_mtime_ns,
                            st.st_ctime_ns)
        return 0

    def _strings(self, items: list[bytes], ptrs: int, buf: int) -> int:
        mem = self.mem
        total = sum(len(s) + 1 for s in items)
        if not mem.check(ptrs, 4 * len(items)) or not mem.check(buf, total):
            return E.FAULT
        view = mem.view
        for i, s in enumerate(items):
            U32.pack_into(view, ptrs + 4 * i, buf)
            view[buf:buf + len(s)] = s
            view[buf + len(s)] = 0
            buf += len(s) + 1
        return 0

    def _sizes(self, items: list[bytes], count_ptr: int, size_ptr: int) -> int:
        return self._put_u32(count_ptr, len(items)) or self._put_u32(
            size_ptr, sum(len(s) + 1 for s in items))

    def _argv(self) -> list[bytes]:
        return [a.encode() for a in self.state.args]

    def _environ(self) -> list[bytes]:
        return [f"{k}={v}".encode() for k, v in self.state.env.items()]


def times_for(st: os.stat_result, atim: int, mtim: int, fst: int) -> tuple[int, int]:
    """The (atime, mtime) in ns that ``*_filestat_set_times`` asks for."""
    if (fst & abi.FST_ATIM and fst & abi.FST_ATIM_NOW) or (fst & abi.FST_MTIM and fst & abi.FST_MTIM_NOW):
        raise WasiError(E.INVAL)
    if atim >= 1 << 63 or mtim >= 1 << 63:
        raise WasiError(E.INVAL)  # past the host's time_t
    now = time_ns()
    a = atim if fst & abi.FST_ATIM else now if fst & abi.FST_ATIM_NOW else st.st_atime_ns
    m = mtim if fst & abi.FST_MTIM else now if fst & abi.FST_MTIM_NOW else st.st_mtime_ns
    return a, m

