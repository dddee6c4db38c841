"""The shared grammar of ``fog``'s flags: ``--dir HOST[:GUEST][:ro]`` and ``KEY=VALUE``.

No click here: ``fog run`` parses with it too. Every error names the flag and the text given.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, NamedTuple, TypeVar

from foglayer.errors import FogError

if TYPE_CHECKING:
    from foglayer.wasi import Preopen

T = TypeVar("T")


class DirSpec(NamedTuple):
    """One ``--dir HOST[:GUEST][:ro]``; ``guest`` is None when not given (a ``NamedTuple``:
    ``dataclasses`` would cost ~5 ms of ``fog run``'s start)."""

    host: str
    guest: str | None = None
    readonly: bool = False


def parse_dir(spec: str, flag: str = "--dir") -> DirSpec:
    parts = spec.split(":")
    readonly = len(parts) > 1 and parts[-1] == "ro"
    if readonly:
        parts = parts[:-1]
    if not parts[0] or len(parts) > 2:
        raise FogError(f"{flag} {spec!r}: expected HOST[:GUEST][:ro]")
    return DirSpec(parts[0], parts[1] if len(parts) == 2 and parts[1] else None, readonly)


def _existing_dir(spec: str, host: str, flag: str) -> None:
    if not os.path.isdir(host):
        what = "not a directory" if os.path.exists(host) else "no such directory"
        raise FogError(f"{flag} {spec!r}: {host}: {what}")


def parse_preopens(specs: Iterable[str], flag: str = "--dir") -> list[Preopen]:
    """``fog run``: each ``HOST[:GUEST][:ro]`` a preopen (GUEST defaults to HOST; HOST exists)."""
    from foglayer.wasi import Preopen

    out = []
    for spec in specs:
        d = parse_dir(spec, flag)
        _existing_dir(spec, d.host, flag)
        out.append(Preopen(host=d.host, guest=d.guest or d.host, readonly=d.readonly))
    return out


def parse_remaps(specs: Iterable[str], flag: str = "--dir") -> dict[str, str]:
    """``fog restore``: each ``HOST:GUEST`` puts the snapshot's preopen GUEST on HOST."""
    out: dict[str, str] = {}
    for spec in specs:
        d = parse_dir(spec, flag)
        if d.guest is None or d.readonly:
            raise FogError(f"{flag} {spec!r}: expected HOST:GUEST (the snapshot keeps each "
                           f"preopen's rights)")
        if d.guest in out:
            raise FogError(f"{flag} {spec!r}: {d.guest} is remapped twice")
        out[d.guest] = d.host
    return out


def parse_pairs(pairs: Iterable[str], flag: str, value: Callable[[str], T] = str,
                expected: str = "KEY=VALUE") -> dict[str, T]:
    """``KEY=VALUE`` pairs (``--env``, ``--label``, ``--latency``) as a dict; ``value``
    converts each value (a ValueError names the pair)."""
    out: dict[str, T] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise FogError(f"{flag} {pair!r}: expected {expected}")
        try:
            out[key] = value(text)
        except ValueError:
            raise FogError(f"{flag} {pair!r}: expected {expected}") from None
    return out
