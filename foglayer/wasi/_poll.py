"""poll_oneoff: clocks and descriptor readiness."""

from __future__ import annotations

import os

from foglayer.wasi import abi
from foglayer.wasi._core import EVENT, SUBSCRIPTION, U32, WasiCore, monotonic_ns, time_ns
from foglayer.wasi._core import wait as wait_for
from foglayer.wasi.abi import E


class PollCalls(WasiCore):
    """poll_oneoff."""

    # -- poll ---------------------------------------------------------------------------

    def poll_oneoff(self, in_ptr: int, out_ptr: int, nsubs: int, nevents: int) -> int:
        if nsubs == 0:
            return E.INVAL
        mem = self.mem
        if not mem.check(in_ptr, 48 * nsubs) or not mem.check(out_ptr, 32 * nsubs):
            return E.FAULT
        now = monotonic_ns() + self.state.monotonic_offset_ns
        events: list[tuple] = []
        deadline: int | None = None
        clocks: list[tuple[int, int]] = []
        readers: dict[int, list[int]] = {}
        writers: dict[int, list[int]] = {}
        for i in range(nsubs):
            userdata, tag, ident, timeout, _prec, flags = SUBSCRIPTION.unpack_from(mem.view, in_ptr + 48 * i)
            if tag == abi.EVENT_CLOCK:
                if ident == abi.CLOCK_REALTIME:
                    base = time_ns() if flags & abi.SUBCLOCK_ABSTIME else 0
                    due = now + max(0, timeout - base) if flags & abi.SUBCLOCK_ABSTIME else now + timeout
                elif ident == abi.CLOCK_MONOTONIC:
                    due = timeout if flags & abi.SUBCLOCK_ABSTIME else now + timeout
                else:
                    events.append((userdata, E.INVAL, tag, 0, 0))
                    continue
                clocks.append((userdata, due))
                deadline = due if deadline is None else min(deadline, due)
            elif tag in (abi.EVENT_FD_READ, abi.EVENT_FD_WRITE):
                d = self.fds.get(ident)
                if d is None:
                    events.append((userdata, E.BADF, tag, 0, 0))
                elif d.kind == abi.FT_REG:
                    # Regular files are always ready: report what is left to read.
                    nbytes = 0
                    if tag == abi.EVENT_FD_READ:
                        try:
                            st = os.fstat(d.host_fd)
                            nbytes = max(0, st.st_size - os.lseek(d.host_fd, 0, os.SEEK_CUR))
                        except OSError:
                            nbytes = 0
                    events.append((userdata, 0, tag, nbytes, 0))
                else:
                    (readers if tag == abi.EVENT_FD_READ else writers).setdefault(
                        d.host_fd, []).append(userdata)
            else:
                events.append((userdata, E.INVAL, tag, 0, 0))
        if not events and (readers or writers or deadline is not None):
            wait = None if deadline is None else max(0, deadline - now) / 1e9
            if readers or writers or wait:
                try:
                    r, w = wait_for(self.interrupt, list(readers), list(writers), wait)
                except OSError as e:
                    return abi.from_oserror(e)
                for hfd in r:
                    for ud in readers[hfd]:
                        events.append((ud, 0, abi.EVENT_FD_READ, _readable_bytes(hfd), 0))
                for hfd in w:
                    for ud in writers[hfd]:
                        events.append((ud, 0, abi.EVENT_FD_WRITE, 0, 0))
        if deadline is not None:
            now = monotonic_ns() + self.state.monotonic_offset_ns
            events.extend((ud, 0, abi.EVENT_CLOCK, 0, 0) for ud, due in clocks if due <= now)
        view = mem.view
        for i, ev in enumerate(events):
            EVENT.pack_into(view, out_ptr + 32 * i, *ev)
        return self._put_u32(nevents, len(events))


def _readable_bytes(hfd: int) -> int:
    import fcntl
    import termios

    try:
        buf = fcntl.ioctl(hfd, termios.FIONREAD, b"\0\0\0\0")
        return U32.unpack(buf)[0]
    except OSError:
        return 0

