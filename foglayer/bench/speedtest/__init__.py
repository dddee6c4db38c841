"""SQLite's speedtest1 "main" test set as one C program, for native vs Wasm comparisons.

``SOURCE`` is built together with the pinned amalgamation (:func:`amalgamation_dir`) and
``SQLITE_DEFINES``; the same defines go into the native and the wasm32-wasi build.
"""

from __future__ import annotations

from pathlib import Path

from foglayer.bench.speedtest._sqlite import VERSION, amalgamation_dir, sqlite_version

SOURCE = Path(__file__).with_name("speedtest1.c")

# Identical for native and wasm32-wasi, so both run the same SQLite code:
SQLITE_DEFINES = (
    "-DSQLITE_THREADSAFE=0",  # wasm32-wasi has no threads; no mutexes on either side
    "-DSQLITE_OMIT_LOAD_EXTENSION",  # no dlopen in WASI
)

__all__ = ["SOURCE", "SQLITE_DEFINES", "VERSION", "amalgamation_dir", "sqlite_version"]
