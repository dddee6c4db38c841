"""clock_res_get, clock_time_get, random_get, sched_yield (program: clocks_random_sched.c)."""

from __future__ import annotations

import pytest
from _support import TRAP_EXIT


@pytest.fixture(scope="module")
def out(program_run):
    return program_run("clocks_random_sched")


def test_clock_random_sched_program_runs_every_check_to_exit_0(out):
    assert out.run.code == 0, out.run.describe()


def test_clock_resolutions_are_positive_and_at_most_a_second(out):
    out.expect(
        "clock_res_get realtime -> 0 res>0: yes res<=1s: yes",
        "clock_res_get monotonic -> 0 res>0: yes res<=1s: yes",
        "clock_getres monotonic -> 0 positive: yes",
    )


def test_realtime_clock_is_plausible_and_advances(out):
    out.expect(
        "clock_time_get realtime -> 0 nonzero: yes",
        "realtime after 2020: yes",
        "realtime before 2200: yes",
        "clock_gettime realtime -> 0, agrees with raw within 5s: yes",
        "time() agrees with clock_gettime within 5s: yes",
        "tv_nsec in range: yes",
        "realtime advanced during wait: yes",
    )


def test_monotonic_clock_never_goes_back_and_sleeps_as_long_as_asked(out):
    out.expect(
        "clock_time_get monotonic -> 0 nonzero: yes",
        "monotonic non-decreasing: yes",
        "monotonic advanced >= 20ms: yes",
        "nanosleep 5ms -> 0 slept >= 5ms: yes",
    )


def test_random_bytes_differ_fill_exactly_and_look_uniform(out):
    out.expect(
        "random_get 32 -> 0",
        "random 32 bytes not all zero: yes",
        "two random draws differ: yes",
        "random_get 0 bytes -> 0",
        "random_get 0 bytes left buffer alone: yes",
        "random_get 4 bytes left byte 4..7 alone: yes",
        "random_get 65536 -> 0",
        "random 64KiB roughly uniform: yes",
        "getentropy 16 -> 0 not all zero: yes",
        "getentropy 257 -> -1 errno=29",  # wasi-libc's own limit (EIO), no WASI call
    )


def test_sched_yield_succeeds_raw_and_through_libc(out):
    out.expect("sched_yield raw -> 0", "sched_yield libc -> 0")


def test_cputime_clocks_supported_or_refused(program_run):
    """Optional clocks: either they work, or they are refused with an errno (wasmtime: EBADF)."""
    o = program_run("clocks_random_sched", "cputime")
    assert o.run.code == 0, o.run.describe()
    for clock in ("process_cputime", "thread_cputime"):
        for fn in ("clock_res_get", "clock_time_get"):
            ln = o.line(f"{fn} {clock} -> ")
            if fn == "clock_res_get":
                assert ln in (f"{fn} {clock} -> 0 res>0: yes res<=1s: yes",
                              f"{fn} {clock} -> 8", f"{fn} {clock} -> 28", f"{fn} {clock} -> 58"), ln
            else:
                assert ln in (f"{fn} {clock} -> 0 nonzero: yes",
                              f"{fn} {clock} -> 8", f"{fn} {clock} -> 28", f"{fn} {clock} -> 58"), ln
    if o.line("clock_time_get process_cputime -> ").endswith("-> 0 nonzero: yes"):
        o.expect("process_cputime advances with work: yes")


def test_invalid_clock_id_is_einval_or_a_trap(program_run):
    """Spec: EINVAL (28). wasmtime traps instead (an invalid enum value): accepted, not hidden."""
    o = program_run("clocks_random_sched", "invalid-clock")
    if o.run.code == TRAP_EXIT:
        assert o.lines == [], o.run.describe()
    else:
        assert o.run.code == 0
        o.expect("clock_res_get invalid id 99 -> 28", "clock_time_get invalid id 99 -> 28")
