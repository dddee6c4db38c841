"""SQLite speedtest1 (32 tests), in memory and on disk: native vs `fog run` vs raw wasmtime."""

from __future__ import annotations

import os
from collections.abc import Sequence

from foglayer.bench._arch import check_arch, host_arch
from foglayer.bench._harness import (
    SUITE_RUNNERS,
    BadOutput,
    Plan,
    Program,
    Sample,
    json_lines,
    require_compiler,
    sample,
)
from foglayer.bench._report import SuiteResult
from foglayer.errors import FogError

TESTS = (100, 110, 120, 130, 140, 142, 145, 150, 160, 161, 170, 180, 190, 200, 210, 230,
         240, 250, 260, 270, 280, 290, 300, 310, 320, 400, 410, 500, 510, 520, 980, 990)
MODES = ("memory", "disk")
DB_NAME = "speedtest1.db"
EMULATED_SIZE = 10  # under emulation: a few minutes for the whole run


def _parse(stdout: str) -> dict[str, Sample]:
    lines = json_lines(stdout)
    done = [o for o in lines if "done" in o]
    tests = [o for o in lines if "test" in o]
    if not done:
        raise BadOutput(f"no 'done' line: the run stopped after {len(tests)} of {len(TESTS)} tests")
    if done[-1].get("done") != len(TESTS) or len(tests) != len(TESTS):
        raise BadOutput(f"{len(tests)} tests ran, 'done' says {done[-1].get('done')}: "
                        f"expected {len(TESTS)}")
    out = {}
    for obj in tests:
        s = sample(obj, "check")
        out[str(obj["test"])] = Sample(s.time_s, s.check, str(obj.get("name", "")))
    missing = [t for t in TESTS if str(t) not in out]
    if missing:
        raise BadOutput(f"tests missing from the output: {missing}")
    return out


def programs(size: int, modes: Sequence[str]) -> list[Program]:
    from foglayer.bench.speedtest1 import SOURCE, SQLITE_DEFINES, amalgamation_dir

    d = amalgamation_dir()
    out = []
    for mode in modes:
        args = ["--size", str(size)]
        if mode == "disk":
            args += ["--disk", "{data}/" + DB_NAME]
        out.append(Program(
            name=f"speedtest1-{mode}", sources=(SOURCE, d / "sqlite3.c"),
            flags=(f"-I{d}", *SQLITE_DEFINES), parse=_parse, rows=tuple(map(str, TESTS)),
            group="in-memory" if mode == "memory" else "on disk", args=tuple(args),
            deps=(d / "sqlite3.h",), fresh_workdir=mode == "disk"))
    return out


def speedtest(size: int | None = None, runs: int | None = None,
              modes: Sequence[str] = ("memory",), *, arch: str | None = None,
              out: str | os.PathLike | None = None, write: bool = True, progress: bool = True,
              runners: Sequence[str] | None = None, timeout: float = 1800.0) -> SuiteResult:
    """Run speedtest1 at ``size`` in each of ``modes`` ("memory", "disk"), interleaved, on
    ``arch`` (this host's by default; ``aarch64`` on x86-64: emulated, size 10 and 3 runs
    unless given)."""
    from foglayer.bench._suite import resolve_arch, run_suite
    from foglayer.bench.speedtest1 import sqlite_version

    target = check_arch(arch)
    emulated = target != host_arch()
    size = size if size is not None else EMULATED_SIZE if emulated else 100
    runs = runs if runs is not None else 3 if emulated else 5
    if size < 1:
        raise FogError(f"--size {size}: must be at least 1")
    if runs < 1:
        raise FogError(f"--runs {runs}: must be at least 1")
    for m in modes:
        if m not in MODES:
            raise FogError(f"unknown speedtest mode {m!r}: expected memory or disk")
    require_compiler()
    progs = programs(size, modes)  # fetches SQLite on first use (a one-line error without npm)
    machine, runners = resolve_arch(target, runners or (*SUITE_RUNNERS, "fog-python"))
    plan = Plan(progs, runners=runners, runs=runs, timeout=timeout,
                wasmtime_settings="default", progress=progress, machine=machine)
    from foglayer.bench.speedtest1 import SQLITE_DEFINES

    notes = [f"SQLite built with {' '.join(SQLITE_DEFINES)} on both sides"]
    if "disk" in modes:
        notes.append("on disk: a fresh directory per run (in the system temp dir), preopened as "
                     "/data for Wasm")
    return run_suite("speedtest", f"speedtest1 --size {size}" + machine.title,
                     {"size": size, "modes": list(modes), "row_label": "test",
                      "arch": machine.arch}, plan, out=out,
                     write=write, extra_env={"sqlite": sqlite_version()}, notes=notes)
