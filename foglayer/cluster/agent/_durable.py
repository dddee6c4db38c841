"""A node's side of durable services (see :mod:`.._durable`).

After a call (``snapshots: after-invoke``; the call is acknowledged only once its snapshot is
stored) or every few seconds (``every``), the service's changed pages and its state go to the
controller, between two calls, on the instance's own thread. A snapshot that is not stored
resets the stream: the next one carries every page again. A starting instance of such an app
first asks the controller for the last snapshot and restores it the way a live move's target
does (each chunk checked whole, the state against the page map it names). Volumes (``dirs``)
go the same way, taken at the same point: the files that changed since the last snapshot, by
content hash; a restore makes the fresh volume exactly the stored tree before the state
re-opens its descriptors there.
"""

from __future__ import annotations

import asyncio

import msgspec

from foglayer.cluster._durable import (
    H_ROUND,
    H_SNAPSHOT,
    H_TREE,
    MAX_SNAP_FILES,
    SNAP_TIMEOUT,
    RestoreRequest,
    restore_subject,
    snap_subject,
)
from foglayer.cluster._move import H_PART
from foglayer.cluster._protocol import H_CHUNK, H_ERROR, H_INSTANCE, Reply, decode, encode
from foglayer.cluster.agent._move import VOLUME_ALLOWANCE
from foglayer.cluster.agent._slots import Slot, one_line
from foglayer.errors import FogError

MAX_RESTORE_PARTS = 1 << 16
ONE_MESSAGE = 4 << 20  # a snapshot this small goes in one message (the bus takes 8 MiB)


class Durable:
    def _init_durable(self) -> None:
        self.snap_streams: dict[str, object] = {}  # instance -> its PageStream
        self.snap_trees: dict[str, object] = {}  # instance -> its volumes' TreeStream
        self.snap_locks: dict[str, asyncio.Lock] = {}
        self.snap_kept: dict[str, bytes] = {}  # instance -> its stored state, but the time

    def _forget_snapshots(self, slot: Slot) -> None:
        self.snap_streams.pop(slot.instance, None)
        self.snap_trees.pop(slot.instance, None)
        self.snap_locks.pop(slot.instance, None)
        self.snap_kept.pop(slot.instance, None)

    async def _snapshot(self, slot: Slot) -> None:
        """Store a snapshot of ``slot``'s service now (what every call so far did is in it)."""
        lock = self.snap_locks.setdefault(slot.instance, asyncio.Lock())
        async with lock:
            local = slot.local
            if local is None:
                raise FogError(f"instance {slot.instance} is gone")
            stream = self.snap_streams.get(slot.instance)
            if stream is None:
                stream = self.snap_streams[slot.instance] = local.page_stream()  # type: ignore[attr-defined]
            tree = self.snap_trees.get(slot.instance)
            if tree is None and slot.spec.dirs:
                from foglayer.snapshot import TreeStream

                tree = self.snap_trees[slot.instance] = TreeStream(self._volume_root(slot))
            files = None
            try:
                rnd, state, key, files = await self.loop.run_in_executor(
                    local.pool, _take, local, stream, tree, self._spool_dir())
                if rnd.pages == 0 and key == self.snap_kept.get(slot.instance):
                    return  # nothing changed since the stored one (a read): nothing to send
                trees = files.count if files is not None else 0
                # (a volume chunk is read from the spool when it goes: one at a time)
                parts = ([("pages", c) for c in rnd.chunks] + [("tree", i) for i in range(trees)]
                         + [("state", state)])
                extra = {}
                if sum(len(c) for c in rnd.chunks) + (files.bytes if files else 0) \
                        + len(state) <= ONE_MESSAGE:  # one round trip, not n
                    parts = [("all", msgspec.msgpack.encode(
                        [files.chunk(d) if p == "tree" else d for p, d in parts]))]
                    extra = {H_TREE: str(trees)}
                for i, (part, data) in enumerate(parts):
                    if part == "tree":
                        data = await self.loop.run_in_executor(None, files.chunk, data)
                    headers = {H_INSTANCE: slot.instance, H_ROUND: str(rnd.number),
                               H_PART: part, H_CHUNK: f"{i}/{len(parts)}", **extra}
                    msg = await self.nc.request(snap_subject(self.name), data, headers=headers,
                                                timeout=SNAP_TIMEOUT)
                    reply = decode(msg.data, Reply)
                    if not reply.ok:
                        raise FogError(f"the controller refused it: {reply.error}")
                self.snap_kept[slot.instance] = key
            except BaseException as e:
                self.snap_streams.pop(slot.instance, None)  # the next one sends every page
                self.snap_trees.pop(slot.instance, None)  # and every file
                self.snap_kept.pop(slot.instance, None)
                if isinstance(e, Exception) and not isinstance(e, FogError):
                    raise FogError(f"{type(e).__name__}: {one_line(e)}") from None
                raise
            finally:
                if files is not None:
                    files.close()

    def _spool_dir(self) -> str:
        """Where a snapshot's volume chunks wait past a few MiB (beside the volumes)."""
        assert self.data_dir is not None
        path = self.data_dir / "spool"
        path.mkdir(mode=0o700, exist_ok=True)
        return str(path)

    async def _snapshot_every(self, slot: Slot, every: float) -> None:
        """``snapshots: {every: N}``: a snapshot each N seconds in which calls came."""
        done = -1
        while self.slots.get(slot.instance) is slot and slot.local is not None:
            await asyncio.sleep(every)
            calls = slot.local.calls if slot.local is not None else done  # type: ignore[attr-defined]
            if calls == done or slot.hold is not None or slot.local is None:
                continue
            try:
                await self._snapshot(slot)
                done = calls
            except Exception as e:  # noqa: BLE001 - tried again next period
                print(f"node {self.name}: snapshot of {slot.instance}: {one_line(e)}",
                      flush=True)

    async def _restore(self, slot: Slot, local) -> bool:
        """Fill the fresh ``local`` from the app's last snapshot; False: there is none."""
        sink = tree = None
        index, count = 0, 1
        while index < count:
            req = encode(RestoreRequest(self.name, slot.instance, index))
            msg = await self.nc.request(restore_subject(self.name), req, timeout=SNAP_TIMEOUT)
            h = msg.headers or {}
            if H_ERROR in h:
                raise FogError(f"restore from its snapshot: {h[H_ERROR]}")
            if h.get(H_SNAPSHOT) == "none":
                return False
            try:
                i, count = (int(x) for x in h.get(H_CHUNK, "").split("/"))
            except ValueError:
                raise FogError("restore from its snapshot: a part without its index") from None
            if i != index or not 0 < count <= MAX_RESTORE_PARTS:
                raise FogError(f"restore from its snapshot: part {i}/{count}, {index} expected")
            if sink is None:
                sink = await self.loop.run_in_executor(None, local.page_sink)
            if h.get(H_PART) == "tree" and index < count - 1:
                if tree is None:  # the fresh volume becomes exactly the stored tree
                    from foglayer.snapshot import TreeSink

                    tree = TreeSink(self._volume_root(slot), max_bytes=VOLUME_ALLOWANCE,
                                    where=f"the snapshot of {slot.app}.{slot.replica}")
                await self.loop.run_in_executor(None, tree.apply, msg.data)
            elif h.get(H_PART) == "pages" and index < count - 1:
                await self.loop.run_in_executor(None, sink.apply, msg.data)
            elif h.get(H_PART) == "state" and index == count - 1:
                await self.loop.run_in_executor(None, local.adopt, sink, msg.data,
                                                self._dirs(slot))
            else:
                raise FogError(f"restore from its snapshot: part {index} is not what it says")
            index += 1
        return True


def _take(local, stream, tree, spool: str) -> tuple[object, bytes, bytes, object]:
    """On the instance's thread, between two calls: the round, the state, the state without
    its time and with its volumes' manifest (what tells whether anything but the pages
    changed), and the volumes' round (the blocks written by every call so far, spooled)."""
    from foglayer.snapshot import parse_snapshot

    rnd, state = local.last_round(stream)
    files = tree.spooled_round(spool, max_bytes=MAX_SNAP_FILES + (1 << 20)) \
        if tree is not None else None
    snap = parse_snapshot(state, "this node's own snapshot state")
    try:
        key = msgspec.json.encode(msgspec.structs.replace(snap.meta, created=0.0))
    finally:
        snap.close()
    if tree is not None:
        key += msgspec.json.encode(sorted(tree.sent.values(), key=lambda e: e.path))
    return rnd, state, key, files
