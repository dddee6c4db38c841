"""WASI state as plain data: descriptors, preopens, args, env, clocks.

Every field is an int, str, bool, list or dict, so the whole state serializes to JSON and
restores on another machine. Host file descriptors are the only live part; they are
re-opened from ``host_path``, ``open_flags`` and ``offset`` on restore.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from foglayer.wasi import abi

STATE_VERSION = 1


@dataclass(slots=True)
class Preopen:
    """A host directory granted to the guest under ``guest`` (e.g. ``/data``)."""

    host: str
    guest: str
    readonly: bool = False
    memory: bool = False  # a read-only directory held in memory (no host path)


@dataclass(slots=True)
class Descriptor:
    """One entry of the guest's fd table."""

    kind: int  # abi.FT_*
    host_path: str  # "" for stdio handed in by the host
    guest_path: str
    rights_base: int
    rights_inheriting: int
    flags: int = 0  # abi.FDFLAG_*
    open_flags: int = 0  # host os.open flags to re-open with (no CREAT/TRUNC/EXCL)
    offset: int = 0  # filled in by save(); the live offset lives in the host fd
    preopen: str | None = None  # guest name if this fd is a preopen
    readonly: bool = False  # inside a read-only preopen
    stdio: int = -1  # 0, 1, 2 for the standard streams
    memory: str = ""  # guest name of the memory directory it lives in (no host path)
    host_fd: int = field(default=-1, repr=False)
    dir_cache: list | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        del d["host_fd"], d["dir_cache"]
        d["open_flags"] = _portable_flags(self.open_flags)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Descriptor:
        names = {f.name for f in fields(cls)} - {"host_fd", "dir_cache"}
        out = cls(**{k: v for k, v in d.items() if k in names})
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


@dataclass(slots=True)
class WasiState:
    """The whole WASI state of one instance."""

    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    preopens: list[Preopen] = field(default_factory=list)
    fds: dict[int, Descriptor] = field(default_factory=dict)
    # Guest monotonic time = host monotonic time + this offset; restore moves it so the
    # guest's clock never goes backwards on another machine.
    monotonic_offset_ns: int = 0
    exit_code: int | None = None

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
            "preopens": [asdict(p) for p in self.preopens],
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

        return cls(
            args=list(data["args"]),
            env=dict(data["env"]),
            preopens=[Preopen(**p) for p in data["preopens"]],
            fds={int(k): Descriptor.from_dict(v) for k, v in data["fds"].items()},
            monotonic_offset_ns=int(data["monotonic_ns"]) - monotonic_ns(),
            exit_code=data.get("exit_code"),
        )

    def remap(self, mapping: dict[str, str]) -> None:
        """Point preopens (by guest name) at other host directories, descriptors too."""
        for p in self.preopens:
            if p.guest in mapping:
                old, new = p.host, mapping[p.guest]
                p.host = new
                for d in self.fds.values():
                    if d.host_path == old or d.host_path.startswith(old.rstrip("/") + "/"):
                        d.host_path = new + d.host_path[len(old):]
