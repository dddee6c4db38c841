"""The WASI preview 1 ABI (witx ``typenames.witx``): errno, rights, file types, flags.

Public: :class:`Errno` (``IntEnum``), :class:`Rights` (``IntFlag``), :class:`Filetype`
(``IntEnum``) and the flag constants. The call paths use the plain-int mirrors ``E``, ``R``
and ``FT`` (``E.BADF``, ``R.FD_READ``): reading an enum member costs ~10x a plain attribute,
and ``int & IntFlag`` builds a new flag object (~2 µs), too much for a call that is itself
under a microsecond.
"""

from __future__ import annotations

import errno as _errno
from enum import IntEnum, IntFlag
from types import SimpleNamespace


class Errno(IntEnum):
    """WASI error codes; the value is the witx index. ``2big`` is spelled ``TOOBIG``."""

    SUCCESS = 0
    TOOBIG = 1
    ACCES = 2
    ADDRINUSE = 3
    ADDRNOTAVAIL = 4
    AFNOSUPPORT = 5
    AGAIN = 6
    ALREADY = 7
    BADF = 8
    BADMSG = 9
    BUSY = 10
    CANCELED = 11
    CHILD = 12
    CONNABORTED = 13
    CONNREFUSED = 14
    CONNRESET = 15
    DEADLK = 16
    DESTADDRREQ = 17
    DOM = 18
    DQUOT = 19
    EXIST = 20
    FAULT = 21
    FBIG = 22
    HOSTUNREACH = 23
    IDRM = 24
    ILSEQ = 25
    INPROGRESS = 26
    INTR = 27
    INVAL = 28
    IO = 29
    ISCONN = 30
    ISDIR = 31
    LOOP = 32
    MFILE = 33
    MLINK = 34
    MSGSIZE = 35
    MULTIHOP = 36
    NAMETOOLONG = 37
    NETDOWN = 38
    NETRESET = 39
    NETUNREACH = 40
    NFILE = 41
    NOBUFS = 42
    NODEV = 43
    NOENT = 44
    NOEXEC = 45
    NOLCK = 46
    NOLINK = 47
    NOMEM = 48
    NOMSG = 49
    NOPROTOOPT = 50
    NOSPC = 51
    NOSYS = 52
    NOTCONN = 53
    NOTDIR = 54
    NOTEMPTY = 55
    NOTRECOVERABLE = 56
    NOTSOCK = 57
    NOTSUP = 58
    NOTTY = 59
    NXIO = 60
    OVERFLOW = 61
    OWNERDEAD = 62
    PERM = 63
    PIPE = 64
    PROTO = 65
    PROTONOSUPPORT = 66
    PROTOTYPE = 67
    RANGE = 68
    ROFS = 69
    SPIPE = 70
    SRCH = 71
    STALE = 72
    TIMEDOUT = 73
    TXTBSY = 74
    XDEV = 75
    NOTCAPABLE = 76


class Rights(IntFlag):
    """Descriptor rights; bit i is the i-th right of the witx list."""

    FD_DATASYNC = 1 << 0
    FD_READ = 1 << 1
    FD_SEEK = 1 << 2
    FD_FDSTAT_SET_FLAGS = 1 << 3
    FD_SYNC = 1 << 4
    FD_TELL = 1 << 5
    FD_WRITE = 1 << 6
    FD_ADVISE = 1 << 7
    FD_ALLOCATE = 1 << 8
    PATH_CREATE_DIRECTORY = 1 << 9
    PATH_CREATE_FILE = 1 << 10
    PATH_LINK_SOURCE = 1 << 11
    PATH_LINK_TARGET = 1 << 12
    PATH_OPEN = 1 << 13
    FD_READDIR = 1 << 14
    PATH_READLINK = 1 << 15
    PATH_RENAME_SOURCE = 1 << 16
    PATH_RENAME_TARGET = 1 << 17
    PATH_FILESTAT_GET = 1 << 18
    PATH_FILESTAT_SET_SIZE = 1 << 19
    PATH_FILESTAT_SET_TIMES = 1 << 20
    FD_FILESTAT_GET = 1 << 21
    FD_FILESTAT_SET_SIZE = 1 << 22
    FD_FILESTAT_SET_TIMES = 1 << 23
    PATH_SYMLINK = 1 << 24
    PATH_REMOVE_DIRECTORY = 1 << 25
    PATH_UNLINK_FILE = 1 << 26
    POLL_FD_READWRITE = 1 << 27
    SOCK_SHUTDOWN = 1 << 28
    SOCK_ACCEPT = 1 << 29


class Filetype(IntEnum):
    UNKNOWN = 0
    BLOCK_DEVICE = 1
    CHARACTER_DEVICE = 2
    DIRECTORY = 3
    REGULAR_FILE = 4
    SOCKET_DGRAM = 5
    SOCKET_STREAM = 6
    SYMBOLIC_LINK = 7


def _plain(enum: type) -> SimpleNamespace:
    return SimpleNamespace(**{m.name: int(m) for m in enum})


E = _plain(Errno)
R = _plain(Rights)
RIGHTS_ALL = int(~Rights(0))

# File types as plain ints (also the snapshot's descriptor kinds).
FT_UNKNOWN, FT_BLOCK, FT_CHAR, FT_DIR, FT_REG, FT_DGRAM, FT_STREAM, FT_SYMLINK = map(int, Filetype)


def _host_to_wasi() -> dict[int, int]:
    table: dict[int, int] = {}
    for e in Errno:
        host = getattr(_errno, "E" + e.name, None)
        if host is not None and host not in table:
            table[host] = int(e)
    table[_errno.E2BIG] = E.TOOBIG
    table[_errno.EOPNOTSUPP] = E.NOTSUP
    table[_errno.EWOULDBLOCK] = E.AGAIN
    return table


HOST_ERRNO = _host_to_wasi()


def from_oserror(e: OSError) -> int:
    """The WASI errno for a host ``OSError``."""
    return HOST_ERRNO.get(e.errno or 0, E.IO)


# fdflags
FDFLAG_APPEND, FDFLAG_DSYNC, FDFLAG_NONBLOCK, FDFLAG_RSYNC, FDFLAG_SYNC = 1, 2, 4, 8, 16
# oflags
O_CREAT, O_DIRECTORY, O_EXCL, O_TRUNC = 1, 2, 4, 8
# lookupflags
LOOKUP_SYMLINK_FOLLOW = 1
# fstflags
FST_ATIM, FST_ATIM_NOW, FST_MTIM, FST_MTIM_NOW = 1, 2, 4, 8
# whence
WHENCE_SET, WHENCE_CUR, WHENCE_END = 0, 1, 2
# clocks
CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME, CLOCK_THREAD_CPUTIME = range(4)
# events
EVENT_CLOCK, EVENT_FD_READ, EVENT_FD_WRITE = range(3)
SUBCLOCK_ABSTIME = 1
EVENTRWFLAGS_HANGUP = 1
# preopen tag
PREOPEN_DIR = 0
# sdflags
SHUT_RD, SHUT_WR = 1, 2

# Rights that write: a read-only preopen hands none of them out.
RIGHTS_WRITE = int(
    Rights.FD_DATASYNC | Rights.FD_WRITE | Rights.FD_ALLOCATE | Rights.FD_FILESTAT_SET_SIZE
    | Rights.FD_FILESTAT_SET_TIMES | Rights.FD_SYNC | Rights.PATH_CREATE_DIRECTORY
    | Rights.PATH_CREATE_FILE | Rights.PATH_LINK_SOURCE | Rights.PATH_LINK_TARGET
    | Rights.PATH_RENAME_SOURCE | Rights.PATH_RENAME_TARGET | Rights.PATH_FILESTAT_SET_SIZE
    | Rights.PATH_FILESTAT_SET_TIMES | Rights.PATH_SYMLINK | Rights.PATH_REMOVE_DIRECTORY
    | Rights.PATH_UNLINK_FILE
)
# The rights of a file opened for writing (dropped when it is opened read-only).
RIGHTS_FILE_WRITE = int(Rights.FD_WRITE | Rights.FD_DATASYNC | Rights.FD_ALLOCATE
                        | Rights.FD_FILESTAT_SET_SIZE)
RIGHTS_REGULAR_FILE = int(
    Rights.FD_DATASYNC | Rights.FD_READ | Rights.FD_SEEK | Rights.FD_FDSTAT_SET_FLAGS
    | Rights.FD_SYNC | Rights.FD_TELL | Rights.FD_WRITE | Rights.FD_ADVISE | Rights.FD_ALLOCATE
    | Rights.FD_FILESTAT_GET | Rights.FD_FILESTAT_SET_SIZE | Rights.FD_FILESTAT_SET_TIMES
    | Rights.POLL_FD_READWRITE
)
RIGHTS_DIRECTORY = int(
    Rights.FD_FDSTAT_SET_FLAGS | Rights.FD_SYNC | Rights.FD_ADVISE
    | Rights.PATH_CREATE_DIRECTORY | Rights.PATH_CREATE_FILE | Rights.PATH_LINK_SOURCE
    | Rights.PATH_LINK_TARGET | Rights.PATH_OPEN | Rights.FD_READDIR | Rights.PATH_READLINK
    | Rights.PATH_RENAME_SOURCE | Rights.PATH_RENAME_TARGET | Rights.PATH_FILESTAT_GET
    | Rights.PATH_FILESTAT_SET_SIZE | Rights.PATH_FILESTAT_SET_TIMES | Rights.FD_FILESTAT_GET
    | Rights.FD_FILESTAT_SET_TIMES | Rights.PATH_SYMLINK | Rights.PATH_REMOVE_DIRECTORY
    | Rights.PATH_UNLINK_FILE | Rights.FD_DATASYNC
)
RIGHTS_TTY = int(Rights.FD_READ | Rights.FD_FDSTAT_SET_FLAGS | Rights.FD_WRITE
                 | Rights.FD_FILESTAT_GET | Rights.POLL_FD_READWRITE)
RIGHTS_PIPE = RIGHTS_TTY
