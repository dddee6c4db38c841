"""poll_oneoff: clocks, file readiness, errors; poll()/nanosleep/usleep/clock_nanosleep on
top (program: poll.c)."""

from __future__ import annotations

import subprocess

import pytest
from _support import RUNNERS, _fog_cmd, make_world


@pytest.fixture(scope="module")
def out(program_run):
    return program_run("poll")


def test_poll_program_runs_every_check_to_exit_0(out):
    assert out.run.code == 0, out.run.describe()


def test_poll_waits_for_relative_and_absolute_clocks(out):
    out.expect(
        "poll_oneoff monotonic relative 30ms -> 0 nevents=1 {ud=42 type=clock err=0}",
        "  waited >= 30ms: yes, < 2s: yes",
        "poll_oneoff monotonic absolute now+25ms -> 0 nevents=1 {ud=7 type=clock err=0}",
        "  waited until deadline: yes",
        "poll_oneoff monotonic absolute in the past -> 0 nevents=1 {ud=8 type=clock err=0}",
        "  returned within 1s: yes",
        "poll_oneoff realtime relative 15ms -> 0 nevents=1 {ud=9 type=clock err=0}",
        "  waited >= 15ms: yes",
        "poll_oneoff relative 0 -> 0 nevents=1 {ud=10 type=clock err=0}",
        "poll_oneoff clocks 3s+10ms -> 0 nevents=1 {ud=2 type=clock err=0}",
        "  returned before the 3s clock: yes",
    )


def test_poll_on_files_returns_at_once(out):
    out.expect(
        "poll_oneoff fd_read file + 5s clock -> 0 nevents=1 {ud=100 type=fd_read err=0 nbytes>0=yes}",
        "  returned without waiting for the clock: yes",
        "poll_oneoff fd_write file + 5s clock -> 0 nevents=1 {ud=200 type=fd_write err=0}",
        "poll_oneoff fd_write stdout -> 0 nevents=1 ud=300 type=fd_write err=0",
    )


def test_poll_with_no_subscriptions_is_einval(out):
    out.expect("poll_oneoff 0 subscriptions -> 28")


def test_libc_poll_and_sleeps(out):
    out.expect(
        "poll file POLLIN + fd -1 -> 1 revents: in=yes ignored=yes",
        "poll file POLLOUT -> 1 revents: out=yes",
        "poll no fds 20ms -> 0 waited >= 20ms: yes",
        "nanosleep 12ms -> 0 waited >= 12ms: yes",
        "usleep 8ms -> 0 waited >= 8ms: yes",
        "clock_nanosleep absolute +10ms -> 0 waited >= 10ms: yes",
    )


@pytest.fixture(scope="module")
def quirks(program_run):
    return program_run("poll", "quirks")


def test_poll_oneoff_reports_ready_fds(quirks):
    """Spec: every ready subscription gets an event. wasmtime reports only one of two ready
    files; accepted, but at least one must come back and it must be a ready one."""
    ln = quirks.line("poll_oneoff fd_write file + fd_read file -> ")
    assert ln in (
        "poll_oneoff fd_write file + fd_read file -> 0 nevents=2 {ud=200 type=fd_write err=0}"
        " {ud=201 type=fd_read err=0 nbytes>0=yes}",
        "poll_oneoff fd_write file + fd_read file -> 0 nevents=1 {ud=200 type=fd_write err=0}",
        "poll_oneoff fd_write file + fd_read file -> 0 nevents=1 {ud=201 type=fd_read err=0 nbytes>0=yes}",
    ), ln
    assert quirks.line("poll file POLLIN + file POLLOUT -> ") in (
        "poll file POLLIN + file POLLOUT -> 2 revents: in=yes out=yes",
        "poll file POLLIN + file POLLOUT -> 1 revents: in=no out=yes",
        "poll file POLLIN + file POLLOUT -> 1 revents: in=yes out=no",
    )


def test_poll_on_a_closed_fd_is_ebadf_without_waiting(quirks):
    """Spec: EBADF in that subscription's event. wasmtime fails the call with EBADF. Either
    way, it does not wait for the 5 s clock."""
    assert quirks.line("poll_oneoff fd_read closed fd + 5s clock -> ") in (
        "poll_oneoff fd_read closed fd + 5s clock -> 0 nevents=1 {ud=400 type=fd_read err=8}",
        "poll_oneoff fd_read closed fd + 5s clock -> 8 nevents=0",
    )
    quirks.expect("  returned without waiting for the clock: yes")


@pytest.mark.parametrize("data", [b"some input\n", None], ids=["data", "eof"])
def test_poll_on_stdin_with_data_returns_at_once(runtime_name, build, tmp_path, data):
    world = make_world(tmp_path / "world")
    run = RUNNERS[runtime_name](build("poll"), ["stdin"], world.dirs, {}, stdin=data)
    assert run.code == 0, run.describe()
    assert run.lines == [
        "poll_oneoff fd_read stdin + 5s clock -> 0 nevents=1 ud=500 type=fd_read err=0",
        "  returned without waiting for the clock: yes",
        f"read stdin after poll -> {len(data or b'')}",
    ]


def test_poll_oneoff_idle_stdin_pipe_times_out(ours, build, tmp_path):
    """fog only (the reference cannot be given a live pipe): stdin is an open pipe that never
    gets data; the clock must fire and the program must finish."""
    world = make_world(tmp_path / "world")
    cmd = [*_fog_cmd(), "run"]
    for host, guest, ro in world.dirs:
        cmd += ["--dir", f"{host}:{guest}" + (":ro" if ro else "")]
    cmd += [str(build("poll")), "stdin-timeout"]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        code = proc.wait(timeout=30)
        stdout = proc.stdout.read().decode()
        stderr = proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdin.close()
        proc.stdout.close()
        proc.stderr.close()
    assert code == 0, stderr
    assert stdout.splitlines() == [
        "poll_oneoff fd_read idle stdin + 300ms clock -> 0 nevents=1 {ud=601 type=clock err=0}",
        "  waited >= 300ms: yes, < 3s: yes",
    ], stderr
