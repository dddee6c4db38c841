"""The call table (``foglayer.wasi.CALLS``) matches the implementation, and the callables
the runtime binds never let a host error out: every argument gives an errno."""

from __future__ import annotations

import ctypes
import inspect
import itertools
import os
import random

import pytest

from foglayer.wasi import (
    CALLS,
    HOT,
    SIGNATURES,
    Errno,
    GuestMemory,
    Preopen,
    ProcExit,
    Rights,
    Wasi,
)


def test_call_table_lists_the_46_calls_once() -> None:
    names = [c.name for c in CALLS]
    assert len(names) == 46
    assert len(set(names)) == 46
    assert set(SIGNATURES) == set(names)
    assert HOT <= set(names)


@pytest.mark.parametrize("call", CALLS, ids=lambda c: c.name)
def test_call_table_matches_the_implementing_method(call) -> None:
    method = getattr(Wasi, call.name, None)
    assert method is not None, f"Wasi has no method {call.name}"
    params = list(inspect.signature(method).parameters)[1:]  # without self
    assert len(params) == len(call.params), (call.name, params, call.params)
    names = {p for p, _ in call.params}
    for fd_param, right in call.rights:
        assert fd_param in names, f"{call.name}: right on unknown parameter {fd_param}"
        assert isinstance(right, Rights) and right
    assert all(t in ("i", "I") for _, t in call.params)


def test_public_errno_and_rights_are_enums() -> None:
    assert Errno.BADF == 8 and Errno.NOTCAPABLE == 76 and Errno.TOOBIG == 1
    assert Rights.FD_READ | Rights.FD_WRITE == (1 << 1) | (1 << 6)
    assert isinstance(Rights.FD_READ | Rights.FD_WRITE, Rights)


_MEM = 1 << 16
_I32 = (0, 3, 8, _MEM - 8, 0xFFFFFFFF)
_I64 = (0, 100, (1 << 63) - 1, 1 << 63, (1 << 64) - 1)


@pytest.fixture
def wasi(tmp_path):
    (tmp_path / "f").write_bytes(b"data")
    null = os.open(os.devnull, os.O_RDWR)
    w = Wasi.create(["prog"], {"K": "V"}, [Preopen(str(tmp_path), "/d")], stdio=(null, null, null))
    buf = (ctypes.c_ubyte * _MEM)()
    w.attach_memory(GuestMemory(ctypes.addressof(buf), lambda: _MEM))
    w.zero_memory = lambda: ctypes.memset(buf, 0, _MEM)  # zeroed memory: poll never waits
    yield w
    w.close()
    os.close(null)


@pytest.mark.parametrize("call", [c for c in CALLS if c.name != "proc_exit"], ids=lambda c: c.name)
def test_bound_call_returns_an_errno_for_any_arguments(call, wasi) -> None:
    """No ``OSError``, ``WasiError`` or ``OverflowError`` leaves a bound call, whatever the
    guest passes (offsets >= 2^63, pointers past memory, bad descriptors)."""
    impl = wasi.host_functions()[call.name]
    choices = [_I64 if t == "I" else _I32 for _, t in call.params]
    combos = list(itertools.product(*choices))
    random.Random(call.name).shuffle(combos)
    for args in combos[:100]:
        wasi.zero_memory()
        r = impl(*args)
        assert isinstance(r, int) and 0 <= r <= 76, (call.name, args, r)


def test_proc_exit_is_the_only_way_out(wasi) -> None:
    with pytest.raises(ProcExit):
        wasi.host_functions()["proc_exit"](3)
