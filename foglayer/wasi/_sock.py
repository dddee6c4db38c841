"""WASI socket calls, on sockets the host hands in (none are granted by default)."""

from __future__ import annotations

import os

from foglayer.wasi import abi
from foglayer.wasi._core import WasiCore
from foglayer.wasi._paths import WasiError
from foglayer.wasi._state import Descriptor
from foglayer.wasi.abi import E, R


class SockCalls(WasiCore):
    """sock_*."""

    # -- sockets (only sockets the host hands in; none are granted by default) ----------

    def _socket(self, fd: int) -> Descriptor:
        d = self._fd(fd)
        if d.kind not in (abi.FT_STREAM, abi.FT_DGRAM):
            raise WasiError(E.NOTSOCK)
        return d

    def sock_accept(self, fd: int, flags: int, fd_out: int) -> int:
        d = self._socket(fd)
        if flags & ~abi.FDFLAG_NONBLOCK:
            return E.INVAL
        self._room()
        import socket

        with socket.socket(fileno=os.dup(d.host_fd)) as s:
            conn, _ = s.accept()
        conn.setblocking(not flags & abi.FDFLAG_NONBLOCK)
        new = Descriptor(kind=abi.FT_STREAM, host_path="", guest_path="<socket>",
                         rights_base=abi.RIGHTS_TTY | R.SOCK_SHUTDOWN,
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
            return E.FAULT
        import socket

        with socket.socket(fileno=os.dup(d.host_fd)) as s:
            flags = (socket.MSG_PEEK if ri_flags & 1 else 0) | (socket.MSG_WAITALL if ri_flags & 2 else 0)
            n, _, _, _ = s.recvmsg_into(bufs, 0, flags)
        return self._put_u32(ro_len, n) or self._put_u32(ro_flags, 0)

    def sock_send(self, fd: int, si_data: int, si_len: int, si_flags: int, so_len: int) -> int:
        d = self._socket(fd)
        bufs = self._iovecs(si_data, si_len)
        if bufs is None:
            return E.FAULT
        return self._put_u32(so_len, os.writev(d.host_fd, bufs))

    def sock_shutdown(self, fd: int, how: int) -> int:
        d = self._socket(fd)
        if how not in (1, 2, 3):
            return E.INVAL
        import socket

        mode = {1: socket.SHUT_RD, 2: socket.SHUT_WR, 3: socket.SHUT_RDWR}[how]
        with socket.socket(fileno=os.dup(d.host_fd)) as s:
            s.shutdown(mode)
        return 0


