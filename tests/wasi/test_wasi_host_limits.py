"""A guest cannot hurt its host through WASI (issue 14): huge integer arguments give an
errno, poll_oneoff's host work does not grow with the guest's subscription count and obeys
the stop signal, a guest's descriptors are capped, and preopens that name one host directory
twice cannot defeat ``:ro`` (program: host_limits.c, and in-process calls)."""

from __future__ import annotations

import ctypes
import os
import struct
import threading
import tracemalloc

import pytest
from _support import run_ours

from foglayer.wasi import (
    DEFAULT_MAX_FDS,
    Errno,
    GuestMemory,
    Interrupted,
    Preopen,
    PreopenError,
    Wasi,
    abi,
)

EINVAL, EFBIG, EMFILE = int(Errno.INVAL), int(Errno.FBIG), int(Errno.MFILE)


def test_huge_offsets_to_fd_advise_and_fd_allocate_give_an_errno(build, tmp_path):
    run = run_ours(build("host_limits"), ["offsets", "/d"], [(tmp_path, "/d", False)])
    assert run.code == 0, run.describe()
    assert f"fd_advise offset 2^63 -> {EINVAL}" in run.lines
    assert f"fd_advise len 2^64-1 -> {EINVAL}" in run.lines
    assert f"fd_allocate offset 2^63 -> {EINVAL}" in run.lines
    assert f"fd_allocate len 2^64-1 -> {EINVAL}" in run.lines
    assert f"fd_allocate 2^63-1 + 1 -> {EFBIG}" in run.lines
    assert f"fd_filestat_set_times 2^64-1 -> {EINVAL}" in run.lines
    assert "still running: yes" in run.lines


def test_a_guest_opening_20000_files_gets_emfile_at_its_cap(build, tmp_path):
    run = run_ours(build("host_limits"), ["fds", "/d", "20000"], [(tmp_path, "/d", False)])
    assert run.code == 0, run.describe()
    # stdio and the preopen count against the cap
    assert f"opened {DEFAULT_MAX_FDS - 4}, then errno {EMFILE}" in run.lines, run.describe()
    assert "after one close, open again -> ok" in run.lines


class _Guest:
    """A Wasi with a block of guest memory, for calling WASI functions in-process."""

    def __init__(self, wasi: Wasi, size: int) -> None:
        self.wasi, self.size = wasi, size
        self.buf = (ctypes.c_ubyte * size)()
        wasi.attach_memory(GuestMemory(ctypes.addressof(self.buf), lambda: size))
        self.calls = wasi.host_functions()
        self.view = memoryview(self.buf).cast("B")

    def put(self, ptr: int, data: bytes) -> None:
        self.view[ptr:ptr + len(data)] = data

    def u32(self, ptr: int) -> int:
        return struct.unpack_from("<I", self.view, ptr)[0]

    def open(self, dirfd: int, name: bytes, oflags: int = 0, rights: int = abi.R.FD_READ) -> tuple[int, int]:
        self.put(64, name)
        err = self.calls["path_open"](dirfd, 0, 64, len(name), oflags, rights, 0, 0, 8)
        return err, self.u32(8)


def test_host_can_still_open_files_while_a_guest_holds_its_cap(tmp_path):
    (tmp_path / "f").write_bytes(b"x")
    wasi = Wasi.create(["g"], {}, [Preopen(str(tmp_path), "/d")], max_fds=64)
    g = _Guest(wasi, 4096)
    try:
        errs = [g.open(3, b"f")[0] for _ in range(20000)]
        assert errs[:60] == [0] * 60  # 64 minus stdio and the preopen
        assert set(errs[60:]) == {EMFILE}
        assert len(wasi.fds) == 64
        fd = os.open(tmp_path / "f", os.O_RDONLY)  # the host is not out of descriptors
        os.close(fd)
    finally:
        wasi.close()


_SUB = struct.Struct("<QB7xIxxxxQQH6x")


def _poll_guest(n: int) -> _Guest:
    g = _Guest(Wasi.create(["g"]), 64 + 48 * n + 32 * n)
    subs = bytearray(48 * n)
    for i in range(n):  # fd_read on descriptors that do not exist: every one is an event
        _SUB.pack_into(subs, 48 * i, i, abi.EVENT_FD_READ, 1000 + i, 0, 0, 0)
    g.put(64, bytes(subs))
    return g


def test_poll_host_memory_does_not_grow_with_the_subscription_count():
    n = 40_000
    g = _poll_guest(n)
    out = 64 + 48 * n
    tracemalloc.start()
    try:
        err = g.calls["poll_oneoff"](64, out, n, 0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    g.wasi.close()
    assert err == 0 and g.u32(0) == n
    assert struct.unpack_from("<QH", g.view, out + 32 * (n - 1)) == (n - 1, int(Errno.BADF))
    # A list of events or subscriptions would take several MB here; streaming takes ~2 KB.
    assert peak < 1 << 20, f"poll_oneoff held {peak} bytes of Python objects for {n} subscriptions"


class _Stop:
    """The runtime's side of ``Wasi.interrupt``: a pipe that becomes readable on stop."""

    def __init__(self) -> None:
        self.r, self.w = os.pipe()

    def fileno(self) -> int:
        return self.r

    def remaining(self) -> float | None:
        return None

    def stop(self) -> None:
        os.write(self.w, b"x")

    def close(self) -> None:
        os.close(self.r)
        os.close(self.w)


def test_poll_over_many_subscriptions_ends_when_the_instance_is_stopped():
    g = _poll_guest(50_000)
    stop = _Stop()
    g.wasi.interrupt = stop
    stop.stop()
    try:
        with pytest.raises(Interrupted):
            g.calls["poll_oneoff"](64, 64 + 48 * 50_000, 50_000, 0)
    finally:
        stop.close()
        g.wasi.close()


def test_a_guest_sleeping_in_poll_wakes_when_the_instance_is_stopped():
    g = _Guest(Wasi.create(["g"]), 4096)
    _SUB.pack_into(g.view, 64, 7, abi.EVENT_CLOCK, abi.CLOCK_MONOTONIC, 600 * 10**9, 0, 0)
    stop = _Stop()
    g.wasi.interrupt = stop
    outcome: list[object] = []

    def sleep() -> None:
        try:
            outcome.append(g.calls["poll_oneoff"](64, 256, 1, 0))
        except Interrupted as e:
            outcome.append(e)

    t = threading.Thread(target=sleep, daemon=True)
    t.start()
    t.join(0.2)
    assert t.is_alive()  # asleep for its 10 minutes
    stop.stop()
    t.join(60)
    try:
        assert not t.is_alive(), "the sleeping guest did not wake on the stop signal"
        assert isinstance(outcome[0], Interrupted)
    finally:
        stop.close()
        g.wasi.close()


def test_two_preopens_with_one_guest_name_are_refused(tmp_path):
    with pytest.raises(PreopenError, match="given twice"):
        Wasi.create(["g"], {}, [Preopen(str(tmp_path), "/a/b", readonly=True),
                                Preopen(str(tmp_path), "//a//b//")])


def test_one_host_dir_under_two_names_is_read_only_if_either_is(tmp_path):
    wasi = Wasi.create(["g"], {}, [Preopen(str(tmp_path), "/a/b", readonly=True),
                                   Preopen(str(tmp_path), "/a_b")])
    g = _Guest(wasi, 4096)
    try:
        assert [p.readonly for p in wasi.state.preopens] == [True, True]
        for dirfd in (3, 4):
            err, _ = g.open(dirfd, b"new.txt", abi.O_CREAT, abi.R.FD_WRITE)
            assert err == int(Errno.PERM)
        assert not (tmp_path / "new.txt").exists()
    finally:
        wasi.close()


def test_guest_names_are_normalised(tmp_path):
    wasi = Wasi.create(["g"], {}, [Preopen(str(tmp_path), "//a//b//")])
    try:
        assert wasi.state.preopens[0].guest == "/a/b"
        assert wasi.fds[3].preopen == "/a/b"
    finally:
        wasi.close()


def test_runtime_limits_set_the_descriptor_cap(build, tmp_path):
    from foglayer.runtime import Limits, run

    out = tmp_path / "out"
    with open(out, "wb") as f:
        result = run(str(build("host_limits")), ["fds", "/d", "100"],
                     preopens=[Preopen(str(tmp_path), "/d")], limits=Limits(max_fds=16),
                     stdio=(0, f.fileno(), 2))
    assert result.exit_code == 0
    assert f"opened 12, then errno {EMFILE}" in out.read_text()
