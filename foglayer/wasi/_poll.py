"""poll_oneoff: clocks and descriptor readiness.

The host's work is bounded by what the guest owns, never by its arguments alone: the
subscriptions are read from guest memory in chunks, twice (what to wait for, then the
events, written straight back), so no host list grows with their number; what is kept
between the passes is one entry per distinct host descriptor (at most the descriptor cap).
Between chunks and while waiting, the call obeys ``Wasi.interrupt`` (stop and deadline).
"""

from __future__ import annotations

import os
import select
from collections.abc import Iterator

from foglayer.wasi import abi
from foglayer.wasi._core import (
    EVENT,
    SUBSCRIPTION,
    U32,
    WasiCore,
    check_interrupt,
    monotonic_ns,
    time_ns,
)
from foglayer.wasi._core import wait as wait_for
from foglayer.wasi.abi import E

_CHUNK = 4096  # subscriptions read per step; the interrupt is checked between steps
_MAX_WAIT = 3600.0  # seconds per select: a far-off clock is waited for in steps


class PollCalls(WasiCore):
    """poll_oneoff."""

    def poll_oneoff(self, in_ptr: int, out_ptr: int, nsubs: int, nevents: int) -> int:
        if nsubs == 0:
            return E.INVAL
        mem = self.mem
        if not mem.check(in_ptr, 48 * nsubs) or not mem.check(out_ptr, 32 * nsubs):
            return E.FAULT
        # One time base for both passes, so that a relative clock is due at one instant.
        start, real = monotonic_ns() + self.state.monotonic_offset_ns, time_ns()
        deadline: int | None = None
        ready = False  # an event that needs no waiting (an error, a regular file, a clock at 0)
        readers: set[int] = set()
        writers: set[int] = set()
        for _ud, tag, ident, timeout, _prec, flags in self._subscriptions(in_ptr, nsubs):
            if tag == abi.EVENT_CLOCK:
                due = _due(ident, timeout, flags, start, real)
                if due is None or due <= start:
                    ready = True
                else:
                    deadline = due if deadline is None else min(deadline, due)
            elif tag == abi.EVENT_FD_READ or tag == abi.EVENT_FD_WRITE:
                d = self.fds.get(ident)
                if d is None or d.kind == abi.FT_REG:
                    ready = True
                else:
                    (readers if tag == abi.EVENT_FD_READ else writers).add(d.host_fd)
            else:
                ready = True
        r, w = self._ready(readers, writers, None if ready else deadline, ready)
        n = 0
        view = mem.view
        now = monotonic_ns() + self.state.monotonic_offset_ns
        for ud, tag, ident, timeout, _prec, flags in self._subscriptions(in_ptr, nsubs):
            if tag == abi.EVENT_CLOCK:
                due = _due(ident, timeout, flags, start, real)
                if due is None:
                    event = (ud, E.INVAL, tag, 0, 0)
                elif due <= now:
                    event = (ud, 0, tag, 0, 0)
                else:
                    continue
            elif tag == abi.EVENT_FD_READ or tag == abi.EVENT_FD_WRITE:
                d = self.fds.get(ident)
                if d is None:
                    event = (ud, E.BADF, tag, 0, 0)
                elif d.kind == abi.FT_REG:
                    event = (ud, 0, tag, _left_to_read(d.host_fd) if tag == abi.EVENT_FD_READ else 0, 0)
                elif tag == abi.EVENT_FD_READ and d.host_fd in r:
                    event = (ud, 0, tag, _readable_bytes(d.host_fd), 0)
                elif tag == abi.EVENT_FD_WRITE and d.host_fd in w:
                    event = (ud, 0, tag, 0, 0)
                else:
                    continue
            else:
                event = (ud, E.INVAL, tag, 0, 0)
            EVENT.pack_into(view, out_ptr + 32 * n, *event)
            n += 1
        return self._put_u32(nevents, n)

    def _subscriptions(self, ptr: int, n: int) -> Iterator[tuple[int, int, int, int, int, int]]:
        """The guest's subscriptions, unpacked one chunk at a time."""
        view = self.mem.view
        for start in range(0, n, _CHUNK):
            if start:
                check_interrupt(self.interrupt)
            base = ptr + 48 * start
            yield from SUBSCRIPTION.iter_unpack(view[base:base + 48 * min(_CHUNK, n - start)])

    def _ready(self, readers: set[int], writers: set[int], deadline: int | None,
               now_ready: bool) -> tuple[list[int] | tuple, list[int] | tuple]:
        """The descriptors ready for reading and for writing: right now if an event is
        already there, else once one is or the deadline (monotonic ns) passes."""
        if now_ready:
            if not readers and not writers:
                return (), ()
            r, w, _ = select.select(list(readers), list(writers), [], 0)
            return r, w
        while True:
            wait = None
            if deadline is not None:
                left = deadline - (monotonic_ns() + self.state.monotonic_offset_ns)
                wait = min(max(0, left) / 1e9, _MAX_WAIT)
            r, w = wait_for(self.interrupt, list(readers), list(writers), wait)
            if r or w or deadline is None or wait is None or wait < _MAX_WAIT:
                return r, w


def _due(clock: int, timeout: int, flags: int, now: int, real: int) -> int | None:
    """When a clock subscription fires, on the monotonic clock; None for a bad clock."""
    if clock == abi.CLOCK_MONOTONIC:
        return timeout if flags & abi.SUBCLOCK_ABSTIME else now + timeout
    if clock == abi.CLOCK_REALTIME:
        return now + max(0, timeout - real) if flags & abi.SUBCLOCK_ABSTIME else now + timeout
    return None


def _left_to_read(hfd: int) -> int:
    """A regular file is always ready; for reading, report what is left."""
    try:
        return max(0, os.fstat(hfd).st_size - os.lseek(hfd, 0, os.SEEK_CUR))
    except OSError:
        return 0


def _readable_bytes(hfd: int) -> int:
    import fcntl
    import termios

    try:
        buf = fcntl.ioctl(hfd, termios.FIONREAD, b"\0\0\0\0")
        return U32.unpack(buf)[0]
    except OSError:
        return 0
