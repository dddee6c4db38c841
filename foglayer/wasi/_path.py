"""WASI calls on paths below a directory descriptor (walked by ``_paths.resolve``)."""

from __future__ import annotations

import os
import stat

from foglayer.wasi import _memdir, abi
from foglayer.wasi._core import (
    READ_RIGHTS_FOR_OPEN,
    WRITE_RIGHTS_FOR_OPEN,
    WasiCore,
    filetype,
    rights_for,
    times_for,
)
from foglayer.wasi._paths import Target, check_new_name
from foglayer.wasi._state import Descriptor
from foglayer.wasi.abi import E, R


class PathCalls(WasiCore):
    """path_*."""

    # -- paths --------------------------------------------------------------------------

    def path_open(self, dirfd: int, dirflags: int, path: int, path_len: int, oflags: int,
                  rights_base: int, rights_inheriting: int, fdflags: int, fd_out: int) -> int:
        src = self.fds.get(dirfd)
        if src is not None and src.kind == abi.FT_REG and src.stdio < 0:
            return E.NOTDIR  # as wasmtime: opening below a file
        if src is not None:
            self._room()  # before any host descriptor is opened for the guest
        if src is not None and src.memory:
            return self._open_memory(dirfd, path, path_len, oflags, rights_base,
                                     rights_inheriting, fdflags, fd_out)
        follow = bool(dirflags & abi.LOOKUP_SYMLINK_FOLLOW)
        d, t = self._path(dirfd, R.PATH_OPEN, path, path_len, follow)
        with t:
            return self._open_at(d, t, self._string(path, path_len), oflags, rights_base,
                                 rights_inheriting, fdflags, fd_out)

    def _open_at(self, d: Descriptor, t: Target, path: str, oflags: int, rights_base: int,
                 rights_inheriting: int, fdflags: int, fd_out: int) -> int:
        write = bool(rights_base & R.FD_WRITE)  # as wasmtime: only fd_write opens for writing
        read = bool(rights_base & READ_RIGHTS_FOR_OPEN) or not write
        if d.readonly and (write or oflags & (abi.O_CREAT | abi.O_TRUNC)):
            return E.PERM
        if oflags & abi.O_TRUNC and not d.rights_base & R.PATH_FILESTAT_SET_SIZE:
            return E.PERM  # the suite's truncation_rights: truncating needs this right
        if oflags & abi.O_CREAT and not d.rights_base & R.PATH_CREATE_FILE:
            return E.NOTCAPABLE
        if oflags & abi.O_DIRECTORY and write:
            return E.ISDIR
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
            return E.ISDIR
        try:
            kind = filetype(os.fstat(hfd).st_mode)
            base, inh = rights_for(kind, read, write, d.readonly)
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
        d = self._dir(dirfd, R.PATH_OPEN)
        write = bool(rights_base & WRITE_RIGHTS_FOR_OPEN) or bool(fdflags & abi.FDFLAG_APPEND)
        if write or oflags & (abi.O_CREAT | abi.O_TRUNC):
            return E.PERM
        files = self.memory[d.memory]
        name = _memdir.lookup(files, self._string(path, path_len))
        if name is not None and oflags & abi.O_DIRECTORY:
            return E.NOTDIR
        kind = abi.FT_REG if name is not None else abi.FT_DIR
        hfd = _memdir.open_file(files[name]) if name is not None else _memdir.open_dead_dir()
        base, inh = rights_for(kind, True, False, True)
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
        d, t = self._path(fd, R.PATH_CREATE_DIRECTORY, path, path_len, False)
        with t:
            self._mutable(d)
            check_new_name(self._string(path, path_len))
            os.mkdir(t.name, dir_fd=t.dirfd)
        return 0

    def path_filestat_get(self, fd: int, flags: int, path: int, path_len: int, out: int) -> int:
        follow = bool(flags & abi.LOOKUP_SYMLINK_FOLLOW)
        d = self._dir(fd, R.PATH_FILESTAT_GET)
        if d.memory:
            name = _memdir.lookup(self.memory[d.memory], self._string(path, path_len))
            if name is None:
                return self._put_filestat(out, os.fstat(d.host_fd))
            hfd = _memdir.open_file(self.memory[d.memory][name])
            try:
                return self._put_filestat(out, os.fstat(hfd))
            finally:
                os.close(hfd)
        _, t = self._path(fd, R.PATH_FILESTAT_GET, path, path_len, follow)
        with t:
            st = t.lstat()
            if t.slash and not stat.S_ISDIR(st.st_mode):
                return E.NOTDIR
            return self._put_filestat(out, st)

    def path_filestat_set_times(self, fd: int, flags: int, path: int, path_len: int,
                                atim: int, mtim: int, fst: int) -> int:
        follow = bool(flags & abi.LOOKUP_SYMLINK_FOLLOW)
        d, t = self._path(fd, R.PATH_FILESTAT_SET_TIMES, path, path_len, follow)
        with t:
            self._mutable(d)
            os.utime(t.name, ns=times_for(t.lstat(), atim, mtim, fst), dir_fd=t.dirfd,
                     follow_symlinks=False)
        return 0

    def path_link(self, old_fd: int, old_flags: int, old_path: int, old_len: int,
                  new_fd: int, new_path: int, new_len: int) -> int:
        follow = bool(old_flags & abi.LOOKUP_SYMLINK_FOLLOW)
        d1, src = self._path(old_fd, R.PATH_LINK_SOURCE, old_path, old_len, follow)
        with src:
            d2, dst = self._path(new_fd, R.PATH_LINK_TARGET, new_path, new_len, False)
            with dst:
                self._mutable(d1)
                self._mutable(d2)
                check_new_name(self._string(new_path, new_len))
                if dst.slash:
                    return E.EXIST if _exists(dst) else E.NOENT
                os.link(src.name, dst.name, src_dir_fd=src.dirfd, dst_dir_fd=dst.dirfd,
                        follow_symlinks=False)
        return 0

    def path_readlink(self, fd: int, path: int, path_len: int, buf: int, buf_len: int,
                      bufused: int) -> int:
        _, t = self._path(fd, R.PATH_READLINK, path, path_len, False)
        with t:
            target = os.readlink(t.name, dir_fd=t.dirfd).encode()
        n = min(len(target), buf_len)
        mem = self.mem
        if not mem.check(buf, n):
            return E.FAULT
        mem.view[buf:buf + n] = target[:n]
        return self._put_u32(bufused, n)

    def path_remove_directory(self, fd: int, path: int, path_len: int) -> int:
        d, t = self._path(fd, R.PATH_REMOVE_DIRECTORY, path, path_len, False)
        with t:
            self._mutable(d)
            name = self._string(path, path_len).rstrip("/").rsplit("/", 1)[-1]
            if name in (".", ""):
                return E.INVAL if name == "." else E.PERM
            if t.name == ".":
                return E.PERM  # the path climbed back to a directory we hold open
            os.rmdir(t.name, dir_fd=t.dirfd)
        return 0

    def path_rename(self, fd: int, old_path: int, old_len: int, new_fd: int, new_path: int,
                    new_len: int) -> int:
        d1, src = self._path(fd, R.PATH_RENAME_SOURCE, old_path, old_len, False)
        with src:
            d2, dst = self._path(new_fd, R.PATH_RENAME_TARGET, new_path, new_len, False)
            with dst:
                self._mutable(d1)
                self._mutable(d2)
                for s in (self._string(old_path, old_len), self._string(new_path, new_len)):
                    if s.rstrip("/").rsplit("/", 1)[-1] in (".", ".."):
                        return E.INVAL
                if src.name == "." or dst.name == ".":
                    return E.PERM
                if (src.slash or dst.slash) and not stat.S_ISDIR(src.lstat().st_mode):
                    return E.NOTDIR
                os.rename(src.name, dst.name, src_dir_fd=src.dirfd, dst_dir_fd=dst.dirfd)
        return 0

    def path_symlink(self, old_path: int, old_len: int, fd: int, new_path: int,
                     new_len: int) -> int:
        target = self._string(old_path, old_len)
        d, t = self._path(fd, R.PATH_SYMLINK, new_path, new_len, False)
        with t:
            self._mutable(d)
            if target.startswith("/"):
                return E.PERM
            if "\0" in target:
                return E.INVAL
            check_new_name(self._string(new_path, new_len))
            if t.slash:
                return E.EXIST if _exists(t) else E.NOENT
            os.symlink(target, t.name, dir_fd=t.dirfd)
        return 0

    def path_unlink_file(self, fd: int, path: int, path_len: int) -> int:
        d, t = self._path(fd, R.PATH_UNLINK_FILE, path, path_len, False)
        with t:
            self._mutable(d)
            if t.slash or t.name == ".":
                return E.ISDIR if stat.S_ISDIR(t.lstat().st_mode) else E.NOTDIR
            os.unlink(t.name, dir_fd=t.dirfd)
        return 0


def _exists(t: Target) -> bool:
    try:
        t.lstat()
    except FileNotFoundError:
        return False
    return True
