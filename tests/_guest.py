"""A block of host memory standing in for a guest's linear memory, to call WASI directly."""

from __future__ import annotations

import ctypes
import struct

from foglayer.wasi import GuestMemory, Wasi, abi


class Guest:
    """A real block of memory standing in for linear memory, with helpers to call WASI."""

    def __init__(self, wasi: Wasi, size: int = 1 << 16) -> None:
        self.buf = (ctypes.c_ubyte * size)()
        self.wasi = wasi
        wasi.attach_memory(GuestMemory(ctypes.addressof(self.buf), lambda: size))
        self.mem = memoryview(self.buf).cast("B")

    def put(self, addr: int, data: bytes) -> tuple[int, int]:
        self.mem[addr:addr + len(data)] = data
        return addr, len(data)

    def open(self, dirfd: int, path: str, oflags: int = 0, write: bool = False,
             fdflags: int = 0) -> int:
        p, n = self.put(1024, path.encode())
        rights = abi.R.FD_READ | abi.R.FD_SEEK | abi.R.FD_TELL | (abi.R.FD_WRITE if write else 0)
        err = self.wasi.path_open(dirfd, 0, p, n, oflags, rights, 0, fdflags, 0)
        assert err == 0, err
        return struct.unpack_from("<I", self.mem, 0)[0]

    def write(self, fd: int, data: bytes) -> int:
        self.put(4096, data)
        struct.pack_into("<II", self.mem, 64, 4096, len(data))
        assert self.wasi.fd_write(fd, 64, 1, 72) == 0
        return struct.unpack_from("<I", self.mem, 72)[0]

    def read(self, fd: int, n: int) -> bytes:
        struct.pack_into("<II", self.mem, 64, 8192, n)
        assert self.wasi.fd_read(fd, 64, 1, 72) == 0
        got = struct.unpack_from("<I", self.mem, 72)[0]
        return bytes(self.mem[8192:8192 + got])

    def seek(self, fd: int, offset: int, whence: int = 0) -> int:
        assert self.wasi.fd_seek(fd, offset, whence, 80) == 0
        return struct.unpack_from("<Q", self.mem, 80)[0]
