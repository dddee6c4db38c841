"""WASI calls of the process: args, environment, clocks, random, sched_yield, proc_*."""

from __future__ import annotations

import os
import time

from foglayer.wasi import abi
from foglayer.wasi._core import U64, ProcExit, WasiCore, monotonic_ns, time_ns
from foglayer.wasi.abi import E


class ProcCalls(WasiCore):
    """args_*, environ_*, clock_*, random_get, sched_yield, proc_exit, proc_raise."""

    # -- args, environment --------------------------------------------------------------

    def args_get(self, argv: int, buf: int) -> int:
        return self._strings(self._argv(), argv, buf)

    def args_sizes_get(self, count: int, size: int) -> int:
        return self._sizes(self._argv(), count, size)

    def environ_get(self, environ: int, buf: int) -> int:
        return self._strings(self._environ(), environ, buf)

    def environ_sizes_get(self, count: int, size: int) -> int:
        return self._sizes(self._environ(), count, size)

    # -- clocks, random, scheduling -----------------------------------------------------

    def clock_res_get(self, clock_id: int, out: int) -> int:
        if clock_id > abi.CLOCK_THREAD_CPUTIME:
            return E.INVAL
        return self._put_u64(out, 1)

    def clock_time_get(self, clock_id: int, precision: int, out: int) -> int:
        if clock_id > abi.CLOCK_THREAD_CPUTIME:
            return E.INVAL
        # _put_u64, inlined: this is the hottest call of all (a method call costs ~60 ns).
        # The result is written twice: the first write to a fresh stack page faults (5-10 µs
        # here), which must come before the clock is read, not between its reading and the
        # guest's (a guest timing a short stretch would see it).
        mem = self.mem
        if out + 8 > mem.size and not mem.check(out, 8):
            return E.FAULT
        aligned = not out & 7
        if aligned:
            mem.v64[out >> 3] = 0
        else:
            U64.pack_into(mem.view, out, 0)
        if clock_id == 1:  # monotonic, the hot one
            now = monotonic_ns() + self.state.monotonic_offset_ns
        elif clock_id == abi.CLOCK_REALTIME:
            now = time_ns()
        elif clock_id == abi.CLOCK_PROCESS_CPUTIME:
            now = time.process_time_ns()
        else:
            now = time.thread_time_ns()
        if aligned:
            mem.v64[out >> 3] = now
        else:
            U64.pack_into(mem.view, out, now)
        return 0

    def random_get(self, buf: int, length: int) -> int:
        mem = self.mem
        if not mem.check(buf, length):
            return E.FAULT
        view = mem.view
        done = 0
        while done < length:
            chunk = min(length - done, 1 << 20)
            view[buf + done:buf + done + chunk] = os.urandom(chunk)
            done += chunk
        return 0

    def sched_yield(self) -> int:
        os.sched_yield()
        return 0

    def proc_exit(self, code: int) -> int:
        self.state.exit_code = code
        raise ProcExit(code)

    def proc_raise(self, sig: int) -> int:
        return E.NOTSUP  # as wasmtime: signals do not exist in the sandbox

