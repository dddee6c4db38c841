"""Durable services (manifest ``snapshots``): what nodes and the controller say to each other.

A node with a service whose spec has :class:`~._spec.Snapshots` sends incremental snapshots to
the leading controller (nodes have no JetStream access): each one is a round of the snapshot
package's :class:`~foglayer.snapshot.PageStream` (the pages that changed since the last one, in
bounded hashed chunks) then the state (globals, WASI state) that names the page map they make.
An app with volumes (``dirs``) sends a round of the snapshot package's
:class:`~foglayer.snapshot.TreeStream` with it, taken at the same point between two calls: the
64 KiB blocks of its files that changed since the last one, and the manifest of the tree (each
file: size, mode, its blocks' sha256s); the controller stores each block in ``fog-snap-pages``
under its sha256 (once, whoever sends it) as the chunks come, and the manifest in the record.
A restore sends the tree first, rebuilt chunk by chunk from the stored blocks (a
:class:`~foglayer.snapshot.TreeSink` on the node makes the fresh volume exactly that), then
the pages, then the state.

- ``fog.node.<node>.snap`` – a request per chunk: headers ``Fog-Instance``, ``Fog-Round``,
  ``Fog-Part`` (``pages``, ``tree`` or ``state``; or ``all``: a small snapshot's chunks and
  state in one msgpack list, its last ``Fog-Tree`` chunks before the state being the tree's),
  ``Fog-Chunk``; the answer is a :class:`Reply`. The
  state commits the round: the controller checks it, stores the new pages in the
  ``fog-snap-pages`` Object Store under their hash (so a page is stored once, whoever sends it)
  and the snapshot record (:class:`SnapRecord`: page map and state) in the ``fog-snapshots``
  KV bucket (one write per snapshot).
- ``fog.node.<node>.restore`` – a starting instance asks for part ``index`` of the last
  snapshot of its app and replica (:class:`RestoreRequest`); the answer's data is a page chunk
  or the state (``Fog-Part``, ``Fog-Chunk: i/n``), ``Fog-Snapshot: none`` (start fresh) or
  ``Fog-Error``.

Both are answered only for the instance that the placement names on that node.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from foglayer.cluster._protocol import SNAP_PAGES, SNAPSHOTS, node_out  # noqa: F401
from foglayer.snapshot import TreeEntry

ALL_SNAP, ALL_RESTORE = "fog.node.*.snap", "fog.node.*.restore"
H_ROUND = "Fog-Round"
H_SNAPSHOT = "Fog-Snapshot"
H_TREE = "Fog-Tree"  # (part ``all``) how many of its chunks are the tree's
# Volume bytes a durable snapshot keeps. The leader stores and restores them a chunk at a time
# (it holds 4 MiB of a round at most); the node spools a snapshot's changed blocks to its disk
# past 8 MiB until sent; the record names every block (16,384 at this size: ~1.1 MiB of it).
MAX_VOLUME = 1 << 30
MAX_SNAP_FILES = MAX_VOLUME  # changed block bytes one snapshot may bring
MAX_RECORD = 7 << 20  # an encoded record (a KV value: the bus takes 8 MiB)
SNAP_CHUNK_PAGES = 16  # pages per chunk: 1 MiB raw, under a message
MAX_SNAP_STATE = 4 << 20  # a snapshot's state (globals, WASI state) at most
SNAP_TIMEOUT = 10.0


def snap_subject(node: str) -> str:
    return f"{node_out(node)}.snap"


def restore_subject(node: str) -> str:
    return f"{node_out(node)}.restore"


class RestoreRequest(msgspec.Struct, frozen=True):
    name: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
    instance: Annotated[str, msgspec.Meta(max_length=200)]
    index: Annotated[int, msgspec.Meta(ge=0, lt=1 << 20)] = 0


class SnapRecord(msgspec.Struct, frozen=True):
    """The last snapshot of an app's replica (``fog-snapshots``, key ``<app>.<replica>``)."""

    app: str
    replica: int
    generation: int
    instance: str
    digest: str  # the module's
    round: int
    memory_pages: int
    pages: dict[int, str]  # page index -> hash of the page (its name in fog-snap-pages)
    state: bytes
    at: float
    tree: list[TreeEntry] | None = None  # its volumes' manifest (files by their blocks' sha256)

    def blobs(self) -> list[str]:
        """The names of everything it needs in ``fog-snap-pages``: pages, then file blocks
        (and a whole file, in a record from before blocks: collected, never restored)."""
        files = [e for e in self.tree or () if e.kind == "file"]
        return [*self.pages.values(), *(b for e in files for b in e.blocks),
                *(e.ref for e in files if e.ref)]


def encode_record(rec: SnapRecord) -> bytes:
    return msgspec.msgpack.encode(rec)


def decode_record(data: bytes) -> SnapRecord:
    return msgspec.msgpack.decode(data, type=SnapRecord)
