"""Differential test: every program under wasmtime's WASI (reference) and under ``fog run``.

Each side gets its own fresh copy of the same fixture tree; stdout, exit code and the
resulting file tree (names, types, contents, symlink targets; not times) must be identical.

Cases where wasmtime departs from the WASI spec or picks one of several allowed answers are
NOT here (see ``QUIRK_CASES`` and the per-function tests, which accept what the spec allows).
"""

from __future__ import annotations

import difflib

import pytest
from _support import ENV, make_world, run_ref

# (id, program, argv after argv[0]; "{outside}" is replaced by that copy's outside dir)
CASES: list[tuple[str, str, list[str]]] = [
    ("args_env", "args_env", ["one", "two words", "", "ünï", "--flag=x"]),
    ("clocks_random_sched", "clocks_random_sched", []),
    ("fd_io", "fd_io", []),
    ("fd_stat_flags", "fd_stat_flags", []),
    ("readdir", "readdir", []),
    ("paths", "paths", []),
    ("symlinks", "symlinks", []),
    ("poll", "poll", []),
    ("sockets", "sockets", []),
    ("renumber", "renumber", []),
    ("edge_cases", "edge_cases", []),
    ("raise", "raise", ["all"]),
    ("exit_code-exit-0", "exit_code", ["exit", "0"]),
    ("exit_code-exit-1", "exit_code", ["exit", "1"]),
    ("exit_code-exit-42", "exit_code", ["exit", "42"]),
    ("exit_code-exit-125", "exit_code", ["exit", "125"]),
    ("exit_code-raw-7", "exit_code", ["raw", "7"]),
    ("exit_code-raw-0", "exit_code", ["raw", "0"]),
    ("exit_code-return-3", "exit_code", ["return", "3"]),
    ("exit_code-return-0", "exit_code", ["return", "0"]),
    *[
        (f"sandbox-{m}", "sandbox", [m, "{outside}"])
        for m in (
            "dotdot", "dotdot-write", "absolute", "symlink-relative", "symlink-absolute",
            "symlink-loop", "rename-out", "link-out", "readonly", "bad-fds",
        )
    ],
]

# Implementation-defined / wasmtime-specific corners: run by hand or by the per-function
# tests, never compared strictly (wasmtime's answer is given in each program's comment).
QUIRK_CASES: list[tuple[str, str, list[str]]] = [
    ("clocks-cputime", "clocks_random_sched", ["cputime"]),
    ("clocks-invalid-clock", "clocks_random_sched", ["invalid-clock"]),
    ("fd_io-allocate", "fd_io", ["allocate"]),
    ("fd_stat_flags-rights", "fd_stat_flags", ["rights"]),
    ("fd_stat_flags-sync-flags", "fd_stat_flags", ["sync-flags"]),
    ("paths-quirks", "paths", ["quirks"]),
    ("symlinks-quirks", "symlinks", ["quirks"]),
    ("sandbox-link-out-follow", "sandbox", ["link-out-follow", "{outside}"]),
    ("poll-quirks", "poll", ["quirks"]),
    ("exit_code-exit-126", "exit_code", ["exit", "126"]),
    ("exit_code-raw-255", "exit_code", ["raw", "255"]),
    ("raise-invalid", "raise", ["99"]),
    # wasmtime traps on out-of-bounds pointers; EFAULT is the other allowed answer
    *[(f"memory_faults-{c}", "memory_faults", [c]) for c in ("fd_write-iovs", "random_get")],
]


def _args(args: list[str], world) -> list[str]:
    return [a.replace("{outside}", str(world.outside)) for a in args]


def _diff(a: str, b: str) -> str:
    return "".join(
        difflib.unified_diff(
            a.splitlines(True), b.splitlines(True), "wasmtime", "fog", n=2
        )
    )


def _tree_diff(a: dict, b: dict) -> list[str]:
    out = []
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            out.append(f"{k}: wasmtime={a.get(k)!r} fog={b.get(k)!r}")
    return out


@pytest.mark.parametrize(("program", "args"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_same_output_and_exit_code_as_wasmtime(build, ours, tmp_path, program, args):
    wasm = build(program)
    w_ref = make_world(tmp_path / "ref")
    w_ours = make_world(tmp_path / "ours")
    ref = run_ref(wasm, _args(args, w_ref), w_ref.dirs, ENV)
    # the case itself is sane under the reference: expected exit code, no trap, no leak
    expected_code = int(args[1]) if program == "exit_code" else 0
    assert ref.code == expected_code, "reference run:\n" + ref.describe()
    assert "LEAK" not in ref.stdout and "trap" not in ref.stderr, ref.describe()
    got = ours(wasm, _args(args, w_ours), w_ours.dirs, ENV)
    problems = []
    if ref.stdout != got.stdout:
        problems.append("stdout differs:\n" + _diff(ref.stdout, got.stdout))
    if ref.code != got.code:
        problems.append(f"exit code differs: wasmtime={ref.code} fog={got.code}")
    tree = _tree_diff(w_ref.snapshot(), w_ours.snapshot())
    if tree:
        problems.append("file tree differs:\n  " + "\n  ".join(tree))
    if problems:
        problems.append("fog stderr:\n" + got.stderr[-2000:])
    assert not problems, "\n".join(problems)
