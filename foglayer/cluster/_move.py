"""Live moves of an instance between nodes (a service, or a command with ``mobility: live``):
the messages and the framing.

The controller drives a move (nodes never talk to each other: each hears only its own
``fog.cmd.<node>.>``). Subjects:

- ``fog.ctl.migrate`` – a client asks the leading controller to move ``app.replica`` to a node
  (:class:`MoveCommand`); progress goes to ``fog.migrate.<id>`` (:class:`MoveProgress`) and
  the answer is a :class:`MoveSummary`;
- ``fog.cmd.<node>.migrate`` – a step on a node (:class:`MoveRequest`, answered by a
  :class:`MoveReply`, or by the raw bytes of a chunk for ``chunk``): ``prepare`` (target),
  ``round`` / ``freeze`` (source: how many chunks), ``chunk`` (each built when asked),
  ``state`` (source, after the last chunk), ``commit`` (target), ``release`` / ``abort``;
- ``fog.cmd.<node>.mdata`` – a chunk of the state for the target (headers ``Fog-Move``,
  ``Fog-Chunk: <index>/<count>``).

Linear memory moves as the snapshot package's page chunks (:class:`~foglayer.snapshot.
PageStream` on the source, :class:`~foglayer.snapshot.PageSink` on the target, each chunk
checked whole): in pre-copy rounds while the source serves, then a last round once it is
frozen. Volumes move the same way, as 64 KiB blocks by hash (:class:`~foglayer.snapshot.
TreeStream` / :class:`~foglayer.snapshot.TreeSink`: the blocks that changed since the last
round, an append only its last; the last round's manifest settles the tree). The state (globals, WASI state) comes last, checked
against its SHA-256 by the target before anything in it is used.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from foglayer.cluster._spec import AppSpec
from foglayer.errors import FogError

MOVE_SUBJECT = "fog.ctl.migrate"
CHUNK = 256 << 10  # under the server's 1 MiB max payload, with room for headers
H_MOVE = "Fog-Move"
MAX_STATE = 64 << 20  # a state (globals, WASI state) a target accepts at most
MAX_PAGE_CHUNK = 6 << 20  # a page or volume chunk (the snapshot package bounds them)
H_PART = "Fog-Part"  # "pages", "tree" or "state"


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
    op: Literal["round", "freeze", "state", "chunk", "release", "prepare", "commit", "abort"]
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
    part: Literal["pages", "tree", "state"] = "pages"  # which chunks ``chunk`` reads
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
    tree_chunks: int = 0  # volume chunks of this round
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
    # A command's last instruction on the source to its first on the target, by the two
    # nodes' wall clocks (exact on one machine; across machines, their clocks' skew).
    switch_s: float = 0.0


class MoveError(FogError):
    """A move that was refused or failed; the app stays where it was."""
