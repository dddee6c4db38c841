"""proc_exit (exit_code.c) and proc_raise (raise.c)."""

from __future__ import annotations

import pytest
from _support import TRAP_EXIT, run_program


@pytest.mark.parametrize(
    ("mode", "code"),
    [("exit", 0), ("exit", 1), ("exit", 42), ("exit", 125), ("raw", 0), ("raw", 7),
     ("return", 0), ("return", 3)],
)
def test_proc_exit_code(runtime_name, tmp_path, mode, code):
    o = run_program(runtime_name, "exit_code", [mode, str(code)], tmp_path)
    assert o.run.code == code, o.run.describe()
    expected = [f"mode={mode} code={code}"]
    if mode == "exit":
        expected.append("this line is buffered and must be flushed by exit()")
    if mode != "raw":
        expected.append("atexit handler ran")  # libc's exit path runs; raw proc_exit skips it
    assert o.lines == expected, o.run.describe()


@pytest.mark.parametrize(("mode", "code"), [("exit", 126), ("raw", 255), ("raw", 300)])
def test_proc_exit_code_out_of_range(runtime_name, tmp_path, mode, code):
    """WASI puts no bound on the code; wasmtime refuses >= 126 and traps. Accept the code
    (mod 256, as a host process can only report that) or a trap."""
    o = run_program(runtime_name, "exit_code", [mode, str(code)], tmp_path)
    assert o.run.code in (code & 0xFF, TRAP_EXIT), o.run.describe()
    assert o.lines[0] == f"mode={mode} code={code}"


def test_proc_raise_is_refused_and_returns(runtime_name, tmp_path):
    """proc_raise is not supported by either runtime: every valid signal returns an errno
    (wasmtime ENOTSUP 58; ENOSYS 52 is as good) and the program keeps running."""
    o = run_program(runtime_name, "raise", ["all"], tmp_path)
    assert o.run.code == 0, o.run.describe()
    results = [ln for ln in o.lines if ln.startswith("proc_raise(")]
    assert len(results) == 31
    errnos = {ln.rsplit(" ", 1)[1] for ln in results}
    assert len(errnos) == 1 and errnos <= {"58", "52"}, results
    assert o.lines[-1] == "still running after proc_raise"


def test_proc_raise_invalid_signal(runtime_name, tmp_path):
    """An out-of-enum signal: wasmtime traps; an errno return is accepted too."""
    o = run_program(runtime_name, "raise", ["99"], tmp_path)
    if o.run.code == TRAP_EXIT:
        assert o.lines == ["calling proc_raise(99)"]
    else:
        assert o.run.code == 0, o.run.describe()
        assert o.lines[1] in ("proc_raise(99) returned 28", "proc_raise(99) returned 52",
                              "proc_raise(99) returned 58")
