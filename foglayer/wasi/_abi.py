"""Constants of the WASI preview 1 ABI (witx `typenames.witx`) and host errno mapping."""

from __future__ import annotations

import errno as _errno

# errno: the witx order; each value is its index.
ERRNO_NAMES = (
    "success 2big acces addrinuse addrnotavail afnosupport again already badf badmsg busy "
    "canceled child connaborted connrefused connreset deadlk destaddrreq dom dquot exist "
    "fault fbig hostunreach idrm ilseq inprogress intr inval io isconn isdir loop mfile "
    "mlink msgsize multihop nametoolong netdown netreset netunreach nfile nobufs nodev "
    "noent noexec nolck nolink nomem nomsg noprotoopt nospc nosys notconn notdir notempty "
    "notrecoverable notsock notsup notty nxio overflow ownerdead perm pipe proto "
    "protonosupport prototype range rofs spipe srch stale timedout txtbsy xdev notcapable"
).split()
globals().update({f"E{n.upper()}": i for i, n in enumerate(ERRNO_NAMES) if i})
ESUCCESS = 0
# Names set by the line above, repeated for linters and readers.
EACCES = ERRNO_NAMES.index("acces")
EAGAIN = ERRNO_NAMES.index("again")
EBADF = ERRNO_NAMES.index("badf")
EEXIST = ERRNO_NAMES.index("exist")
EFAULT = ERRNO_NAMES.index("fault")
EILSEQ = ERRNO_NAMES.index("ilseq")
EINVAL = ERRNO_NAMES.index("inval")
EIO = ERRNO_NAMES.index("io")
EISDIR = ERRNO_NAMES.index("isdir")
ELOOP = ERRNO_NAMES.index("loop")
ENAMETOOLONG = ERRNO_NAMES.index("nametoolong")
ENOENT = ERRNO_NAMES.index("noent")
ENOSYS = ERRNO_NAMES.index("nosys")
ENOTDIR = ERRNO_NAMES.index("notdir")
ENOTEMPTY = ERRNO_NAMES.index("notempty")
ENOTSOCK = ERRNO_NAMES.index("notsock")
ENOTSUP = ERRNO_NAMES.index("notsup")
EOVERFLOW = ERRNO_NAMES.index("overflow")
EPERM = ERRNO_NAMES.index("perm")
EROFS = ERRNO_NAMES.index("rofs")
ESPIPE = ERRNO_NAMES.index("spipe")
EXDEV = ERRNO_NAMES.index("xdev")
ENOTCAPABLE = ERRNO_NAMES.index("notcapable")


def _host_to_wasi() -> dict[int, int]:
    table: dict[int, int] = {}
    for i, name in enumerate(ERRNO_NAMES):
        host = getattr(_errno, "E" + name.upper(), None)
        if host is not None and host not in table:
            table[host] = i
    table[_errno.EACCES] = EACCES
    table[_errno.EOPNOTSUPP] = ENOTSUP
    table[_errno.EWOULDBLOCK] = EAGAIN
    return table


HOST_ERRNO = _host_to_wasi()


def from_oserror(e: OSError) -> int:
    """The WASI errno for a host ``OSError``."""
    return HOST_ERRNO.get(e.errno or 0, EIO)


# filetype
FT_UNKNOWN, FT_BLOCK, FT_CHAR, FT_DIR, FT_REG, FT_DGRAM, FT_STREAM, FT_SYMLINK = range(8)

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

# rights: bit i is the i-th right of the witx list
RIGHT_NAMES = (
    "fd_datasync fd_read fd_seek fd_fdstat_set_flags fd_sync fd_tell fd_write fd_advise "
    "fd_allocate path_create_directory path_create_file path_link_source path_link_target "
    "path_open fd_readdir path_readlink path_rename_source path_rename_target "
    "path_filestat_get path_filestat_set_size path_filestat_set_times fd_filestat_get "
    "fd_filestat_set_size fd_filestat_set_times path_symlink path_remove_directory "
    "path_unlink_file poll_fd_readwrite sock_shutdown sock_accept"
).split()
R = {name: 1 << i for i, name in enumerate(RIGHT_NAMES)}
RIGHTS_ALL = (1 << len(RIGHT_NAMES)) - 1
R_FD_READ = R["fd_read"]
R_FD_WRITE = R["fd_write"]
R_FD_SEEK = R["fd_seek"]
R_FD_TELL = R["fd_tell"]
R_FD_READDIR = R["fd_readdir"]

# Rights that write: a read-only preopen hands none of them out.
RIGHTS_WRITE = (
    R["fd_datasync"] | R["fd_write"] | R["fd_allocate"] | R["fd_filestat_set_size"]
    | R["fd_filestat_set_times"] | R["fd_sync"] | R["path_create_directory"]
    | R["path_create_file"] | R["path_link_source"] | R["path_link_target"]
    | R["path_rename_source"] | R["path_rename_target"] | R["path_filestat_set_size"]
    | R["path_filestat_set_times"] | R["path_symlink"] | R["path_remove_directory"]
    | R["path_unlink_file"]
)
RIGHTS_REGULAR_FILE = (
    R["fd_datasync"] | R["fd_read"] | R["fd_seek"] | R["fd_fdstat_set_flags"] | R["fd_sync"]
    | R["fd_tell"] | R["fd_write"] | R["fd_advise"] | R["fd_allocate"] | R["fd_filestat_get"]
    | R["fd_filestat_set_size"] | R["fd_filestat_set_times"] | R["poll_fd_readwrite"]
)
RIGHTS_DIRECTORY = (
    R["fd_fdstat_set_flags"] | R["fd_sync"] | R["fd_advise"] | R["path_create_directory"]
    | R["path_create_file"] | R["path_link_source"] | R["path_link_target"] | R["path_open"]
    | R["fd_readdir"] | R["path_readlink"] | R["path_rename_source"] | R["path_rename_target"]
    | R["path_filestat_get"] | R["path_filestat_set_size"] | R["path_filestat_set_times"]
    | R["fd_filestat_get"] | R["fd_filestat_set_times"] | R["path_symlink"]
    | R["path_remove_directory"] | R["path_unlink_file"] | R["fd_datasync"]
)
RIGHTS_TTY = (
    R["fd_read"] | R["fd_fdstat_set_flags"] | R["fd_write"] | R["fd_filestat_get"]
    | R["poll_fd_readwrite"]
)
RIGHTS_PIPE = RIGHTS_TTY
