"""The host side of the service ABI (docs/service-abi.md): calling a reactor's functions.

A service module (a WASI reactor) exports:

- ``fog_alloc(len: i32) -> i32``: a buffer of at least ``len`` bytes for payloads. The host
  keeps it and reuses it for every call whose payload fits; the guest must not keep pointers
  into it once a call returns;
- ``fog_free(ptr: i32, len: i32)`` (optional): the host gives a payload buffer back before it
  asks for a bigger one;
- service functions ``name(ptr: i32, len: i32) -> i64``: the payload in; out
  ``(result_ptr << 32) | result_len``. Bit 63 set means an application error whose message is
  at ``(r >> 32) & 0x7fffffff``, length ``r & 0xffffffff``. The result buffer belongs to the
  guest and must stay valid until its next call.

Calls go through :class:`~foglayer.runtime.Function` (raw values), and payloads move with
``memmove`` on the memory's base address, which never moves.
"""

from __future__ import annotations

import ctypes
import re

from foglayer.errors import FogError
from foglayer.runtime._instance import Function, Instance

FUNCTION_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_ABI_EXPORTS = {"fog_alloc", "fog_free", "_initialize", "_start", "memory"}
_SERVICE_SIG = (["i32", "i32"], ["i64"])


class ServiceError(FogError):
    """A service function reported an error (bit 63 of its result)."""


def check_function(name: str) -> str:
    """``name`` if it can name a service function (a C identifier), else :class:`FogError`."""
    if not FUNCTION_RE.fullmatch(name or ""):
        raise FogError(f"invalid function name {name!r}: expected a C identifier")
    return name


class Service:
    """A service instance's calls through the ABI, with its exports resolved once."""

    def __init__(self, inst: Instance) -> None:
        self.inst = inst
        if not inst.has_memory:
            raise FogError("the module exports no memory: not a service module")
        self._funcs: dict[str, Function] = {}
        self._names = set(inst.module.exports())
        if "fog_alloc" not in self._names:
            raise FogError("the module does not export fog_alloc: not a service module "
                           "(see docs/service-abi.md)")
        self._alloc = self._get("fog_alloc", (["i32"], ["i32"]))
        self._free = self._get("fog_free", (["i32", "i32"], [])) if "fog_free" in self._names else None
        self._base = inst.memory_base()
        self._ptr = self._cap = 0

    def _sig(self, name: str) -> tuple[list[str], list[str]] | None:
        if name not in self._names:
            return None
        try:
            f = self.inst.function(name)
        except FogError:  # not a function, or not callable with raw values
            return None
        return f.params, f.results

    def _get(self, name: str, want: tuple[list[str], list[str]]) -> Function:
        f = self._funcs.get(name)
        if f is None:
            sig = self._sig(name)
            if sig != want:
                raise FogError(f"{name!r}: expected ({', '.join(want[0])}) -> "
                               f"({', '.join(want[1])}), found {sig or 'no such function'}")
            f = self._funcs[name] = self.inst.function(name)
        return f

    def functions(self) -> list[str]:
        """The exports that follow the ABI: ``(i32, i32) -> i64`` functions."""
        return sorted(n for n in self._names
                      if n not in _ABI_EXPORTS and self._sig(n) == _SERVICE_SIG)

    def call(self, function: str, payload: bytes) -> bytes:
        """Call ``function`` with ``payload``; the result bytes.

        Raises :class:`ServiceError` for an application error, ``Trapped`` for a trap, and
        :class:`FogError` for a function that is missing or does not follow the ABI.
        """
        check_function(function)
        if function not in self._names:
            raise FogError(f"no function {function!r} in this service")
        if function in _ABI_EXPORTS:
            raise FogError(f"{function!r} is part of the ABI, not a service function")
        try:
            fn = self._get(function, _SERVICE_SIG)
        except FogError:
            raise FogError(f"{function!r} is not a service function: expected "
                           "(i32, i32) -> i64") from None
        n = len(payload)
        if n > self._cap or not self._ptr:
            self._grow(n)
        if n:
            ctypes.memmove(self._base + self._ptr, payload, n)
        r = fn(self._ptr, n) & ((1 << 64) - 1)
        rptr, rlen = (r >> 32) & 0x7FFFFFFF, r & 0xFFFFFFFF
        size = self.inst.memory_pages() * 65536
        if rptr + rlen > size:
            raise ServiceError(f"{function} returned a result outside linear memory "
                               f"(ptr {rptr}, len {rlen}, memory {size} bytes)")
        data = ctypes.string_at(self._base + rptr, rlen) if rlen else b""
        if r >> 63:
            raise ServiceError(data.decode(errors="replace") or f"{function} failed")
        return data

    def _grow(self, n: int) -> None:
        if self._ptr and self._free is not None:
            self._free(self._ptr, self._cap)
        cap = max(n, 4096)
        ptr = (self._alloc(cap) or 0) & 0xFFFFFFFF
        if ptr == 0:
            self._ptr = self._cap = 0
            raise ServiceError(f"fog_alloc({cap}) returned NULL: the service is out of memory")
        self._ptr, self._cap = ptr, cap
