"""WASI calls on descriptors: data (read, write, seek) and metadata (stat, flags, rights)."""

from __future__ import annotations

import os

from foglayer.wasi import _memdir, abi
from foglayer.wasi._core import (
    ADVICE,
    DIRENT,
    FDSTAT,
    PRESTAT,
    U64,
    WasiCore,
    filetype,
    times_for,
    wait,
)
from foglayer.wasi.abi import FT_REG, E, R

_OFF_MAX = 1 << 63  # file offsets and sizes from the guest are u64; the host's off_t is signed


class FdCalls(WasiCore):
    """fd_*: the hot data calls first, each checking its own arguments and pointers."""

    # -- descriptors: data --------------------------------------------------------------

    def fd_write(self, fd: int, iovs: int, iovs_len: int, nwritten: int) -> int:
        d = self.fds.get(fd)
        if d is None or not d.rights_base & R.FD_WRITE:
            return E.BADF
        mem = self.mem
        try:
            if iovs_len == 1 and not iovs & 3 and iovs + 8 <= mem.size:
                i = iovs >> 2
                p, ln = mem.v32[i], mem.v32[i + 1]
                if p + ln > mem.size and not mem.check(p, ln):
                    return E.FAULT
                n = os.write(d.host_fd, mem.view[p:p + ln])
            else:
                bufs = self._iovecs(iovs, iovs_len)
                if bufs is None:
                    return E.FAULT
                n = os.writev(d.host_fd, bufs) if bufs else 0
        except OSError as e:
            return abi.from_oserror(e)
        return self._put_u32(nwritten, n)

    def fd_read(self, fd: int, iovs: int, iovs_len: int, nread: int) -> int:
        d = self.fds.get(fd)
        if d is None or not d.rights_base & R.FD_READ:
            return E.BADF
        mem = self.mem
        try:
            if (d.kind != FT_REG and self.interrupt is not None
                    and os.get_blocking(d.host_fd)):  # a pipe may block: stay stoppable
                wait(self.interrupt, [d.host_fd], [], None)
            if iovs_len == 1 and not iovs & 3 and iovs + 8 <= mem.size:
                i = iovs >> 2
                p, ln = mem.v32[i], mem.v32[i + 1]
                if p + ln > mem.size and not mem.check(p, ln):
                    return E.FAULT
                n = os.readv(d.host_fd, (mem.view[p:p + ln],))
            else:
                bufs = self._iovecs(iovs, iovs_len)
                if bufs is None:
                    return E.FAULT
                n = os.readv(d.host_fd, bufs) if bufs else 0
        except OSError as e:
            return abi.from_oserror(e)
        return self._put_u32(nread, n)

    def fd_pread(self, fd: int, iovs: int, iovs_len: int, offset: int, nread: int) -> int:
        return self._positioned(os.preadv, R.FD_READ, fd, iovs, iovs_len, offset, nread)

    def fd_pwrite(self, fd: int, iovs: int, iovs_len: int, offset: int, nwritten: int) -> int:
        return self._positioned(os.pwritev, R.FD_WRITE, fd, iovs, iovs_len, offset, nwritten)

    def _positioned(self, op, right: int, fd: int, iovs: int, iovs_len: int, offset: int,
                    out: int) -> int:
        """``fd_pread``/``fd_pwrite``: I/O at an offset, leaving the file position alone."""
        d = self.fds.get(fd)
        if d is None or not d.rights_base & right:
            return E.BADF
        if d.kind != abi.FT_REG:
            return E.SPIPE if d.kind != abi.FT_DIR else E.ISDIR
        if offset >= 1 << 63:
            return E.INVAL
        bufs = self._iovecs(iovs, iovs_len)
        if bufs is None:
            return E.FAULT
        try:
            n = op(d.host_fd, bufs, offset) if bufs else 0
        except OSError as e:
            return abi.from_oserror(e)
        return self._put_u32(out, n)

    def fd_seek(self, fd: int, offset: int, whence: int, newoffset: int) -> int:
        d = self.fds.get(fd)
        if d is None:
            return E.BADF
        if d.kind != abi.FT_REG:
            return E.SPIPE if d.kind != abi.FT_DIR else E.BADF
        if not d.rights_base & (R.FD_SEEK | R.FD_TELL):
            return E.NOTCAPABLE
        if whence > 2:
            return E.INVAL
        if offset >= 1 << 63:
            offset -= 1 << 64  # filedelta is signed
        try:
            pos = os.lseek(d.host_fd, offset, whence)
        except OSError as e:
            return abi.from_oserror(e)
        mem = self.mem
        if newoffset + 8 > mem.size and not mem.check(newoffset, 8):
            return E.FAULT
        U64.pack_into(mem.view, newoffset, pos)
        return 0

    def fd_tell(self, fd: int, out: int) -> int:
        d = self.fds.get(fd)
        if d is None:
            return E.BADF
        if d.kind != abi.FT_REG:
            return E.SPIPE if d.kind != abi.FT_DIR else E.BADF
        try:
            pos = os.lseek(d.host_fd, 0, os.SEEK_CUR)
        except OSError as e:
            return abi.from_oserror(e)
        return self._put_u64(out, pos)

    # -- descriptors: metadata ----------------------------------------------------------

    def fd_advise(self, fd: int, offset: int, length: int, advice: int) -> int:
        d = self._fd(fd)
        if advice not in ADVICE:
            return E.INVAL
        if d.kind == abi.FT_DIR:
            return E.BADF
        if d.kind != abi.FT_REG:
            return E.SPIPE
        if offset >= _OFF_MAX or length >= _OFF_MAX:
            return E.INVAL  # negative as the host's off_t
        os.posix_fadvise(d.host_fd, offset, length, ADVICE[advice])
        return 0

    def fd_allocate(self, fd: int, offset: int, length: int) -> int:
        d = self._fd(fd, R.FD_WRITE)
        if d.kind != abi.FT_REG:
            return E.BADF
        if offset >= _OFF_MAX or length >= _OFF_MAX:
            return E.INVAL  # negative as the host's off_t
        if offset + length >= _OFF_MAX:
            return E.FBIG
        os.posix_fallocate(d.host_fd, offset, length)
        return 0

    def fd_close(self, fd: int) -> int:
        d = self.fds.pop(fd, None)
        if d is None:
            return E.BADF
        if d.stdio < 0 and d.host_fd >= 0:
            os.close(d.host_fd)
        return 0

    def fd_datasync(self, fd: int) -> int:
        d = self._fd(fd)
        if d.kind == abi.FT_REG and not d.rights_base & R.FD_DATASYNC:
            return E.BADF
        os.fdatasync(d.host_fd)
        return 0

    def fd_sync(self, fd: int) -> int:
        d = self._fd(fd)
        if d.kind == abi.FT_REG and not d.rights_base & R.FD_SYNC:
            return E.BADF
        os.fsync(d.host_fd)
        return 0

    def fd_fdstat_get(self, fd: int, out: int) -> int:
        d = self._fd(fd)
        mem = self.mem
        if not mem.check(out, 24):
            return E.FAULT
        flags = d.flags
        if d.host_fd >= 0 and d.stdio < 0:
            fl = os.get_blocking(d.host_fd)
            flags = (flags & ~abi.FDFLAG_NONBLOCK) | (0 if fl else abi.FDFLAG_NONBLOCK)
        FDSTAT.pack_into(mem.view, out, d.kind, flags, d.rights_base, d.rights_inheriting)
        return 0

    def fd_fdstat_set_flags(self, fd: int, flags: int) -> int:
        d = self._fd(fd)
        if flags & ~(abi.FDFLAG_APPEND | abi.FDFLAG_NONBLOCK | abi.FDFLAG_DSYNC
                     | abi.FDFLAG_RSYNC | abi.FDFLAG_SYNC):
            return E.INVAL
        if flags & (abi.FDFLAG_DSYNC | abi.FDFLAG_RSYNC | abi.FDFLAG_SYNC) != d.flags & (
                abi.FDFLAG_DSYNC | abi.FDFLAG_RSYNC | abi.FDFLAG_SYNC):
            return E.NOTSUP  # Linux cannot change these after open
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
            return E.NOTCAPABLE
        d.rights_base, d.rights_inheriting = base, inheriting
        return 0

    def fd_filestat_get(self, fd: int, out: int) -> int:
        d = self.fds.get(fd)
        if d is None:
            return E.BADF
        try:
            st = os.fstat(d.host_fd)
        except OSError as e:
            return abi.from_oserror(e)
        return self._put_filestat(out, st)

    def fd_filestat_set_size(self, fd: int, size: int) -> int:
        d = self._fd(fd)
        if d.kind != abi.FT_REG:
            return E.BADF
        self._mutable(d)
        if size >= 1 << 63:
            return E.INVAL
        os.ftruncate(d.host_fd, size)
        return 0

    def fd_filestat_set_times(self, fd: int, atim: int, mtim: int, fst: int) -> int:
        d = self._fd(fd)
        self._mutable(d)
        os.utime(d.host_fd, ns=times_for(os.fstat(d.host_fd), atim, mtim, fst))
        return 0

    def fd_prestat_get(self, fd: int, out: int) -> int:
        d = self._fd(fd)
        if d.preopen is None:
            return E.BADF
        mem = self.mem
        if not mem.check(out, 8):
            return E.FAULT
        PRESTAT.pack_into(mem.view, out, abi.PREOPEN_DIR, len(d.preopen.encode()))
        return 0

    def fd_prestat_dir_name(self, fd: int, path: int, length: int) -> int:
        d = self._fd(fd)
        if d.preopen is None:
            return E.BADF
        name = d.preopen.encode()
        if length < len(name):
            return E.NAMETOOLONG
        mem = self.mem
        if not mem.check(path, len(name)):
            return E.FAULT
        mem.view[path:path + len(name)] = name
        return 0

    def fd_readdir(self, fd: int, buf: int, buf_len: int, cookie: int, bufused: int) -> int:
        d = self._fd(fd)
        if d.kind != abi.FT_DIR:
            return E.BADF
        if not d.rights_base & R.FD_READDIR:
            return E.NOTCAPABLE
        if cookie == 0 or d.dir_cache is None:
            d.dir_cache = _memdir.listing(self.memory[d.memory], os.fstat(d.host_fd).st_ino) \
                if d.memory else _list_dir(d.host_fd)
        mem = self.mem
        if not mem.check(buf, buf_len):
            return E.FAULT
        view = mem.view
        used = 0
        for i in range(cookie, len(d.dir_cache)):
            name, ino, kind = d.dir_cache[i]
            entry = DIRENT.pack(i + 1, ino, len(name), kind) + name
            take = min(len(entry), buf_len - used)
            view[buf + used:buf + used + take] = entry[:take]
            used += take
            if used == buf_len:
                break
        return self._put_u32(bufused, used)

    def fd_renumber(self, fd: int, to: int) -> int:
        if fd not in self.fds or to not in self.fds:
            return E.BADF
        if fd == to:
            return 0
        self.fd_close(to)
        self.fds[to] = self.fds.pop(fd)
        return 0


def _list_dir(dirfd: int) -> list[tuple[bytes, int, int]]:
    entries = [(b".", os.fstat(dirfd).st_ino, abi.FT_DIR),
               (b"..", os.stat("..", dir_fd=dirfd).st_ino, abi.FT_DIR)]
    with os.scandir(dirfd) as it:
        for e in it:
            try:
                kind = filetype(e.stat(follow_symlinks=False).st_mode)
            except OSError:
                kind = abi.FT_UNKNOWN
            entries.append((os.fsencode(e.name), e.inode(), kind))
    return entries

