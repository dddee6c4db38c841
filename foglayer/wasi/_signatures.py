"""The import signatures of ``wasi_snapshot_preview1``: ``i`` is i32, ``I`` is i64."""

MODULE = "wasi_snapshot_preview1"

# name: (params, returns an errno)
SIGNATURES: dict[str, tuple[str, bool]] = {
    "args_get": ("ii", True),
    "args_sizes_get": ("ii", True),
    "environ_get": ("ii", True),
    "environ_sizes_get": ("ii", True),
    "clock_res_get": ("ii", True),
    "clock_time_get": ("iIi", True),
    "fd_advise": ("iIIi", True),
    "fd_allocate": ("iII", True),
    "fd_close": ("i", True),
    "fd_datasync": ("i", True),
    "fd_fdstat_get": ("ii", True),
    "fd_fdstat_set_flags": ("ii", True),
    "fd_fdstat_set_rights": ("iII", True),
    "fd_filestat_get": ("ii", True),
    "fd_filestat_set_size": ("iI", True),
    "fd_filestat_set_times": ("iIIi", True),
    "fd_pread": ("iiiIi", True),
    "fd_prestat_get": ("ii", True),
    "fd_prestat_dir_name": ("iii", True),
    "fd_pwrite": ("iiiIi", True),
    "fd_read": ("iiii", True),
    "fd_readdir": ("iiiIi", True),
    "fd_renumber": ("ii", True),
    "fd_seek": ("iIii", True),
    "fd_sync": ("i", True),
    "fd_tell": ("ii", True),
    "fd_write": ("iiii", True),
    "path_create_directory": ("iii", True),
    "path_filestat_get": ("iiiii", True),
    "path_filestat_set_times": ("iiiiIIi", True),
    "path_link": ("iiiiiii", True),
    "path_open": ("iiiiiIIii", True),
    "path_readlink": ("iiiiii", True),
    "path_remove_directory": ("iii", True),
    "path_rename": ("iiiiii", True),
    "path_symlink": ("iiiii", True),
    "path_unlink_file": ("iii", True),
    "poll_oneoff": ("iiii", True),
    "proc_exit": ("i", False),
    "proc_raise": ("i", True),
    "sched_yield": ("", True),
    "random_get": ("ii", True),
    "sock_accept": ("iii", True),
    "sock_recv": ("iiiiii", True),
    "sock_send": ("iiiii", True),
    "sock_shutdown": ("ii", True),
}

# Calls that check their own pointers; the binding skips re-mapping memory before them.
HOT = frozenset({
    "fd_write", "fd_read", "fd_pread", "fd_pwrite", "fd_seek", "fd_tell", "clock_time_get",
})
