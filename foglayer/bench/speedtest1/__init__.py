"""SQLite's speedtest1 "main" test set as one C program, for native vs Wasm comparisons.

``SOURCE`` is built together with the pinned amalgamation (:func:`amalgamation_dir`) and
``SQLITE_DEFINES``; the same defines go into the native and the wasm32-wasi build.
"""

from __future__ import annotations

from pathlib import Path

from foglayer.bench.speedtest1._sqlite import VERSION, amalgamation_dir, sqlite_version

SOURCE = Path(__file__).with_name("speedtest1.c")

# The same for native and wasm32-wasi. Each one is what sqlite3.c already does by itself when
# built for __wasi__, so passing them makes the native build run the same SQLite code:
SQLITE_DEFINES = (
    "-DSQLITE_THREADSAFE=0",  # WASI has no threads: no mutexes on either side
    "-DSQLITE_OMIT_LOAD_EXTENSION",  # WASI has no dlopen
    "-DSQLITE_MAX_MMAP_SIZE=0",  # WASI has no mmap; native would only compile it in unused
    # WASI has no fcntl() byte-range locks, so "unix" cannot run there. SQLite's WASI default,
    # "unix-dotfile", locks with a mkdir/rmdir of PATH.lock per transaction: 140k of them in
    # tests 410/510 (autocommit SELECTs), which then measure the host's directory metadata
    # latency (0.5-3 ms per pair here), not SQLite. "unix-none" (no locks) is closest to the
    # cost of upstream's fcntl locks; the database file is private to the run anyway.
    # `speedtest1 --vfs unix-dotfile` still selects dotfile locking at run time.
    '-DSQLITE_DEFAULT_UNIX_VFS="unix-none"',
    # SQLite turns on pread()/pwrite() only for __linux__ and __APPLE__; on WASI it would
    # lseek() before every read and write (950k extra fd_seek calls at size 100). wasi-libc
    # has both (fd_pread/fd_pwrite): do the same I/O on both sides, as native Linux does.
    "-DHAVE_PREAD=1",
    "-DHAVE_PWRITE=1",
)

__all__ = ["SOURCE", "SQLITE_DEFINES", "VERSION", "amalgamation_dir", "sqlite_version"]
