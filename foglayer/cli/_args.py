"""The shared grammar of ``fog``'s flags: ``--dir HOST[:GUEST][:ro]`` and ``KEY=VALUE``.

No click here: ``fog run`` parses with it too.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from foglayer.errors import FogError


def parse_dirs(specs: list[str]) -> list:
    """``HOST[:GUEST][:ro]`` specs as preopens; the host directory must exist."""
    from foglayer.wasi import Preopen

    out = []
    for spec in specs:
        parts = spec.split(":")
        readonly = len(parts) > 1 and parts[-1] == "ro"
        if readonly:
            parts = parts[:-1]
        if not parts[0] or len(parts) > 2:
            raise FogError(f"--dir {spec!r}: expected HOST[:GUEST][:ro]")
        host = parts[0]
        guest = parts[1] if len(parts) == 2 and parts[1] else host
        if not os.path.isdir(host):
            what = "not a directory" if os.path.exists(host) else "no such directory"
            raise FogError(f"--dir {spec!r}: {host}: {what}")
        out.append(Preopen(host=host, guest=guest, readonly=readonly))
    return out


def parse_pairs(pairs: Iterable[str], what: str) -> dict[str, str]:
    """``KEY=VALUE`` pairs (``--env``, ``--label``) as a dict."""
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise FogError(f"{what} {pair!r}: expected KEY=VALUE")
        env[key] = value
    return env
