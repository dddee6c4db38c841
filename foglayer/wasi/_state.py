"""WASI state as plain data: descriptors, preopens, args, env, clocks.

Every field is an int, str, bool, list or dict, so the whole state serializes to JSON and
restores on another machine. Host file descriptors are the only live part. A restore
(``Wasi.restore``) re-opens each one inside its preopen, by the path relative to it, with the
same sandboxed walk as ``path_open``: a state read back is untrusted, and a descriptor whose
host path lies outside every preopen (elsewhere, ``..``, a symlink out) is refused.
"""

from __future__ import annotations

import os
from typing import Any

from foglayer.wasi import abi

STATE_VERSION = 1


class _Record:
    """Equality and repr from ``_FIELDS``: these classes are plain classes, not dataclasses,
    because ``dataclasses`` imports ``inspect`` (~5 ms of every ``fog run``'s start)."""

    __slots__ = ()
    _FIELDS: tuple[str, ...] = ()

    def _values(self) -> tuple:
        return tuple(getattr(self, f) for f in self._FIELDS)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._values() == other._values()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        fields = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._FIELDS)
        return f"{type(self).__name__}({fields})"


class Preopen(_Record):
    """A host directory granted to the guest under ``guest`` (e.g. ``/data``)."""

    __slots__ = ("host", "guest", "readonly", "memory")
    _FIELDS = __slots__

    def __init__(self, host: str, guest: str, readonly: bool = False,
                 memory: bool = False) -> None:
        self.host = host
        self.guest = guest
        self.readonly = readonly
        self.memory = memory  # a read-only directory held in memory (no host path)

    def to_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self._FIELDS}


class Descriptor(_Record):
    """One entry of the guest's fd table."""

    _FIELDS = ("kind", "host_path", "guest_path", "rights_base", "rights_inheriting", "flags",
               "open_flags", "offset", "preopen", "readonly", "stdio", "memory")
    __slots__ = (*_FIELDS, "host_fd", "dir_cache")

    def __init__(self, kind: int, host_path: str, guest_path: str, rights_base: int,
                 rights_inheriting: int, flags: int = 0, open_flags: int = 0, offset: int = 0,
                 preopen: str | None = None, readonly: bool = False, stdio: int = -1,
                 memory: str = "", host_fd: int = -1, dir_cache: list | None = None) -> None:
        self.kind = kind  # abi.FT_*
        self.host_path = host_path  # "" for stdio handed in by the host
        self.guest_path = guest_path
        self.rights_base = rights_base
        self.rights_inheriting = rights_inheriting
        self.flags = flags  # abi.FDFLAG_*
        self.open_flags = open_flags  # host os.open flags to re-open with (no CREAT/TRUNC/EXCL)
        self.offset = offset  # filled in by save(); the live offset lives in the host fd
        self.preopen = preopen  # guest name if this fd is a preopen
        self.readonly = readonly  # inside a read-only preopen
        self.stdio = stdio  # 0, 1, 2 for the standard streams
        self.memory = memory  # guest name of the memory directory it lives in (no host path)
        self.host_fd = host_fd
        self.dir_cache = dir_cache

    def to_dict(self) -> dict[str, Any]:
        d = {f: getattr(self, f) for f in self._FIELDS}
        d["open_flags"] = _portable_flags(self.open_flags)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Descriptor:
        out = cls(**{k: v for k, v in d.items() if k in cls._FIELDS})
        out.open_flags = _host_flags(out.open_flags)
        return out


# os.open flags differ between CPU architectures (O_DIRECTORY is 0o200000 on x86-64 and
# 0o40000 on aarch64), so saved state holds them in one fixed encoding, Linux's generic
# (x86-64) values, and only the flags a re-open may use: never O_CREAT, O_TRUNC or O_EXCL.
_ACCMODE = 3  # O_RDONLY 0, O_WRONLY 1, O_RDWR 2 on every Linux
_PORTABLE = {"O_APPEND": 0o2000, "O_NONBLOCK": 0o4000, "O_DSYNC": 0o10000,
             "O_SYNC": 0o4010000, "O_RSYNC": 0o4010000, "O_DIRECTORY": 0o200000,
             "O_NOFOLLOW": 0o400000, "O_CLOEXEC": 0o2000000}
_HOST = {name: getattr(os, name, 0) for name in _PORTABLE}
_ALLOWED = _ACCMODE
for _bits in _PORTABLE.values():
    _ALLOWED |= _bits


def _translate(flags: int, src: dict[str, int], dst: dict[str, int]) -> int:
    out = flags & _ACCMODE
    for name, bits in src.items():
        if bits and flags & bits == bits:
            out |= dst[name]
    return out


def _portable_flags(host: int) -> int:
    return _translate(host, _HOST, _PORTABLE)


def _host_flags(portable: int) -> int:
    """Saved flags as this host's, refusing any a re-open must not use (state is untrusted)."""
    if not isinstance(portable, int) or portable & ~_ALLOWED or portable & _ACCMODE == 3:
        raise ValueError(f"open_flags {portable!r}: not flags a descriptor may be re-opened with")
    return _translate(portable, _PORTABLE, _HOST)


def inside(path: str, root: str) -> bool:
    """``path`` is ``root`` or below it, as written: absolute, normalised, no ``..``."""
    if not path.startswith("/") or os.path.normpath(path) != path:
        return False
    return path == root or path.startswith(root.rstrip("/") + "/")


class WasiState(_Record):
    """The whole WASI state of one instance."""

    __slots__ = ("args", "env", "preopens", "fds", "monotonic_offset_ns", "exit_code")
    _FIELDS = __slots__

    def __init__(self, args: list[str] | None = None, env: dict[str, str] | None = None,
                 preopens: list[Preopen] | None = None, fds: dict[int, Descriptor] | None = None,
                 monotonic_offset_ns: int = 0, exit_code: int | None = None) -> None:
        self.args: list[str] = args if args is not None else []
        self.env: dict[str, str] = env if env is not None else {}
        self.preopens: list[Preopen] = preopens if preopens is not None else []
        self.fds: dict[int, Descriptor] = fds if fds is not None else {}
        # Guest monotonic time = host monotonic time + this offset; restore moves it so the
        # guest's clock never goes backwards on another machine.
        self.monotonic_offset_ns = monotonic_offset_ns
        self.exit_code = exit_code

    def to_dict(self) -> dict[str, Any]:
        """Plain data: JSON-serializable, no host pointers."""
        for d in self.fds.values():
            if d.host_fd >= 0 and d.kind == abi.FT_REG and d.stdio < 0:
                try:
                    d.offset = os.lseek(d.host_fd, 0, os.SEEK_CUR)
                except OSError:
                    pass
        from time import monotonic_ns

        return {
            "version": STATE_VERSION,
            "args": list(self.args),
            "env": dict(self.env),
            "preopens": [p.to_dict() for p in self.preopens],
            "fds": {str(fd): d.to_dict() for fd, d in sorted(self.fds.items())},
            "monotonic_ns": monotonic_ns() + self.monotonic_offset_ns,
            "exit_code": self.exit_code,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WasiState:
        """Rebuild the state; descriptors stay closed until ``open_host_fds``."""
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported WASI state version {data.get('version')!r}")
        from time import monotonic_ns

        state = cls(
            args=list(data["args"]),
            env=dict(data["env"]),
            preopens=[Preopen(**p) for p in data["preopens"]],
            fds={int(k): Descriptor.from_dict(v) for k, v in data["fds"].items()},
            monotonic_offset_ns=int(data["monotonic_ns"]) - monotonic_ns(),
            exit_code=data.get("exit_code"),
        )
        state.check_paths()
        return state

    def check_paths(self) -> None:
        """Every descriptor lies in one of the preopens, as written (ValueError if not):
        the lexical half of what ``Wasi.restore`` checks; the walk there catches symlinks."""
        guests = {p.guest for p in self.preopens}
        memory = {p.guest for p in self.preopens if p.memory}
        hosts = [p.host for p in self.preopens if not p.memory]
        for fd, d in self.fds.items():
            if d.stdio >= 0:
                continue
            if d.preopen is not None or d.memory:
                ok = d.preopen in guests if d.preopen is not None else d.memory in memory
                what = f"preopen {d.preopen or d.memory!r} is not one of the state's"
            else:
                ok = any(inside(d.host_path, h) for h in hosts)
                what = f"{d.host_path[:200]!r} is not a path inside a preopen"
            if not ok:
                raise ValueError(f"fd {fd} ({d.guest_path[:200]}): {what}")

    def remap(self, mapping: dict[str, str]) -> None:
        """Point preopens (by guest name) at other host directories, descriptors too."""
        for p in self.preopens:
            if p.guest in mapping:
                old, new = p.host, mapping[p.guest]
                p.host = new
                for d in self.fds.values():
                    if d.host_path == old or d.host_path.startswith(old.rstrip("/") + "/"):
                        d.host_path = new + d.host_path[len(old):]
