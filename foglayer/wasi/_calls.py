"""The WASI preview 1 call table, as data: one :class:`Call` per import of
``wasi_snapshot_preview1`` (46), giving its parameters, its result, the right each fd
argument needs (the spec's, as witx documents them) and whether it is hot.

Hot calls are bound directly: they check their own arguments and pointers, turn host
errors into errnos themselves and never raise (but ``proc_exit``, which is not hot). They
are the calls a program makes per byte or per query, and the ones the native path may
implement in C. Every other call is bound through a guard that turns ``WasiError`` and
``OSError`` into the errno (see ``Wasi.host_functions``).
"""

from __future__ import annotations

from typing import NamedTuple

from foglayer.wasi.abi import Rights

MODULE = "wasi_snapshot_preview1"


class Call(NamedTuple):
    """One import (a ``NamedTuple``: ``dataclasses`` would cost ~5 ms of every start)."""

    name: str
    params: tuple[tuple[str, str], ...]  # (name, "i" for i32 or "I" for i64)
    returns_errno: bool  # False only for proc_exit, which never returns
    rights: tuple[tuple[str, Rights], ...]  # (fd parameter, the rights it must carry)
    hot: bool

    @property
    def signature(self) -> str:
        """Parameter types as one string: ``i`` is i32, ``I`` is i64."""
        return "".join(t for _, t in self.params)


def _call(name: str, params: str, rights: dict[str, Rights] | None = None, hot: bool = False,
          returns_errno: bool = True) -> Call:
    """``params`` is ``"fd:i offset:I ..."``."""
    ps = tuple((p.split(":")[0], p.split(":")[1]) for p in params.split())
    return Call(name, ps, returns_errno, tuple((rights or {}).items()), hot)


R = Rights
CALLS: tuple[Call, ...] = (
    _call("args_get", "argv:i argv_buf:i"),
    _call("args_sizes_get", "argc_out:i argv_buf_size_out:i"),
    _call("environ_get", "environ:i environ_buf:i"),
    _call("environ_sizes_get", "count_out:i buf_size_out:i"),
    _call("clock_res_get", "clock_id:i out:i", hot=True),
    _call("clock_time_get", "clock_id:i precision:I out:i", hot=True),
    _call("fd_advise", "fd:i offset:I len:I advice:i", {"fd": R.FD_ADVISE}),
    _call("fd_allocate", "fd:i offset:I len:I", {"fd": R.FD_ALLOCATE}),
    _call("fd_close", "fd:i"),
    _call("fd_datasync", "fd:i", {"fd": R.FD_DATASYNC}),
    _call("fd_fdstat_get", "fd:i out:i"),
    _call("fd_fdstat_set_flags", "fd:i flags:i", {"fd": R.FD_FDSTAT_SET_FLAGS}),
    _call("fd_fdstat_set_rights", "fd:i rights_base:I rights_inheriting:I"),
    _call("fd_filestat_get", "fd:i out:i", {"fd": R.FD_FILESTAT_GET}, hot=True),
    _call("fd_filestat_set_size", "fd:i size:I", {"fd": R.FD_FILESTAT_SET_SIZE}),
    _call("fd_filestat_set_times", "fd:i atim:I mtim:I fst_flags:i",
          {"fd": R.FD_FILESTAT_SET_TIMES}),
    _call("fd_pread", "fd:i iovs:i iovs_len:i offset:I nread_out:i",
          {"fd": R.FD_READ | R.FD_SEEK}, hot=True),
    _call("fd_prestat_get", "fd:i out:i"),
    _call("fd_prestat_dir_name", "fd:i path:i path_len:i"),
    _call("fd_pwrite", "fd:i iovs:i iovs_len:i offset:I nwritten_out:i",
          {"fd": R.FD_WRITE | R.FD_SEEK}, hot=True),
    _call("fd_read", "fd:i iovs:i iovs_len:i nread_out:i", {"fd": R.FD_READ}, hot=True),
    _call("fd_readdir", "fd:i buf:i buf_len:i cookie:I bufused_out:i", {"fd": R.FD_READDIR}),
    _call("fd_renumber", "fd:i to:i"),
    _call("fd_seek", "fd:i offset:I whence:i newoffset_out:i", {"fd": R.FD_SEEK}, hot=True),
    _call("fd_sync", "fd:i", {"fd": R.FD_SYNC}),
    _call("fd_tell", "fd:i out:i", {"fd": R.FD_TELL}, hot=True),
    _call("fd_write", "fd:i iovs:i iovs_len:i nwritten_out:i", {"fd": R.FD_WRITE}, hot=True),
    _call("path_create_directory", "fd:i path:i path_len:i", {"fd": R.PATH_CREATE_DIRECTORY}),
    _call("path_filestat_get", "fd:i flags:i path:i path_len:i out:i",
          {"fd": R.PATH_FILESTAT_GET}),
    _call("path_filestat_set_times", "fd:i flags:i path:i path_len:i atim:I mtim:I fst_flags:i",
          {"fd": R.PATH_FILESTAT_SET_TIMES}),
    _call("path_link", "old_fd:i old_flags:i old_path:i old_path_len:i new_fd:i new_path:i "
          "new_path_len:i", {"old_fd": R.PATH_LINK_SOURCE, "new_fd": R.PATH_LINK_TARGET}),
    _call("path_open", "fd:i dirflags:i path:i path_len:i oflags:i rights_base:I "
          "rights_inheriting:I fdflags:i fd_out:i", {"fd": R.PATH_OPEN}),
    _call("path_readlink", "fd:i path:i path_len:i buf:i buf_len:i bufused_out:i",
          {"fd": R.PATH_READLINK}),
    _call("path_remove_directory", "fd:i path:i path_len:i", {"fd": R.PATH_REMOVE_DIRECTORY}),
    _call("path_rename", "fd:i old_path:i old_path_len:i new_fd:i new_path:i new_path_len:i",
          {"fd": R.PATH_RENAME_SOURCE, "new_fd": R.PATH_RENAME_TARGET}),
    _call("path_symlink", "old_path:i old_path_len:i fd:i new_path:i new_path_len:i",
          {"fd": R.PATH_SYMLINK}),
    _call("path_unlink_file", "fd:i path:i path_len:i", {"fd": R.PATH_UNLINK_FILE}),
    _call("poll_oneoff", "in:i out:i nsubscriptions:i nevents_out:i"),
    _call("proc_exit", "code:i", returns_errno=False),
    _call("proc_raise", "sig:i"),
    _call("sched_yield", "", hot=True),
    _call("random_get", "buf:i buf_len:i", hot=True),
    _call("sock_accept", "fd:i flags:i fd_out:i", {"fd": R.SOCK_ACCEPT}),
    _call("sock_recv", "fd:i ri_data:i ri_data_len:i ri_flags:i ro_datalen_out:i "
          "ro_flags_out:i", {"fd": R.FD_READ}),
    _call("sock_send", "fd:i si_data:i si_data_len:i si_flags:i so_datalen_out:i",
          {"fd": R.FD_WRITE}),
    _call("sock_shutdown", "fd:i how:i", {"fd": R.SOCK_SHUTDOWN}),
)
del R

CALL = {c.name: c for c in CALLS}
# The import table as the runtime binds it: name -> (parameter types, returns an errno).
SIGNATURES: dict[str, tuple[str, bool]] = {c.name: (c.signature, c.returns_errno) for c in CALLS}
HOT = frozenset(c.name for c in CALLS if c.hot)
