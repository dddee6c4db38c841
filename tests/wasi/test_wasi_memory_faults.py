"""Out-of-bounds guest pointers handed to WASI calls (program: memory_faults.c).

The call must fail with EFAULT (21) or trap (wasmtime traps); it must never crash the
runtime (no Python traceback), hang, or write outside linear memory."""

from __future__ import annotations

import pytest
from _support import TRAP_EXIT, run_program

CASES = [
    "fd_write-iovs", "fd_write-buf", "fd_write-result", "fd_write-huge-count", "fd_read-buf",
    "random_get", "random_get-wrap", "clock_time_get", "args_sizes_get", "args_get",
    "environ_get", "path_open-path", "path_open-result", "path_filestat_get",
    "fd_filestat_get", "fd_prestat_dir_name", "fd_readdir", "poll_oneoff", "path_readlink",
]


@pytest.mark.parametrize("case", CASES)
def test_out_of_bounds_pointer_is_efault_or_trap(runtime_name, tmp_path, case):
    o = run_program(runtime_name, "memory_faults", [case], tmp_path)
    run = o.run
    assert "Traceback" not in run.stderr, run.describe()
    assert o.lines and o.lines[0] == f"case {case}", run.describe()
    if run.code == TRAP_EXIT:
        assert not [ln for ln in o.lines if ln.startswith("result")], run.describe()
        return
    assert run.code == 0, run.describe()
    result = o.line("result ")
    allowed = {"result 21"}
    if case == "fd_write-huge-count":  # the iovec array itself is absurd: also EINVAL/ENOMEM/EOVERFLOW
        allowed |= {"result 28", "result 48", "result 61"}
    assert result in allowed, run.describe()
    assert (o.world.sandbox / "hello.txt").read_bytes() == b"hello world"
