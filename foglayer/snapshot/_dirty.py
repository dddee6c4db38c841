"""Which pages of linear memory differ from the shadow copy of what a move's target has.

The last pre-copy round's scan is downtime (the app is stopped), so it is done in one call
of a small C function (``_dirty.c``, a :class:`foglayer.toolchain.NativeLibrary`: built once
per target with ziglang and cached by content; the host readies it for the arm64 root) instead
of one ctypes ``memcmp`` call per 64 KiB page. Where it is not there and cannot be built (no
ziglang, the arm64 root, another platform) the per-page ``memcmp`` does the same, only slower.
``FOG_DIRTY_NATIVE=0`` forces that path.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from foglayer.snapshot._meta import PAGE
from foglayer.toolchain import NativeLibrary

SOURCE = Path(__file__).with_name("_dirty.c")
LIBRARY = NativeLibrary(SOURCE, ("-O2",))
ENV = "FOG_DIRTY_NATIVE"
_lib: list[object] = []  # [the function] or [None]: loaded (or refused) once per process

_memcmp = ctypes.CDLL(None).memcmp
_memcmp.restype = ctypes.c_int
_memcmp.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)


def _native():
    if not _lib:
        fn = None
        try:
            lib = ctypes.CDLL(str(LIBRARY.path()))
            fn = lib.fog_dirty_pages
            fn.restype = ctypes.c_uint32
            fn.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32,
                           ctypes.c_uint32, ctypes.c_void_p)
        except Exception:  # noqa: BLE001 - not built, no compiler here: the per-page path
            fn = None
        _lib.append(fn)
    return _lib[0] if os.environ.get(ENV, "") != "0" else None


def path() -> str:
    """The scan this process uses: "native" (one C call) or "python" (``memcmp`` per page)."""
    return "native" if warm() and os.environ.get(ENV, "") != "0" else "python"


def warm() -> bool:
    """Build or load the native scan now (not in a move's first, frozen round); whether it
    is there."""
    _native()
    return bool(_lib and _lib[0] is not None)


def differing(view: memoryview, shadow: memoryview, npages: int) -> list[int]:
    """Indices of the pages in ``[0, npages)`` where ``view`` and ``shadow`` differ."""
    if view.readonly:
        return [i for i in range(npages)
                if view[i * PAGE:(i + 1) * PAGE] != shadow[i * PAGE:(i + 1) * PAGE]]
    a = ctypes.addressof(ctypes.c_char.from_buffer(view))
    b = ctypes.addressof(ctypes.c_char.from_buffer(shadow))
    fn = _native()
    if fn is None:
        return [i for i in range(npages) if _memcmp(a + i * PAGE, b + i * PAGE, PAGE)]
    out = (ctypes.c_uint32 * npages)()
    n = fn(a, b, 0, npages, PAGE, out)  # (ctypes lets go of the GIL meanwhile)
    return out[:n]
