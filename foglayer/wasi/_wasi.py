"""WASI preview 1, all 46 functions, on the host's file system.

Each function takes the raw integer arguments the guest passed and returns a WASI errno.
Guest memory is reached through a cached ``memoryview``; file data moves straight between
the OS and guest memory (``os.readv``/``os.writev`` on views), never through copies.
The hot calls (``fd_write``, ``fd_read``, ``clock_time_get``...) check their pointers
themselves; the binding re-maps memory before every other call.
"""

from __future__ import annotations

import os
import select
import stat
import struct
import time
from collections.abc import Sequence

from foglayer.wasi import _abi as abi
from foglayer.wasi import _memdir
from foglayer.wasi._memory import GuestMemory, Interrupt, Interrupted, NoMemory
from foglayer.wasi._paths import Target, WasiError, check_new_name, resolve
from foglayer.wasi._state import Descriptor, Preopen, WasiState

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_IOVEC = struct.Struct("<II")
_FDSTAT = struct.Struct("<BxHxxxxQQ")
_FILESTAT = struct.Struct("<QQB7xQQQQQ")
_DIRENT = struct.Struct("<QQIB3x")
_PRESTAT = struct.Struct("<BxxxI")
_SUB = struct.Struct("<QB7xIxxxxQQH")  # userdata, tag, clock id / fd, timeout, precision, flags
_EVENT = struct.Struct("<QHBxxxxxQH6x")  # userdata, error, type, nbytes, flags

_WRITE_RIGHTS_FOR_OPEN = (
    abi.R_FD_WRITE | abi.R["fd_datasync"] | abi.R["fd_allocate"] | abi.R["fd_filestat_set_size"]
)
_READ_RIGHTS_FOR_OPEN = abi.R_FD_READ | abi.R_FD_READDIR

_ADVICE = {
    0: os.POSIX_FADV_NORMAL, 1: os.POSIX_FADV_SEQUENTIAL, 2: os.POSIX_FADV_RANDOM,
    3: os.POSIX_FADV_WILLNEED, 4: os.POSIX_FADV_DONTNEED, 5: os.POSIX_FADV_NOREUSE,
}

_monotonic_ns = time.monotonic_ns
_time_ns = time.time_ns


class ProcExit(Exception):
    """Raised out of ``proc_exit``: the binding turns it into a trap that ends the run."""

    def __init__(self, code: int) -> None:
        self.code = code


def _wait(interrupt: Interrupt | None, readers: list[int], writers: list[int],
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


def _filetype(mode: int) -> int:
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


def _rights_for(kind: int, readable: bool, writable: bool, readonly_tree: bool) -> tuple[int, int]:
    if kind == abi.FT_DIR:
        base, inh = abi.RIGHTS_DIRECTORY, abi.RIGHTS_DIRECTORY | abi.RIGHTS_REGULAR_FILE
    elif kind == abi.FT_REG:
        base, inh = abi.RIGHTS_REGULAR_FILE, 0
        if not readable:
            base &= ~abi.R_FD_READ
        if not writable:
            base &= ~_WRITE_RIGHTS_FOR_OPEN
    else:
        base, inh = abi.RIGHTS_TTY, 0
        if not readable:
            base &= ~abi.R_FD_READ
        if not writable:
            base &= ~abi.R_FD_WRITE
    if readonly_tree:
        # Inheriting keeps the file write rights so that a libc open(O_WRONLY) asks for
        # them and gets EPERM (as wasmtime), not a silently read-only descriptor.
        base &= ~abi.RIGHTS_WRITE
        inh &= ~(abi.RIGHTS_WRITE & ~_WRITE_RIGHTS_FOR_OPEN)
    return base, inh


def _stdio_descriptor(n: int, host_fd: int) -> Descriptor:
    # As wasmtime: a terminal is a character device, anything else (file, pipe) unknown.
    kind = abi.FT_CHAR if os.isatty(host_fd) else abi.FT_UNKNOWN
    base, inh = _rights_for(kind, n == 0, n != 0, False)
    d = Descriptor(kind=kind, host_path="", guest_path=f"<stdio:{n}>",
                   rights_base=base, rights_inheriting=inh, stdio=n)
    d.host_fd = host_fd
    return d


class Wasi:
    """The WASI host of one instance. ``state`` is its whole, serializable state."""

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
    ) -> Wasi:
        """A fresh WASI: stdio on fds 0–2, then the preopens from fd 3 in order, then the
        read-only ``memory_dirs`` (guest dir -> {name: bytes}; see ``_memdir``)."""
        state = WasiState(args=list(args), env=dict(env or {}), preopens=list(preopens))
        self = cls(state, stdio)
        for n in range(3):
            self.fds[n] = _stdio_descriptor(n, self.stdio[n])
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
        base, inh = _rights_for(abi.FT_DIR, True, not p.readonly, p.readonly)
        d = Descriptor(kind=abi.FT_DIR, host_path=host, guest_path=p.guest, rights_base=base,
                       rights_inheriting=inh, open_flags=os.O_RDONLY | os.O_DIRECTORY,
                       preopen=p.guest, readonly=p.readonly,
                       memory=p.guest if p.memory else "")
        d.host_fd = fd
        self.fds[self._free_fd()] = d

    @classmethod
    def restore(cls, state: WasiState, stdio: Sequence[int] = (0, 1, 2),
                memory_dirs: _memdir.MemoryDirs | None = None) -> Wasi:
        """Re-open every descriptor of a saved state (at its recorded offset); files of
        memory directories come from ``memory_dirs`` (a state never holds their bytes)."""
        self = cls(state, stdio)
        self.memory = {g: dict(f) for g, f in (memory_dirs or {}).items()}
        for fd, d in self.fds.items():
            if d.stdio >= 0:
                d.host_fd = self.stdio[d.stdio]
                continue
            try:
                d.host_fd = self._reopen_memory(d) if d.memory else \
                    os.open(d.host_path, d.open_flags | os.O_CLOEXEC)
            except OSError as e:
                self.close()
                raise OSError(e.errno, f"cannot re-open fd {fd} ({d.guest_path}): {e.strerror}",
                              d.host_path) from None
            if d.kind == abi.FT_REG and not d.open_flags & os.O_APPEND:
                os.lseek(d.host_fd, d.offset, os.SEEK_SET)
        return self

    def _reopen_memory(self, d: Descriptor) -> int:
        files = self.memory.get(d.memory)
        if files is None:
            raise OSError(2, f"memory directory {d.memory} was not handed to restore")
        if d.kind == abi.FT_DIR:
            return _memdir.open_dead_dir()
        name = os.path.basename(d.guest_path)
        if name not in files:
            raise OSError(2, f"{d.guest_path} is not in memory directory {d.memory}")
        return _memdir.open_file(files[name])

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
        fd = 0
        while fd in self.fds:
            fd += 1
        return fd

    # -- helpers ------------------------------------------------------------------------

    def _string(self, ptr: int, length: int) -> str:
        mem = self.mem
        if not mem.check(ptr, length):
            raise WasiError(abi.EFAULT)
        try:
            return bytes(mem.view[ptr:ptr + length]).decode()
        except UnicodeDecodeError:
            raise WasiError(abi.EILSEQ) from None

    def _dir(self, fd: int, right: int) -> Descriptor:
        d = self.fds.get(fd)
        if d is None:
            raise WasiError(abi.EBADF)
        if d.kind != abi.FT_DIR:
            raise WasiError(abi.EBADF)  # as wasmtime: a file fd is no directory capability
        if not d.rights_base & right:
            # A read-only tree refuses changes with EPERM, as wasmtime's DirPerms::READ does.
            raise WasiError(abi.EPERM if d.readonly and right & abi.RIGHTS_WRITE else abi.ENOTCAPABLE)
        return d

    def _fd(self, fd: int, right: int = 0) -> Descriptor:
        d = self.fds.get(fd)
        if d is None:
            raise WasiError(abi.EBADF)
        if right and not d.rights_base & right:
            raise WasiError(abi.EBADF if right & (abi.R_FD_READ | abi.R_FD_WRITE) else abi.ENOTCAPABLE)
        return d

    def _path(self, fd: int, right: int, ptr: int, length: int,
              follow: bool) -> tuple[Descriptor, Target]:
        d = self._dir(fd, right)
        return d, resolve(d.host_fd, d.host_path, self._string(ptr, length), follow)

    def _mutable(self, d: Descriptor) -> None:
        if d.readonly:
            raise WasiError(abi.EPERM)

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
            p, ln = _IOVEC.unpack_from(view, iovs + 8 * i)
            if not mem.check(p, ln):
                return None
            out.append(mem.view[p:p + ln])
        return out

    def _put_u32(self, ptr: int, value: int) -> int:
        mem = self.mem
        if ptr + 4 > mem.size and not mem.check(ptr, 4):
            return abi.EFAULT
        if ptr & 3:
            _U32.pack_into(mem.view, ptr, value)
        else:
            mem.v32[ptr >> 2] = value
        return 0

    def _put_u64(self, ptr: int, value: int) -> int:
        mem = self.mem
        if ptr + 8 > mem.size and not mem.check(ptr, 8):
            return abi.EFAULT
        if ptr & 7:
            _U64.pack_into(mem.view, ptr, value)
        else:
            mem.v64[ptr >> 3] = value
        return 0

    def _put_filestat(self, ptr: int, st: os.stat_result) -> int:
        mem = self.mem
        if not mem.check(ptr, 64):
            return abi.EFAULT
        _FILESTAT.pack_into(mem.view, ptr, st.st_dev, st.st_ino, _filetype(st.st_mode),
                            st.st_nlink, st.st_size, st.st_atime_ns, st.st_mtime_ns,
                            st.st_ctime_ns)
        return 0

    def _strings(self, items: list[bytes], ptrs: int, buf: int) -> int:
        mem = self.mem
        total = sum(len(s) + 1 for s in items)
        if not mem.check(ptrs, 4 * len(items)) or not mem.check(buf, total):
            return abi.EFAULT
        view = mem.view
        for i, s in enumerate(items):
            _U32.pack_into(view, ptrs + 4 * i, buf)
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

    # -- args, environment --------------------------------------------------------------

    def args_get(self, argv: int, buf: int) -> int:
        return self._strings(self._argv(), argv, buf)

    def args_sizes_get(self, count: int, size: int) -> int:
        return self._sizes(self._argv(), count, size)

    def environ_get(self, environ: int, buf: int) -> int:
        return self._strings(self._environ(), environ, buf)

    def environ_sizes_get(self, count: int, size: int) -> int:
        return self._sizes(self._environ(), count, size)

    # -- clocks, random, scheduling -----------------------------------------------------

    def clock_res_get(self, clock_id: int, out: int) -> int:
        if clock_id > abi.CLOCK_THREAD_CPUTIME:
            return abi.EINVAL
        return self._put_u64(out, 1)

    def clock_time_get(self, clock_id: int, precision: int, out: int) -> int:
        if clock_id == 1:  # monotonic, the hot one
            now = _monotonic_ns() + self.state.monotonic_offset_ns
        elif clock_id == abi.CLOCK_REALTIME:
            now = _time_ns()
        elif clock_id == abi.CLOCK_PROCESS_CPUTIME:
            now = time.process_time_ns()
        elif clock_id == abi.CLOCK_THREAD_CPUTIME:
            now = time.thread_time_ns()
        else:
            return abi.EINVAL
        # _put_u64, inlined: this is the hottest call of all (a method call costs ~60 ns).
        mem = self.mem
        if out + 8 > mem.size and not mem.check(out, 8):
            return abi.EFAULT
        if out & 7:
            _U64.pack_into(mem.view, out, now)
        else:
            mem.v64[out >> 3] = now
        return 0

    def random_get(self, buf: int, length: int) -> int:
        mem = self.mem
        if not mem.check(buf, length):
            return abi.EFAULT
        view = mem.view
        done = 0
        while done < length:
            chunk = min(length - done, 1 << 20)
            view[buf + done:buf + done + chunk] = os.urandom(chunk)
            done += chunk
        return 0

    def sched_yield(self) -> int:
        os.sched_yield()
        return 0

    def proc_exit(self, code: int) -> int:
        self.state.exit_code = code
        raise ProcExit(code)

    def proc_raise(self, sig: int) -> int:
        return abi.ENOTSUP  # as wasmtime: signals do not exist in the sandbox

    # -- descriptors: data --------------------------------------------------------------

    def fd_write(self, fd: int, iovs: int, iovs_len: int, nwritten: int) -> int:
        d = self.fds.get(fd)
        if d is None or not d.rights_base & abi.R_FD_WRITE:
            return abi.EBADF
        mem = self.mem
        try:
            if iovs_len == 1 and not iovs & 3 and iovs + 8 <= mem.size:
                i = iovs >> 2
                p, ln = mem.v32[i], mem.v32[i + 1]
                if p + ln > mem.size and not mem.check(p, ln):
                    return abi.EFAULT
                n = os.write(d.host_fd, mem.view[p:p + ln])
            else:
                bufs = self._iovecs(iovs, iovs_len)
                if bufs is None:
                    return abi.EFAULT
                n = os.writev(d.host_fd, bufs) if bufs else 0
        except OSError as e:
            return abi.from_oserror(e)
        return self._put_u32(nwritten, n)

    def fd_read(self, fd: int, iovs: int, iovs_len: int, nread: int) -> int:
        d = self.fds.get(fd)
        if d is None or not d.rights_base & abi.R_FD_READ:
            return abi.EBADF
        mem = self.mem
        try:
            if (d.kind != abi.FT_REG and self.interrupt is not None
                    and os.get_blocking(d.host_fd)):  # a pipe may block: stay stoppable
                _wait(self.interrupt, [d.host_fd], [], None)
            if iovs_len == 1 and not iovs & 3 and iovs + 8 <= mem.size:
                i = iovs >> 2
                p, ln = mem.v32[i], mem.v32[i + 1]
                if p + ln > mem.size and not mem.check(p, ln):
                    return abi.EFAULT
                n = os.readv(d.host_fd, (mem.view[p:p + ln],))
            else:
                bufs = self._iovecs(iovs, iovs_len)
                if bufs is None:
                    return abi.EFAULT
                n = os.readv(d.host_fd, bufs) if bufs else 0
        except OSError as e:
            return abi.from_oserror(e)
        return self._put_u32(nread, n)

    def fd_pread(self, fd: int, iovs: int, iovs_len: int, offset: int, nread: int) -> int:
        return self._positioned(os.preadv, abi.R_FD_READ, fd, iovs, iovs_len, offset, nread)

    def fd_pwrite(self, fd: int, iovs: int, iovs_len: int, offset: int, nwritten: int) -> int:
        return self._positioned(os.pwritev, abi.R_FD_WRITE, fd, iovs, iovs_len, offset, nwritten)

    def _positioned(self, op, right: int, fd: int, iovs: int, iovs_len: int, offset: int,
                    out: int) -> int:
        """``fd_pread``/``fd_pwrite``: I/O at an offset, leaving the file position alone."""
        d = self.fds.get(fd)
        if d is None or not d.rights_base & right:
            return abi.EBADF
        if d.kind != abi.FT_REG:
            return abi.ESPIPE if d.kind != abi.FT_DIR else abi.EISDIR
        if offset >= 1 << 63:
            return abi.EINVAL
        bufs = self._iovecs(iovs, iovs_len)
        if bufs is None:
            return abi.EFAULT
        try:
            n = op(d.host_fd, bufs, offset) if bufs else 0
        except OSError as e:
            return abi.from_oserror(e)
        return self._put_u32(out, n)

    def fd_seek(self, fd: int, offset: int, whence: int, newoffset: int) -> int:
        d = self.fds.get(fd)
        if d is None:
            return abi.EBADF
        if d.kind != abi.FT_REG:
            return abi.ESPIPE if d.kind != abi.FT_DIR else abi.EBADF
        if not d.rights_base & (abi.R_FD_SEEK | abi.R_FD_TELL):
            return abi.ENOTCAPABLE
        if whence > 2:
            return abi.EINVAL
        if offset >= 1 << 63:
            offset -= 1 << 64  # filedelta is signed
        try:
            pos = os.lseek(d.host_fd, offset, whence)
        except OSError as e:
            return abi.from_oserror(e)
        mem = self.mem
        if newoffset + 8 > mem.size and not mem.check(newoffset, 8):
            return abi.EFAULT
        _U64.pack_into(mem.view, newoffset, pos)
        return 0

    def fd_tell(self, fd: int, out: int) -> int:
        d = self.fds.get(fd)
        if d is None:
            return abi.EBADF
        if d.kind != abi.FT_REG:
            return abi.ESPIPE if d.kind != abi.FT_DIR else abi.EBADF
        try:
            pos = os.lseek(d.host_fd, 0, os.SEEK_CUR)
        except OSError as e:
            return abi.from_oserror(e)
        return self._put_u64(out, pos)

    # -- descriptors: metadata ----------------------------------------------------------

    def fd_advise(self, fd: int, offset: int, length: int, advice: int) -> int:
        d = self._fd(fd)
        if advice not in _ADVICE:
            return abi.EINVAL
        if d.kind == abi.FT_DIR:
            return abi.EBADF
        if d.kind != abi.FT_REG:
            return abi.ESPIPE
        os.posix_fadvise(d.host_fd, offset, length, _ADVICE[advice])
        return 0

    def fd_allocate(self, fd: int, offset: int, length: int) -> int:
        d = self._fd(fd, abi.R_FD_WRITE)
        if d.kind != abi.FT_REG:
            return abi.EBADF
        os.posix_fallocate(d.host_fd, offset, length)
        return 0

    def fd_close(self, fd: int) -> int:
        d = self.fds.pop(fd, None)
        if d is None:
            return abi.EBADF
        if d.stdio < 0 and d.host_fd >= 0:
            os.close(d.host_fd)
        return 0

    def fd_datasync(self, fd: int) -> int:
        d = self._fd(fd)
        if d.kind == abi.FT_REG and not d.rights_base & abi.R["fd_datasync"]:
            return abi.EBADF
        os.fdatasync(d.host_fd)
        return 0

    def fd_sync(self, fd: int) -> int:
        d = self._fd(fd)
        if d.kind == abi.FT_REG and not d.rights_base & abi.R["fd_sync"]:
            return abi.EBADF
        os.fsync(d.host_fd)
        return 0

    def fd_fdstat_get(self, fd: int, out: int) -> int:
        d = self._fd(fd)
        mem = self.mem
        if not mem.check(out, 24):
            return abi.EFAULT
        flags = d.flags
        if d.host_fd >= 0 and d.stdio < 0:
            fl = os.get_blocking(d.host_fd)
            flags = (flags & ~abi.FDFLAG_NONBLOCK) | (0 if fl else abi.FDFLAG_NONBLOCK)
        _FDSTAT.pack_into(mem.view, out, d.kind, flags, d.rights_base, d.rights_inheriting)
        return 0

    def fd_fdstat_set_flags(self, fd: int, flags: int) -> int:
        d = self._fd(fd)
        if flags & ~(abi.FDFLAG_APPEND | abi.FDFLAG_NONBLOCK | abi.FDFLAG_DSYNC
                     | abi.FDFLAG_RSYNC | abi.FDFLAG_SYNC):
            return abi.EINVAL
        if flags & (abi.FDFLAG_DSYNC | abi.FDFLAG_RSYNC | abi.FDFLAG_SYNC) != d.flags & (
                abi.FDFLAG_DSYNC | abi.FDFLAG_RSYNC | abi.FDFLAG_SYNC):
            return abi.ENOTSUP  # Linux cannot change these after open
        import fcntl

        fl = fcntl.fcntl(d.host_fd, fcntl.F_GETFL)
        fl = (fl | os.O_APPEND) if flags & abi.FDFLAG_APPEND else (fl & ~os.O_APPEND)
        fl = (fl | os.O_NONBLOCK) if flags & abi.FDFLAG_NONBLOCK else (fl & ~os.O_NONBLOCK)
        fcntl.fcntl(d.host_fd, fcntl.F_SETFL, fl)
        d.flags = flags
        d.open_flags = (d.open_flags & ~os.O_APPEND) | (os.O_APPEND if flags & abi.FDFLAG_APPEND else 0)
        return 0

    def fd_fdstat_set_rights(self, fd: int, base: int, inheriting: int) -> int:
        d = self._fd(fd)
        if base & ~d.rights_base or inheriting & ~d.rights_inheriting:
            return abi.ENOTCAPABLE
        d.rights_base, d.rights_inheriting = base, inheriting
        return 0

    def fd_filestat_get(self, fd: int, out: int) -> int:
        d = self._fd(fd)
        return self._put_filestat(out, os.fstat(d.host_fd))

    def fd_filestat_set_size(self, fd: int, size: int) -> int:
        d = self._fd(fd)
        if d.kind != abi.FT_REG:
            return abi.EBADF
        self._mutable(d)
        if size >= 1 << 63:
            return abi.EINVAL
        os.ftruncate(d.host_fd, size)
        return 0

    def fd_filestat_set_times(self, fd: int, atim: int, mtim: int, fst: int) -> int:
        d = self._fd(fd)
        self._mutable(d)
        os.utime(d.host_fd, ns=_times(os.fstat(d.host_fd), atim, mtim, fst))
        return 0

    def fd_prestat_get(self, fd: int, out: int) -> int:
        d = self._fd(fd)
        if d.preopen is None:
            return abi.EBADF
        mem = self.mem
        if not mem.check(out, 8):
            return abi.EFAULT
        _PRESTAT.pack_into(mem.view, out, abi.PREOPEN_DIR, len(d.preopen.encode()))
        return 0

    def fd_prestat_dir_name(self, fd: int, path: int, length: int) -> int:
        d = self._fd(fd)
        if d.preopen is None:
            return abi.EBADF
        name = d.preopen.encode()
        if length < len(name):
            return abi.ENAMETOOLONG
        mem = self.mem
        if not mem.check(path, len(name)):
            return abi.EFAULT
        mem.view[path:path + len(name)] = name
        return 0

    def fd_readdir(self, fd: int, buf: int, buf_len: int, cookie: int, bufused: int) -> int:
        d = self._fd(fd)
        if d.kind != abi.FT_DIR:
            return abi.EBADF
        if not d.rights_base & abi.R_FD_READDIR:
            return abi.ENOTCAPABLE
        if cookie == 0 or d.dir_cache is None:
            d.dir_cache = _memdir.listing(self.memory[d.memory], os.fstat(d.host_fd).st_ino) \
                if d.memory else _list_dir(d.host_fd)
        mem = self.mem
        if not mem.check(buf, buf_len):
            return abi.EFAULT
        view = mem.view
        used = 0
        for i in range(cookie, len(d.dir_cache)):
            name, ino, kind = d.dir_cache[i]
            entry = _DIRENT.pack(i + 1, ino, len(name), kind) + name
            take = min(len(entry), buf_len - used)
            view[buf + used:buf + used + take] = entry[:take]
            used += take
            if used == buf_len:
                break
        return self._put_u32(bufused, used)

    def fd_renumber(self, fd: int, to: int) -> int:
        if fd not in self.fds or to not in self.fds:
            return abi.EBADF
        if fd == to:
            return 0
        self.fd_close(to)
        self.fds[to] = self.fds.pop(fd)
        return 0

    # -- paths --------------------------------------------------------------------------

    def path_open(self, dirfd: int, dirflags: int, path: int, path_len: int, oflags: int,
                  rights_base: int, rights_inheriting: int, fdflags: int, fd_out: int) -> int:
        src = self.fds.get(dirfd)
        if src is not None and src.kind == abi.FT_REG and src.stdio < 0:
            return abi.ENOTDIR  # as wasmtime: opening below a file
        if src is not None and src.memory:
            return self._open_memory(dirfd, path, path_len, oflags, rights_base,
                                     rights_inheriting, fdflags, fd_out)
        follow = bool(dirflags & abi.LOOKUP_SYMLINK_FOLLOW)
        d, t = self._path(dirfd, abi.R["path_open"], path, path_len, follow)
        with t:
            return self._open_at(d, t, self._string(path, path_len), oflags, rights_base,
                                 rights_inheriting, fdflags, fd_out)

    def _open_at(self, d: Descriptor, t: Target, path: str, oflags: int, rights_base: int,
                 rights_inheriting: int, fdflags: int, fd_out: int) -> int:
        write = bool(rights_base & abi.R_FD_WRITE)  # as wasmtime: only fd_write opens for writing
        read = bool(rights_base & _READ_RIGHTS_FOR_OPEN) or not write
        if d.readonly and (write or oflags & (abi.O_CREAT | abi.O_TRUNC)):
            return abi.EPERM
        if oflags & abi.O_TRUNC and not d.rights_base & abi.R["path_filestat_set_size"]:
            return abi.EPERM  # the suite's truncation_rights: truncating needs this right
        if oflags & abi.O_CREAT and not d.rights_base & abi.R["path_create_file"]:
            return abi.ENOTCAPABLE
        if oflags & abi.O_DIRECTORY and write:
            return abi.EISDIR
        # Symlinks were expanded by the walk: the kernel must not follow one now.
        flags = os.O_CLOEXEC | os.O_NOFOLLOW
        if oflags & abi.O_DIRECTORY or t.slash:
            flags |= os.O_DIRECTORY
        flags |= os.O_RDWR if read and write else os.O_WRONLY if write else os.O_RDONLY
        for wasi_flag, host_flag in ((abi.FDFLAG_APPEND, os.O_APPEND), (abi.FDFLAG_DSYNC, os.O_DSYNC),
                                     (abi.FDFLAG_SYNC, os.O_SYNC), (abi.FDFLAG_NONBLOCK, os.O_NONBLOCK),
                                     (abi.FDFLAG_RSYNC, os.O_RSYNC)):
            if fdflags & wasi_flag:
                flags |= host_flag
        create = 0
        if oflags & abi.O_CREAT:
            check_new_name(path)
            create |= os.O_CREAT
        if oflags & abi.O_EXCL:
            create |= os.O_EXCL
        if oflags & abi.O_TRUNC:
            create |= os.O_TRUNC  # as Linux and wasmtime, even on a read-only open
        try:
            hfd = os.open(t.name, flags | create, 0o666, dir_fd=t.dirfd)
        except IsADirectoryError:
            return abi.EISDIR
        try:
            kind = _filetype(os.fstat(hfd).st_mode)
            base, inh = _rights_for(kind, read, write, d.readonly)
            base &= rights_base | (abi.RIGHTS_DIRECTORY if kind == abi.FT_DIR else 0)
            new = Descriptor(kind=kind, host_path=t.host,
                             guest_path=os.path.normpath(os.path.join(d.guest_path, path)),
                             rights_base=base, rights_inheriting=inh & rights_inheriting,
                             flags=fdflags, open_flags=flags, readonly=d.readonly)
            new.host_fd = hfd
            fd = self._free_fd()
            err = self._put_u32(fd_out, fd)
        except BaseException:
            os.close(hfd)
            raise
        if err:
            os.close(hfd)
            return err
        self.fds[fd] = new
        return 0

    def _open_memory(self, dirfd: int, path: int, path_len: int, oflags: int, rights_base: int,
                     rights_inheriting: int, fdflags: int, fd_out: int) -> int:
        d = self._dir(dirfd, abi.R["path_open"])
        write = bool(rights_base & _WRITE_RIGHTS_FOR_OPEN) or bool(fdflags & abi.FDFLAG_APPEND)
        if write or oflags & (abi.O_CREAT | abi.O_TRUNC):
            return abi.EPERM
        files = self.memory[d.memory]
        name = _memdir.lookup(files, self._string(path, path_len))
        if name is not None and oflags & abi.O_DIRECTORY:
            return abi.ENOTDIR
        kind = abi.FT_REG if name is not None else abi.FT_DIR
        hfd = _memdir.open_file(files[name]) if name is not None else _memdir.open_dead_dir()
        base, inh = _rights_for(kind, True, False, True)
        base &= rights_base | (abi.RIGHTS_DIRECTORY if kind == abi.FT_DIR else 0)
        new = Descriptor(kind=kind, host_path="",
                         guest_path=f"{d.guest_path}/{name}" if name else d.guest_path,
                         rights_base=base, rights_inheriting=inh & rights_inheriting,
                         flags=fdflags, open_flags=os.O_RDONLY, readonly=True, memory=d.memory)
        new.host_fd = hfd
        fd = self._free_fd()
        err = self._put_u32(fd_out, fd)
        if err:
            os.close(hfd)
            return err
        self.fds[fd] = new
        return 0

    def path_create_directory(self, fd: int, path: int, path_len: int) -> int:
        d, t = self._path(fd, abi.R["path_create_directory"], path, path_len, False)
        with t:
            self._mutable(d)
            check_new_name(self._string(path, path_len))
            os.mkdir(t.name, dir_fd=t.dirfd)
        return 0

    def path_filestat_get(self, fd: int, flags: int, path: int, path_len: int, out: int) -> int:
        follow = bool(flags & abi.LOOKUP_SYMLINK_FOLLOW)
        d = self._dir(fd, abi.R["path_filestat_get"])
        if d.memory:
            name = _memdir.lookup(self.memory[d.memory], self._string(path, path_len))
            if name is None:
                return self._put_filestat(out, os.fstat(d.host_fd))
            hfd = _memdir.open_file(self.memory[d.memory][name])
            try:
                return self._put_filestat(out, os.fstat(hfd))
            finally:
                os.close(hfd)
        _, t = self._path(fd, abi.R["path_filestat_get"], path, path_len, follow)
        with t:
            st = t.lstat()
            if t.slash and not stat.S_ISDIR(st.st_mode):
                return abi.ENOTDIR
            return self._put_filestat(out, st)

    def path_filestat_set_times(self, fd: int, flags: int, path: int, path_len: int,
                                atim: int, mtim: int, fst: int) -> int:
        follow = bool(flags & abi.LOOKUP_SYMLINK_FOLLOW)
        d, t = self._path(fd, abi.R["path_filestat_set_times"], path, path_len, follow)
        with t:
            self._mutable(d)
            os.utime(t.name, ns=_times(t.lstat(), atim, mtim, fst), dir_fd=t.dirfd,
                     follow_symlinks=False)
        return 0

    def path_link(self, old_fd: int, old_flags: int, old_path: int, old_len: int,
                  new_fd: int, new_path: int, new_len: int) -> int:
        follow = bool(old_flags & abi.LOOKUP_SYMLINK_FOLLOW)
        d1, src = self._path(old_fd, abi.R["path_link_source"], old_path, old_len, follow)
        with src:
            d2, dst = self._path(new_fd, abi.R["path_link_target"], new_path, new_len, False)
            with dst:
                self._mutable(d1)
                self._mutable(d2)
                check_new_name(self._string(new_path, new_len))
                if dst.slash:
                    return abi.EEXIST if _exists(dst) else abi.ENOENT
                os.link(src.name, dst.name, src_dir_fd=src.dirfd, dst_dir_fd=dst.dirfd,
                        follow_symlinks=False)
        return 0

    def path_readlink(self, fd: int, path: int, path_len: int, buf: int, buf_len: int,
                      bufused: int) -> int:
        _, t = self._path(fd, abi.R["path_readlink"], path, path_len, False)
        with t:
            target = os.readlink(t.name, dir_fd=t.dirfd).encode()
        n = min(len(target), buf_len)
        mem = self.mem
        if not mem.check(buf, n):
            return abi.EFAULT
        mem.view[buf:buf + n] = target[:n]
        return self._put_u32(bufused, n)

    def path_remove_directory(self, fd: int, path: int, path_len: int) -> int:
        d, t = self._path(fd, abi.R["path_remove_directory"], path, path_len, False)
        with t:
            self._mutable(d)
            name = self._string(path, path_len).rstrip("/").rsplit("/", 1)[-1]
            if name in (".", ""):
                return abi.EINVAL if name == "." else abi.EPERM
            if t.name == ".":
                return abi.EPERM  # the path climbed back to a directory we hold open
            os.rmdir(t.name, dir_fd=t.dirfd)
        return 0

    def path_rename(self, fd: int, old_path: int, old_len: int, new_fd: int, new_path: int,
                    new_len: int) -> int:
        d1, src = self._path(fd, abi.R["path_rename_source"], old_path, old_len, False)
        with src:
            d2, dst = self._path(new_fd, abi.R["path_rename_target"], new_path, new_len, False)
            with dst:
                self._mutable(d1)
                self._mutable(d2)
                for s in (self._string(old_path, old_len), self._string(new_path, new_len)):
                    if s.rstrip("/").rsplit("/", 1)[-1] in (".", ".."):
                        return abi.EINVAL
                if src.name == "." or dst.name == ".":
                    return abi.EPERM
                if (src.slash or dst.slash) and not stat.S_ISDIR(src.lstat().st_mode):
                    return abi.ENOTDIR
                os.rename(src.name, dst.name, src_dir_fd=src.dirfd, dst_dir_fd=dst.dirfd)
        return 0

    def path_symlink(self, old_path: int, old_len: int, fd: int, new_path: int,
                     new_len: int) -> int:
        target = self._string(old_path, old_len)
        d, t = self._path(fd, abi.R["path_symlink"], new_path, new_len, False)
        with t:
            self._mutable(d)
            if target.startswith("/"):
                return abi.EPERM
            if "\0" in target:
                return abi.EINVAL
            check_new_name(self._string(new_path, new_len))
            if t.slash:
                return abi.EEXIST if _exists(t) else abi.ENOENT
            os.symlink(target, t.name, dir_fd=t.dirfd)
        return 0

    def path_unlink_file(self, fd: int, path: int, path_len: int) -> int:
        d, t = self._path(fd, abi.R["path_unlink_file"], path, path_len, False)
        with t:
            self._mutable(d)
            if t.slash or t.name == ".":
                return abi.EISDIR if stat.S_ISDIR(t.lstat().st_mode) else abi.ENOTDIR
            os.unlink(t.name, dir_fd=t.dirfd)
        return 0

    # -- poll ---------------------------------------------------------------------------

    def poll_oneoff(self, in_ptr: int, out_ptr: int, nsubs: int, nevents: int) -> int:
        if nsubs == 0:
            return abi.EINVAL
        mem = self.mem
        if not mem.check(in_ptr, 48 * nsubs) or not mem.check(out_ptr, 32 * nsubs):
            return abi.EFAULT
        now = _monotonic_ns() + self.state.monotonic_offset_ns
        events: list[tuple] = []
        deadline: int | None = None
        clocks: list[tuple[int, int]] = []
        readers: dict[int, list[int]] = {}
        writers: dict[int, list[int]] = {}
        for i in range(nsubs):
            userdata, tag, ident, timeout, _prec, flags = _SUB.unpack_from(mem.view, in_ptr + 48 * i)
            if tag == abi.EVENT_CLOCK:
                if ident == abi.CLOCK_REALTIME:
                    base = _time_ns() if flags & abi.SUBCLOCK_ABSTIME else 0
                    due = now + max(0, timeout - base) if flags & abi.SUBCLOCK_ABSTIME else now + timeout
                elif ident == abi.CLOCK_MONOTONIC:
                    due = timeout if flags & abi.SUBCLOCK_ABSTIME else now + timeout
                else:
                    events.append((userdata, abi.EINVAL, tag, 0, 0))
                    continue
                clocks.append((userdata, due))
                deadline = due if deadline is None else min(deadline, due)
            elif tag in (abi.EVENT_FD_READ, abi.EVENT_FD_WRITE):
                d = self.fds.get(ident)
                if d is None:
                    events.append((userdata, abi.EBADF, tag, 0, 0))
                elif d.kind == abi.FT_REG:
                    # Regular files are always ready: report what is left to read.
                    nbytes = 0
                    if tag == abi.EVENT_FD_READ:
                        try:
                            st = os.fstat(d.host_fd)
                            nbytes = max(0, st.st_size - os.lseek(d.host_fd, 0, os.SEEK_CUR))
                        except OSError:
                            nbytes = 0
                    events.append((userdata, 0, tag, nbytes, 0))
                else:
                    (readers if tag == abi.EVENT_FD_READ else writers).setdefault(
                        d.host_fd, []).append(userdata)
            else:
                events.append((userdata, abi.EINVAL, tag, 0, 0))
        if not events and (readers or writers or deadline is not None):
            wait = None if deadline is None else max(0, deadline - now) / 1e9
            if readers or writers or wait:
                try:
                    r, w = _wait(self.interrupt, list(readers), list(writers), wait)
                except OSError as e:
                    return abi.from_oserror(e)
                for hfd in r:
                    for ud in readers[hfd]:
                        events.append((ud, 0, abi.EVENT_FD_READ, _readable_bytes(hfd), 0))
                for hfd in w:
                    for ud in writers[hfd]:
                        events.append((ud, 0, abi.EVENT_FD_WRITE, 0, 0))
        if deadline is not None:
            now = _monotonic_ns() + self.state.monotonic_offset_ns
            events.extend((ud, 0, abi.EVENT_CLOCK, 0, 0) for ud, due in clocks if due <= now)
        view = mem.view
        for i, ev in enumerate(events):
            _EVENT.pack_into(view, out_ptr + 32 * i, *ev)
        return self._put_u32(nevents, len(events))

    # -- sockets (only sockets the host hands in; none are granted by default) ----------

    def _socket(self, fd: int) -> Descriptor:
        d = self._fd(fd)
        if d.kind not in (abi.FT_STREAM, abi.FT_DGRAM):
            raise WasiError(abi.ENOTSOCK)
        return d

    def sock_accept(self, fd: int, flags: int, fd_out: int) -> int:
        d = self._socket(fd)
        if flags & ~abi.FDFLAG_NONBLOCK:
            return abi.EINVAL
        import socket

        with socket.socket(fileno=os.dup(d.host_fd)) as s:
            conn, _ = s.accept()
        conn.setblocking(not flags & abi.FDFLAG_NONBLOCK)
        new = Descriptor(kind=abi.FT_STREAM, host_path="", guest_path="<socket>",
                         rights_base=abi.RIGHTS_TTY | abi.R["sock_shutdown"],
                         rights_inheriting=0, flags=flags)
        new.host_fd = conn.detach()
        fd = self._free_fd()
        self.fds[fd] = new
        return self._put_u32(fd_out, fd)

    def sock_recv(self, fd: int, ri_data: int, ri_len: int, ri_flags: int, ro_len: int,
                  ro_flags: int) -> int:
        d = self._socket(fd)
        bufs = self._iovecs(ri_data, ri_len)
        if bufs is None:
            return abi.EFAULT
        import socket

        with socket.socket(fileno=os.dup(d.host_fd)) as s:
            flags = (socket.MSG_PEEK if ri_flags & 1 else 0) | (socket.MSG_WAITALL if ri_flags & 2 else 0)
            n, _, _, _ = s.recvmsg_into(bufs, 0, flags)
        return self._put_u32(ro_len, n) or self._put_u32(ro_flags, 0)

    def sock_send(self, fd: int, si_data: int, si_len: int, si_flags: int, so_len: int) -> int:
        d = self._socket(fd)
        bufs = self._iovecs(si_data, si_len)
        if bufs is None:
            return abi.EFAULT
        return self._put_u32(so_len, os.writev(d.host_fd, bufs))

    def sock_shutdown(self, fd: int, how: int) -> int:
        d = self._socket(fd)
        if how not in (1, 2, 3):
            return abi.EINVAL
        import socket

        mode = {1: socket.SHUT_RD, 2: socket.SHUT_WR, 3: socket.SHUT_RDWR}[how]
        with socket.socket(fileno=os.dup(d.host_fd)) as s:
            s.shutdown(mode)
        return 0


def _times(st: os.stat_result, atim: int, mtim: int, fst: int) -> tuple[int, int]:
    if (fst & abi.FST_ATIM and fst & abi.FST_ATIM_NOW) or (fst & abi.FST_MTIM and fst & abi.FST_MTIM_NOW):
        raise WasiError(abi.EINVAL)
    now = _time_ns()
    a = atim if fst & abi.FST_ATIM else now if fst & abi.FST_ATIM_NOW else st.st_atime_ns
    m = mtim if fst & abi.FST_MTIM else now if fst & abi.FST_MTIM_NOW else st.st_mtime_ns
    return a, m


def _exists(t: Target) -> bool:
    try:
        t.lstat()
    except FileNotFoundError:
        return False
    return True


def _list_dir(dirfd: int) -> list[tuple[bytes, int, int]]:
    entries = [(b".", os.fstat(dirfd).st_ino, abi.FT_DIR),
               (b"..", os.stat("..", dir_fd=dirfd).st_ino, abi.FT_DIR)]
    with os.scandir(dirfd) as it:
        for e in it:
            try:
                kind = _filetype(e.stat(follow_symlinks=False).st_mode)
            except OSError:
                kind = abi.FT_UNKNOWN
            entries.append((os.fsencode(e.name), e.inode(), kind))
    return entries


def _readable_bytes(hfd: int) -> int:
    import fcntl
    import termios

    try:
        buf = fcntl.ioctl(hfd, termios.FIONREAD, b"\0\0\0\0")
        return _U32.unpack(buf)[0]
    except OSError:
        return 0
