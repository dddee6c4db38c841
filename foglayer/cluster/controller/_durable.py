"""The controller's side of durable services (see :mod:`.._durable`).

It takes a node's snapshot rounds only for the instance its placement names on that node; every
chunk is checked whole by the snapshot package (sizes, each page's hash) and the state against
the page map the rounds make (its ``stream_digest``), before anything is stored. Pages go into
the ``fog-snap-pages`` Object Store under their hash, once; the record of the last snapshot of
each ``<app>.<replica>`` into the ``fog-snapshots`` KV bucket. Volume files come as tree rounds
of changed 64 KiB blocks (each chunk checked whole by the snapshot package, each block against
its sha256; the manifest's paths inside the volume, its block lists matching the sizes) and
each block is stored once, under its sha256: a small round's with its pages at the commit (one
batch), a bigger one's as its chunks come, past 4 MiB: the leader never holds more of a
snapshot's files. Blocks stored for a round that is not committed are pinned (counted like a
record's) until it commits or is dropped, then collected like pages. The
record keeps the manifest. A starting instance of the same deploy gets it back, chunk by
chunk, each rebuilt from the stored pages and blocks when the node asks for it (the node
checks every hash again).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import time
from collections import Counter
from dataclasses import dataclass, field

import msgspec
import zstandard

from foglayer.cluster._durable import (
    ALL_RESTORE,
    ALL_SNAP,
    H_ROUND,
    H_SNAPSHOT,
    H_TREE,
    MAX_RECORD,
    MAX_SNAP_FILES,
    MAX_SNAP_STATE,
    MAX_VOLUME,
    SNAP_CHUNK_PAGES,
    SNAP_PAGES,
    SNAPSHOTS,
    RestoreRequest,
    SnapRecord,
    decode_record,
    encode_record,
)
from foglayer.cluster._move import H_PART, MAX_PAGE_CHUNK
from foglayer.cluster._protocol import (
    H_CHUNK,
    H_ERROR,
    H_INSTANCE,
    BadMessage,
    Reply,
    decode_node,
    encode,
    subject_node,
)
from foglayer.cluster.controller._registry import ACTIVE

PAGE = 64 << 10
_parts_decoder = msgspec.msgpack.Decoder(list[bytes])
HELD_BLOCKS = 4 << 20  # volume bytes a round keeps in memory before it stores them
MAX_RESTORES = 64  # restores served at once (each holds its plan, a chunk built at a time)


class SnapRefused(Exception):
    pass


@dataclass
class _Round:
    instance: str
    number: int
    pages: dict[int, bytes] = field(default_factory=dict)  # index -> raw (b"": now zero)
    hashes: dict[int, str] = field(default_factory=dict)
    tree: object | None = None  # a TreeCollector of its volume blocks, if any came
    pinned: set[str] = field(default_factory=set)  # blocks stored for it, held until it goes
    closed: bool = False  # committed or dropped: it holds nothing any more
    # Blocks that came but are not stored yet: a small round's go with its pages, in one
    # batch at the commit; past HELD_BLOCKS they are stored at once (and pinned).
    held: dict[str, bytes] = field(default_factory=dict)
    held_bytes: int = 0


class Durable:
    def _init_durable(self) -> None:
        self._snap_base: dict[str, SnapRecord] = {}  # <app>.<replica> -> the last stored
        self._snap_rounds: dict[str, _Round] = {}  # <app>.<replica> -> the round coming in
        self._stored_pages: set[str] = set()  # page hashes known to be in fog-snap-pages
        self._restores: dict[str, list[tuple[str, object]]] = {}  # instance -> part builders
        self._snap_stores: dict[str, object] = {}
        # Page hash -> how many stored records name it; a page no record names is garbage,
        # deleted by the reconcile loop (under the lock that also guards storing pages).
        self._page_refs: Counter[str] = Counter()
        self._page_garbage: set[str] = set()
        self._pages_lock = asyncio.Lock()
        self._snaps_loaded = False

    def _reset_snapshots(self) -> None:
        for cur in self._snap_rounds.values():
            cur.closed = True  # (what they stored is left to the store: not counted here)
        self._snap_base.clear()
        self._snap_rounds.clear()
        self._stored_pages.clear()
        self._page_refs.clear()
        self._page_garbage.clear()
        self._snaps_loaded = False

    async def _load_snapshots(self) -> None:
        """Every stored record, once per controller (what it stores next is counted on it)."""
        if self._snaps_loaded:
            return
        from foglayer.cluster._bus import kv_snapshot

        unread = False
        for key, data in (await kv_snapshot(self.kv[SNAPSHOTS])).items():
            try:
                rec = decode_record(data)
            except Exception:  # noqa: BLE001 - a record that does not decode restores nothing
                self.log(f"snapshot record {key}: does not decode; ignored")
                unread = True
                continue
            if key not in self._snap_base:
                self._set_base(key, rec)
        if not unread:  # (what an unread record names is left alone)
            await self._sweep_store()
        self._snaps_loaded = True

    async def _sweep_store(self) -> None:
        """What no record names is garbage: blocks a former leader stored for a round it was
        taking when it went (they were pinned only in its memory)."""
        try:
            info = await self.js.stream_info(f"OBJ_{SNAP_PAGES}",
                                             subjects_filter=f"$O.{SNAP_PAGES}.M.>")
        except Exception:  # noqa: BLE001 - no store yet: nothing to sweep
            return
        for subject in info.state.subjects or {}:
            try:
                name = base64.urlsafe_b64decode(subject.rsplit(".", 1)[1]).decode()
            except (ValueError, UnicodeDecodeError):
                continue
            if not self._page_refs[name]:
                self._page_garbage.add(name)

    def _set_base(self, key: str, rec: SnapRecord | None) -> None:
        old = self._snap_base.pop(key, None)
        if rec is not None:
            self._snap_base[key] = rec
            self._page_refs.update(rec.blobs())
        if old is not None:
            self._unref(old.blobs())

    def _unref(self, digests) -> None:
        """One reference less to each (a list may name one several times); garbage at none."""
        digests = list(digests)
        self._page_refs.subtract(digests)
        for digest in set(digests):
            if self._page_refs[digest] <= 0:
                del self._page_refs[digest]
                self._page_garbage.add(digest)

    def _drop_round(self, key: str) -> None:
        """The round coming in for ``key`` goes: the blocks stored for it are held no more."""
        cur = self._snap_rounds.pop(key, None)
        if cur is not None:
            self._close_round(cur)

    def _close_round(self, cur: _Round) -> None:
        cur.closed = True
        cur.held, cur.held_bytes = {}, 0
        if cur.pinned:
            self._unref(cur.pinned)
            cur.pinned = set()

    async def _collect_pages(self) -> None:
        """Delete the stored pages that no snapshot names any more."""
        if not self._page_garbage or not self.lease.leader:
            return
        obs = await self._store(SNAP_PAGES)
        async with self._pages_lock:
            garbage, self._page_garbage = self._page_garbage, set()
            gone = [d for d in garbage if self._page_refs[d] <= 0]  # (not named again)
            self._stored_pages.difference_update(gone)
            # In parallel, a bounded batch: a snapshot waits on this lock.
            for k in range(0, len(gone), 64):
                await asyncio.gather(*(self._drop_object(obs, d) for d in gone[k:k + 64]))

    async def _drop_object(self, obs, name: str) -> None:
        """Delete an object, then purge its meta entry: the Object Store leaves a deleted
        object's meta behind, one message per page or block ever collected (under the
        pages lock: nothing stores the name meanwhile)."""
        try:
            await obs.delete(name)
        except Exception:  # noqa: BLE001 - gone already: fine
            pass
        meta = base64.urlsafe_b64encode(name.encode()).decode()
        try:
            await self.js.purge_stream(f"OBJ_{SNAP_PAGES}", subject=f"$O.{SNAP_PAGES}.M.{meta}")
        except Exception:  # noqa: BLE001 - left for the next sweep
            pass

    async def _subscribe_durable(self) -> None:
        await self.nc.subscribe(ALL_SNAP, cb=self._on_snap)
        await self.nc.subscribe(ALL_RESTORE, cb=self._on_restore)

    async def _store(self, name: str):
        obs = self._snap_stores.get(name)
        if obs is None:  # (created with the cluster's state: see ensure_state)
            obs = self._snap_stores[name] = await self.js.object_store(name)
        return obs

    def _snap_placement(self, node: str, instance: str) -> tuple[str, dict, object]:
        """The placement that names ``instance`` on ``node``, for an app with snapshots."""
        key, p = next(((k, q) for k, q in self.placements.items()
                       if q["instance"] == instance), (None, None))
        if p is None or p.get("node") != node or p["state"] not in ACTIVE:
            raise SnapRefused(f"node {node} runs no instance {instance!r} of a placement")
        rec = self.apps.get(p["app"])
        if rec is None or rec.spec.snapshots is None:
            raise SnapRefused(f"app {p['app']!r} has no snapshots")
        return key, p, rec

    # -- storing ----------------------------------------------------------------------------

    async def _on_snap(self, msg) -> None:
        if not msg.reply or not self.lease.leader or not self.leader:
            return  # only the leader answers (the node's snapshot fails and starts over)
        node = subject_node(msg.subject)
        try:
            await self._take_snap(node, msg.headers or {}, msg.data)
            reply = Reply(True)
        except SnapRefused as e:
            reply = Reply(False, str(e)[:500])
        except Exception as e:  # noqa: BLE001 - the snapshot fails, the node is told why
            reply = Reply(False, f"{type(e).__name__}: {e}"[:500])
        await self.nc.publish(msg.reply, encode(reply))

    async def _take_snap(self, node: str, h: dict, data: bytes) -> None:
        instance = h.get(H_INSTANCE, "")
        key, p, rec = self._snap_placement(node, instance)
        try:
            number = int(h.get(H_ROUND, ""))
        except ValueError:
            raise SnapRefused("a snapshot chunk without its round") from None
        max_pages = rec.spec.memory // PAGE
        where = f"snapshot of {key} from node {node}"
        await self._load_snapshots()
        cur = self._snap_rounds.get(key)
        if cur is None or cur.instance != instance or cur.number != number:
            base = self._snap_base.get(key)
            if number != 0 and (base is None or base.instance != instance
                                or base.round != number - 1):
                raise SnapRefused(f"{where}: round {number} does not follow the stored one: "
                                  "send every page again")
            self._drop_round(key)
            cur = self._snap_rounds[key] = _Round(instance, number)
        part = h.get(H_PART)
        if part == "all":  # a small snapshot in one message: its page chunks, then its state
            try:
                parts = _parts_decoder.decode(data)
            except msgspec.DecodeError:
                self._drop_round(key)
                raise SnapRefused(f"{where}: not a list of parts") from None
            try:
                trees = int(h.get(H_TREE, "0"))
            except ValueError:
                trees = -1
            if not parts or not 0 <= trees < len(parts):
                self._drop_round(key)
                raise SnapRefused(f"{where}: no state, or {h.get(H_TREE)!r} tree chunks")
            first_tree = len(parts) - 1 - trees
            for n, chunk in enumerate(parts[:-1]):
                await self._snap_part(key, cur, "tree" if n >= first_tree else "pages",
                                      chunk, max_pages, where, spec=rec.spec)
            return await self._snap_part(key, cur, "state", parts[-1], max_pages, where,
                                         p, rec.spec)
        await self._snap_part(key, cur, part, data, max_pages, where, p, rec.spec)

    async def _snap_part(self, key: str, cur: _Round, part: str | None, data: bytes,
                         max_pages: int, where: str, p: dict | None = None,
                         spec=None) -> None:
        from foglayer.snapshot import SnapshotError, decode_chunk

        number = cur.number
        if part == "pages":
            if len(data) > MAX_PAGE_CHUNK:
                raise SnapRefused(f"{where}: a chunk of {len(data)} bytes")
            try:
                head, pages = await asyncio.get_running_loop().run_in_executor(
                    None, lambda: decode_chunk(data, max_pages=max_pages, where=where))
            except SnapshotError as e:
                self._drop_round(key)
                raise SnapRefused(str(e)) from None
            if head.round != number or len(cur.pages) + len(pages) > max_pages:
                self._drop_round(key)
                raise SnapRefused(f"{where}: chunk of round {head.round}, or too many pages")
            for index, digest, raw in pages:
                cur.pages[index], cur.hashes[index] = raw, digest
            return
        if part == "tree":
            from foglayer.snapshot import TreeCollector

            if spec is None or not spec.dirs:
                self._drop_round(key)
                raise SnapRefused(f"{where}: volume files for an app without volumes")
            if cur.tree is None:
                cur.tree = TreeCollector(max_bytes=MAX_SNAP_FILES, where=f"{where}: volumes")
            if len(data) > MAX_PAGE_CHUNK:
                self._drop_round(key)
                raise SnapRefused(f"{where}: a volume chunk of {len(data)} bytes")
            try:
                blocks = await asyncio.get_running_loop().run_in_executor(
                    None, cur.tree.apply, data)
            except SnapshotError as e:
                self._drop_round(key)
                raise SnapRefused(str(e)) from None
            for d, raw in blocks.items():
                if d not in cur.pinned and d not in cur.held:
                    cur.held[d] = raw
                    cur.held_bytes += len(raw)
            if cur.held_bytes > HELD_BLOCKS:
                if self._snap_rounds.get(key) is not cur:
                    raise SnapRefused(f"{where}: round {number} was dropped meanwhile")
                held, cur.held, cur.held_bytes = cur.held, {}, 0
                await self._store_blocks(cur, held)
            return
        if part != "state":
            raise SnapRefused(f"{where}: unknown part {part!r}")
        self._snap_rounds.pop(key, None)
        try:
            await self._commit_snap(key, p, spec, cur, data, max_pages, where)
        finally:
            self._close_round(cur)  # (the record, if stored, holds what it names now)

    async def _store_blocks(self, cur: _Round, blocks: dict[str, bytes]) -> None:
        """A round's blocks into ``fog-snap-pages`` now, once by hash, pinned for the round
        until it commits or goes (a snapshot's files never wait in memory past HELD_BLOCKS)."""
        if not blocks:
            return
        obs = await self._store(SNAP_PAGES)
        async with self._pages_lock:
            new = {d: raw for d, raw in blocks.items()
                   if d not in cur.pinned and d not in self._stored_pages
                   and not self._page_refs[d]}
            packed = await asyncio.get_running_loop().run_in_executor(
                None, lambda: {d: zstandard.ZstdCompressor(level=1).compress(raw)
                               for d, raw in new.items()})
            await asyncio.gather(*(obs.put(d, data) for d, data in packed.items()))
            self._stored_pages.update(new)
            if cur.closed:  # dropped meanwhile: what it stored is garbage unless named
                self._page_garbage.update(d for d in new if not self._page_refs[d])
                return
            fresh = [d for d in blocks if d not in cur.pinned]
            self._page_refs.update(fresh)
            cur.pinned.update(fresh)

    async def _commit_snap(self, key: str, p: dict, spec, cur: _Round, state: bytes,
                           max_pages: int, where: str) -> None:
        from foglayer.snapshot import SnapshotError, map_digest, parse_snapshot

        if len(state) > MAX_SNAP_STATE:
            raise SnapRefused(f"{where}: a state of {len(state)} bytes")
        try:
            snap = parse_snapshot(state, f"{where}: state")
            meta = snap.meta
            snap.close()
        except SnapshotError as e:
            raise SnapRefused(str(e)) from None
        base = self._snap_base.get(key)
        pages = dict(base.pages) if cur.number and base is not None else {}
        for index, raw in cur.pages.items():
            if raw:
                pages[index] = cur.hashes[index]
            else:
                pages.pop(index, None)
        if (meta.kind != "service" or meta.module.digest != spec.digest
                or meta.stream_digest != map_digest(pages)
                or not 0 <= meta.memory.pages <= max_pages
                or any(i >= meta.memory.pages for i in pages)):
            raise SnapRefused(f"{where}: the state does not match its module or its pages")
        tree = self._snap_tree(cur, base if cur.number else None, where)
        obs = await self._store(SNAP_PAGES)
        compress = zstandard.ZstdCompressor(level=1).compress
        record = SnapRecord(p["app"], p["replica"], p["generation"], cur.instance, spec.digest,
                            cur.number, meta.memory.pages, pages, state, time.time(), tree)
        encoded = encode_record(record)
        if len(encoded) > MAX_RECORD:
            raise SnapRefused(f"{where}: a record of {len(encoded)} bytes, over {MAX_RECORD} "
                              "(too many pages, files or blocks)")
        named = {b for e in tree or () for b in e.blocks} if cur.held else set()
        async with self._pages_lock:
            new = {cur.hashes[i]: raw for i, raw in cur.pages.items()  # once by hash
                   if raw and cur.hashes[i] not in self._stored_pages
                   and not self._page_refs[cur.hashes[i]]}
            new.update((d, raw) for d, raw in cur.held.items()  # (what the record names)
                       if d in named and d not in self._stored_pages and not self._page_refs[d])
            # In parallel: an Object Store put is a few round trips of its own.
            await asyncio.gather(*(obs.put(d, compress(raw)) for d, raw in new.items()))
            self._stored_pages.update(new)
            await self.kv[SNAPSHOTS].put(key, encoded)
            self._set_base(key, record)

    def _snap_tree(self, cur: _Round, base: SnapRecord | None, where: str) -> list | None:
        """The round's volume manifest to record: every block it names came in this round
        (stored as it came) or is one the stored snapshot it follows names."""
        if cur.tree is None:  # (nothing about volumes came: they are as they were)
            return base.tree if base is not None else None
        from foglayer.snapshot import SnapshotError, block_lengths

        try:
            held = block_lengths([e for e in base.tree or () if not e.ref]) if base else {}
            manifest = cur.tree.finish(held)
        except SnapshotError as e:
            raise SnapRefused(str(e)) from None
        if sum(e.size for e in manifest) > MAX_VOLUME:
            raise SnapRefused(f"{where}: over {MAX_VOLUME} bytes of volumes (a durable "
                              "snapshot keeps that much)")
        return list(manifest)

    async def _forget_snapshot(self, key: str) -> None:
        """The replica is gone (app stopped, or scaled down): so is its last snapshot."""
        await self._load_snapshots()
        self._set_base(key, None)
        self._drop_round(key)
        try:
            await self.kv[SNAPSHOTS].delete(key)
        except Exception:  # noqa: BLE001 - there was none
            pass

    # -- restoring --------------------------------------------------------------------------

    async def _on_restore(self, msg) -> None:
        if not msg.reply or not self.lease.leader or not self.leader:
            return
        node = subject_node(msg.subject)
        try:
            req = decode_node(msg.subject, msg.data, RestoreRequest)
            data, headers = await self._restore_part(node, req)
        except (BadMessage, SnapRefused) as e:
            data, headers = b"", {H_ERROR: str(e)[:500]}
        except Exception as e:  # noqa: BLE001 - told to the node, whose start fails with it
            data, headers = b"", {H_ERROR: f"{type(e).__name__}: {e}"[:500]}
        await self.nc.publish(msg.reply, data, headers=headers)

    async def _last_snapshot(self, key: str) -> SnapRecord | None:
        await self._load_snapshots()
        return self._snap_base.get(key)

    def _restore_tree(self, snap: SnapRecord, obs, key: str) -> list[tuple[str, object]]:
        """The stored volumes as tree parts, each chunk built when asked for from the stored
        blocks; a record is untrusted too (checked before anything is fetched for it: paths
        inside the volume, block lists matching sizes; each block against its sha256)."""
        from foglayer.snapshot import TREE_BLOCK, SnapshotError, TreePlan

        if snap.tree is None:
            return []
        where = f"the stored snapshot of {key}"
        try:
            plan = TreePlan(snap.tree, where=where)
            if plan.size > MAX_VOLUME:
                raise SnapshotError(f"{where}: over {MAX_VOLUME} bytes of volumes")
        except SnapshotError as e:
            raise SnapRefused(str(e)) from None

        async def build(seq: int) -> bytes:
            needs = plan.needs(seq)  # (a chunk's worth: 4 MiB at most)
            got = await asyncio.gather(*(obs.get(sha) for sha in needs))

            def unpack() -> bytes:
                d = zstandard.ZstdDecompressor()
                return plan.chunk(seq, {sha: d.decompress(bytes(o.data or b""),
                                                          max_output_size=TREE_BLOCK)
                                        for sha, o in zip(needs, got, strict=True)})

            return await asyncio.get_running_loop().run_in_executor(None, unpack)

        return [("tree", functools.partial(build, seq)) for seq in range(plan.count)]

    async def _restore_part(self, node: str, req: RestoreRequest) -> tuple[bytes, dict]:
        from foglayer.snapshot import encode_chunk

        parts = self._restores.get(req.instance)
        if parts is None:
            if req.index != 0:
                raise SnapRefused(f"restore of {req.instance}: start from part 0")
            key, p, rec = self._snap_placement(node, req.instance)
            snap = await self._last_snapshot(key)
            if (snap is None or snap.generation != p["generation"]
                    or snap.digest != rec.spec.digest):
                return b"", {H_SNAPSHOT: "none"}  # a new deploy starts fresh
            obs = await self._store(SNAP_PAGES)
            indices = sorted(snap.pages)

            async def pages(n: int) -> bytes:
                mine = indices[n * SNAP_CHUNK_PAGES:(n + 1) * SNAP_CHUNK_PAGES]
                got = await asyncio.gather(*(obs.get(snap.pages[i]) for i in mine))
                group = [(i, snap.pages[i], bytes(o.data or b""))
                         for i, o in zip(mine, got, strict=True)]
                return encode_chunk(0, n, snap.memory_pages, group, "zstd")

            async def state() -> bytes:
                return snap.state

            parts = self._restore_tree(snap, obs, key)
            parts += [("pages", functools.partial(pages, n))
                      for n in range(max(1, -(-len(indices) // SNAP_CHUNK_PAGES)))]
            parts.append(("state", state))
            if len(self._restores) >= MAX_RESTORES:
                self._restores.pop(next(iter(self._restores)))
            self._restores[req.instance] = parts
            await self.event("restoring", f"{key} on {node} from its snapshot of "
                             f"{time.strftime('%H:%M:%S', time.localtime(snap.at))} "
                             f"({len(snap.pages)} pages)", app=p["app"], node=node)
        if req.index >= len(parts):
            raise SnapRefused(f"restore of {req.instance}: no part {req.index}")
        part, build = parts[req.index]
        if req.index == len(parts) - 1:
            self._restores.pop(req.instance, None)
        try:
            data = await build()  # type: ignore[operator]
        except SnapRefused:
            raise
        except Exception as e:  # noqa: BLE001 - a block missing from the store, or lying
            self._restores.pop(req.instance, None)
            raise SnapRefused(f"restore of {req.instance}: part {req.index}: "
                              f"{type(e).__name__}: {e}"[:500]) from None
        return data, {H_PART: part, H_CHUNK: f"{req.index}/{len(parts)}"}
