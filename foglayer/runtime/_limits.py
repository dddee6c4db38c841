"""Limits on one instance and the accounting a provider bills from."""

from __future__ import annotations

import math
import re

from foglayer.errors import FogError

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1000, "kib": 1 << 10, "m": 1 << 20, "mb": 10**6,
          "mib": 1 << 20, "g": 1 << 30, "gb": 10**9, "gib": 1 << 30}


def parse_size(text: str) -> int:
    """``64MiB`` -> 67108864. Accepts B, K/KiB/KB, M/MiB/MB, G/GiB/GB."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise FogError(f"invalid size {text!r}: expected a number with an optional unit, like 64MiB")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def format_size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


# The engine's own ceilings: fuel is a signed 64-bit counter in wasmtime (a larger value
# would wrap around, silently), memory a 32-bit address space, and a timeout is counted in
# epoch ticks of a 64-bit deadline (a year is far past any real use).
MAX_LIMIT: dict[str, float] = {"max_memory": 1 << 32, "fuel": (1 << 63) - 1,
                               "timeout": 365 * 86400.0, "max_fds": 1 << 20}


class Limits:
    """``max_memory`` in bytes, ``fuel`` in instructions, ``timeout`` in seconds,
    ``max_fds`` descriptors the guest may hold open (None: WASI's default cap). Immutable.

    A plain class, not a dataclass: ``dataclasses`` imports ``inspect``, ~5 ms of every
    ``fog run``'s start.
    """

    __slots__ = ("max_memory", "fuel", "timeout", "max_fds")
    max_memory: int | None
    fuel: int | None
    timeout: float | None
    max_fds: int | None

    def __init__(self, max_memory: int | None = None, fuel: int | None = None,
                 timeout: float | None = None, max_fds: int | None = None) -> None:
        for name, v in (("max_memory", max_memory), ("fuel", fuel), ("timeout", timeout),
                        ("max_fds", max_fds)):
            if v is not None:
                if not v > 0 or v == math.inf:  # also refuses nan, which no comparison holds for
                    raise FogError(f"invalid {name} {v}: must be a positive, finite number",
                                   where=name)
                if v > MAX_LIMIT[name]:
                    raise FogError(f"invalid {name} {v}: at most {MAX_LIMIT[name]}", where=name)
            object.__setattr__(self, name, v)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Limits are immutable: cannot set {name}")

    def _tuple(self) -> tuple:
        return (self.max_memory, self.fuel, self.timeout, self.max_fds)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Limits) and self._tuple() == other._tuple()

    def __hash__(self) -> int:
        return hash(self._tuple())

    def __repr__(self) -> str:
        return (f"Limits(max_memory={self.max_memory!r}, fuel={self.fuel!r}, "
                f"timeout={self.timeout!r}, max_fds={self.max_fds!r})")


class Stats:
    """What one instance consumed."""

    __slots__ = ("fuel", "peak_memory", "wall_time", "wasi_calls", "wasi_path")

    def __init__(self, fuel: int | None = None, peak_memory: int = 0, wall_time: float = 0.0,
                 wasi_calls: dict[str, int] | None = None, wasi_path: str = "") -> None:
        self.fuel = fuel  # instructions executed (None when fuel is not metered)
        self.peak_memory = peak_memory  # bytes of linear memory at its largest
        self.wall_time = wall_time  # seconds
        self.wasi_calls: dict[str, int] = wasi_calls if wasi_calls is not None else {}
        self.wasi_path = wasi_path  # "native" (hot calls in C) or "python"

    def to_dict(self) -> dict:
        return {"fuel": self.fuel, "peak_memory": self.peak_memory,
                "wall_time": self.wall_time, "wasi_calls": dict(self.wasi_calls),
                "wasi_path": self.wasi_path}

    def __repr__(self) -> str:
        return "Stats(" + ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items()) + ")"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Stats) and self.to_dict() == other.to_dict()
