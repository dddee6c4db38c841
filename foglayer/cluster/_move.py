"""Live moves of a service instance between nodes: the messages and the framing.

The controller drives a move (nodes never talk to each other: each hears only its own
``fog.cmd.<node>.>``). Subjects:

- ``fog.ctl.migrate`` – a client asks the leading controller to move ``app.replica`` to a node
  (:class:`MoveCommand`); progress goes to ``fog.migrate.<id>`` (:class:`MoveProgress`) and
  the answer is a :class:`MoveSummary`;
- ``fog.cmd.<node>.migrate`` – a step on a node (:class:`MoveRequest`, answered by a
  :class:`MoveReply`, or by the raw bytes of a chunk for ``chunk``);
- ``fog.cmd.<node>.mdata`` – a chunk of the state for the target (headers ``Fog-Move``,
  ``Fog-Chunk: <index>/<count>``).

Linear memory moves as the snapshot package's page chunks (:class:`~foglayer.snapshot.
PageStream` on the source, :class:`~foglayer.snapshot.PageSink` on the target, each chunk
checked whole): in pre-copy rounds while the source serves, then a last round once it is
frozen. The rest is one payload: the service's state (globals, WASI state) and a tar of its
volumes, framed by :func:`frame` and checked against its SHA-256 by the target before
anything in it is used.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import tarfile
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from foglayer.cluster._spec import AppSpec
from foglayer.errors import FogError

MOVE_SUBJECT = "fog.ctl.migrate"
CHUNK = 256 << 10  # under the server's 1 MiB max payload, with room for headers
H_MOVE = "Fog-Move"
MAX_STATE = 8 << 30  # a payload a target accepts at most (memory + volumes)
MAX_PAGE_CHUNK = 4 << 20  # a page chunk (16 pages, each stored at most a little over raw)
H_PART = "Fog-Part"  # "pages" or "state"
_LEN = struct.Struct("<Q")


def progress_subject(mid: str) -> str:
    return f"fog.migrate.{mid}"


_Id = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{8,32}$")]
_Sha = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]


class MoveCommand(msgspec.Struct, frozen=True):
    app: str
    replica: int
    to: str
    mid: _Id
    stop_and_copy: bool = False  # no pre-copy rounds: everything while the source is frozen


class MoveRequest(msgspec.Struct, frozen=True, omit_defaults=True):
    op: Literal["round", "freeze", "chunk", "release", "prepare", "commit", "abort"]
    mid: _Id
    instance: str = ""  # the source's instance (freeze), the target's new one (prepare)
    app: str = ""
    replica: int = 0
    generation: int = 0
    spec: AppSpec | None = None
    index: int = 0
    size: Annotated[int, msgspec.Meta(ge=0, le=MAX_STATE)] = 0
    sha256: str = ""
    moved: bool = False
    part: Literal["pages", "state"] = "pages"  # which chunks ``chunk`` reads
    # Apps that need attestation: a release (foglayer.trust) for this node's attested session
    # carrying the key of this move's node pair (and, to the target, the app's secrets).
    release: str = ""
    session: str = ""


#: The name under which a move's pair key is released to both nodes.
MOVE_KEY = "__move_pair_key__"
SEAL_OVERHEAD = 64  # what sealing adds to a chunk (flag, tag; header and nonce for the state)


class MoveReply(msgspec.Struct, frozen=True, omit_defaults=True):
    ok: bool
    error: str | None = None
    size: int = 0
    sha256: str = ""
    memory: int = 0  # bytes of linear memory
    chunks: int = 0  # page chunks of this round
    pages: int = 0  # pages they carry
    page_bytes: int = 0  # their bytes
    frozen_at: float = 0.0  # wall time of the source's last instruction
    running_at: float = 0.0  # wall time the target could serve


class MoveProgress(msgspec.Struct, frozen=True):
    phase: str
    sent: int = 0
    total: int = 0


class MoveSummary(msgspec.Struct, frozen=True, omit_defaults=True):
    ok: bool
    error: str | None = None
    app: str = ""
    source: str = ""
    target: str = ""
    mode: str = "pre-copy"
    rounds: int = 0
    total_s: float = 0.0
    downtime_s: float = 0.0
    bytes_sent: int = 0
    memory: int = 0
    held: int = 0  # invocations that arrived during the move, served after it


class MoveError(FogError):
    """A move that was refused or failed; the app stays where it was."""


def frame(snapshot: bytes, volumes: bytes) -> bytes:
    return _LEN.pack(len(snapshot)) + snapshot + volumes


def unframe(payload: bytes) -> tuple[bytes, bytes]:
    if len(payload) < _LEN.size:
        raise MoveError("the state is truncated")
    (n,) = _LEN.unpack_from(payload)
    if n > len(payload) - _LEN.size:
        raise MoveError("the state's snapshot length runs past its end")
    return payload[_LEN.size:_LEN.size + n], payload[_LEN.size + n:]


def pack_dir(root: Path) -> bytes:
    """Regular files and directories under ``root`` as a tar (symlinks and the rest left out:
    a volume holds the app's files, nothing that points elsewhere)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(dirnames) + sorted(filenames):
                path = Path(dirpath, name)
                st = path.lstat()
                if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                    continue
                tar.add(path, arcname=str(path.relative_to(root)), recursive=False)
    return buf.getvalue()


def unpack_dir(data: bytes, root: Path, limit: int = MAX_STATE) -> None:
    """Unpack a :func:`pack_dir` tar under ``root``: untrusted, so only plain files and
    directories with relative names that stay below ``root``, at most ``limit`` bytes."""
    if not data:
        return
    try:
        tar = tarfile.open(fileobj=io.BytesIO(data), mode="r:")
    except tarfile.TarError as e:
        raise MoveError(f"the volumes are not a tar: {e}") from None
    total = 0
    base = root.resolve()
    with tar:
        for m in tar:
            parts = Path(m.name).parts
            if not parts or Path(m.name).is_absolute() or ".." in parts:
                raise MoveError(f"volume entry {m.name!r}: not a relative path below the volume")
            dest = base.joinpath(*parts)
            if m.isdir():
                dest.mkdir(mode=0o700, parents=True, exist_ok=True)
            elif m.isfile():
                total += m.size
                if total > limit:
                    raise MoveError(f"the volumes hold more than {limit} bytes")
                dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                src = tar.extractfile(m)
                assert src is not None
                tmp = dest.with_name(f".{dest.name}.fogmove")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
                with os.fdopen(fd, "wb") as out:
                    while chunk := src.read(1 << 20):
                        out.write(chunk)
                os.replace(tmp, dest)
            else:
                raise MoveError(f"volume entry {m.name!r}: not a file or a directory")
