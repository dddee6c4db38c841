"""poll_oneoff: clocks, file readiness, errors; poll()/nanosleep/usleep/clock_nanosleep on
top (program: poll.c)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def out(program_run):
    return program_run("poll")


def test_exits_zero(out):
    assert out.run.code == 0, out.run.describe()


def test_poll_oneoff_clocks(out):
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
        "poll_oneoff clocks 400ms+10ms -> 0 nevents=1 {ud=2 type=clock err=0}",
        "  returned before the 400ms clock: yes",
    )


def test_poll_oneoff_files(out):
    out.expect(
        "poll_oneoff fd_read file + 5s clock -> 0 nevents=1 {ud=100 type=fd_read err=0 nbytes>0=yes}",
        "  returned without waiting for the clock: yes",
        "poll_oneoff fd_write file + 5s clock -> 0 nevents=1 {ud=200 type=fd_write err=0}",
        "poll_oneoff fd_write stdout -> 0 nevents=1 ud=300 type=fd_write err=0",
    )


def test_poll_oneoff_no_subscriptions(out):
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


def test_poll_oneoff_bad_fd(quirks):
    """Spec: EBADF in that subscription's event. wasmtime fails the call with EBADF. Either
    way, it does not wait for the 5 s clock."""
    assert quirks.line("poll_oneoff fd_read closed fd + 5s clock -> ") in (
        "poll_oneoff fd_read closed fd + 5s clock -> 0 nevents=1 {ud=400 type=fd_read err=8}",
        "poll_oneoff fd_read closed fd + 5s clock -> 8 nevents=0",
    )
    quirks.expect("  returned without waiting for the clock: yes")
