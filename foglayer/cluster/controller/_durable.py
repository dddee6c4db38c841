"""The controller's side of durable services (see :mod:`.._durable`).

It takes a node's snapshot rounds only for the instance its placement names on that node; every
chunk is checked whole by the snapshot package (sizes, each page's hash) and the state against
the page map the rounds make (its ``stream_digest``), before anything is stored. Pages go into
the ``fog-snap-pages`` Object Store under their hash, once; the record of the last snapshot of
each ``<app>.<replica>`` into the ``fog-snapshots`` KV bucket. Volume files come as tree rounds
(checked whole by the snapshot package, each file against its sha256, the manifest's paths
inside the volume) and are stored the same way, once per content, under their sha256; the
record keeps the manifest. A starting instance of the same deploy gets it back, chunk by
chunk, rebuilt from the stored pages and files (the node checks every hash again).
"""

from __future__ import annotations

import asyncio
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
MAX_RESTORES = 64  # restores served at once (each holds its rebuilt chunks)


class SnapRefused(Exception):
    pass


@dataclass
class _Round:
    instance: str
    number: int
    pages: dict[int, bytes] = field(default_factory=dict)  # index -> raw (b"": now zero)
    hashes: dict[int, str] = field(default_factory=dict)
    tree: object | None = None  # a TreeCollector of its volume files, if any came


class Durable:
    def _init_durable(self) -> None:
        self._snap_base: dict[str, SnapRecord] = {}  # <app>.<replica> -> the last stored
        self._snap_rounds: dict[str, _Round] = {}  # <app>.<replica> -> the round coming in
        self._stored_pages: set[str] = set()  # page hashes known to be in fog-snap-pages
        self._restores: dict[str, list[tuple[str, bytes]]] = {}  # instance -> parts
        self._snap_stores: dict[str, object] = {}
        # Page hash -> how many stored records name it; a page no record names is garbage,
        # deleted by the reconcile loop (under the lock that also guards storing pages).
        self._page_refs: Counter[str] = Counter()
        self._page_garbage: set[str] = set()
        self._pages_lock = asyncio.Lock()
        self._snaps_loaded = False

    def _reset_snapshots(self) -> None:
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

        for key, data in (await kv_snapshot(self.kv[SNAPSHOTS])).items():
            try:
                rec = decode_record(data)
            except Exception:  # noqa: BLE001 - a record that does not decode restores nothing
                self.log(f"snapshot record {key}: does not decode; ignored")
                continue
            if key not in self._snap_base:
                self._set_base(key, rec)
        self._snaps_loaded = True

    def _set_base(self, key: str, rec: SnapRecord | None) -> None:
        old = self._snap_base.pop(key, None)
        if rec is not None:
            self._snap_base[key] = rec
            self._page_refs.update(rec.blobs())
        if old is not None:
            self._page_refs.subtract(old.blobs())
            for digest in set(old.blobs()):
                if self._page_refs[digest] <= 0:
                    del self._page_refs[digest]
                    self._page_garbage.add(digest)

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
                await asyncio.gather(*(obs.delete(d) for d in gone[k:k + 64]),
                                     return_exceptions=True)  # (gone already: fine)

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
            cur = self._snap_rounds[key] = _Round(instance, number)
        part = h.get(H_PART)
        if part == "all":  # a small snapshot in one message: its page chunks, then its state
            try:
                parts = _parts_decoder.decode(data)
            except msgspec.DecodeError:
                self._snap_rounds.pop(key, None)
                raise SnapRefused(f"{where}: not a list of parts") from None
            try:
                trees = int(h.get(H_TREE, "0"))
            except ValueError:
                trees = -1
            if not parts or not 0 <= trees < len(parts):
                self._snap_rounds.pop(key, None)
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
                self._snap_rounds.pop(key, None)
                raise SnapRefused(str(e)) from None
            if head.round != number or len(cur.pages) + len(pages) > max_pages:
                self._snap_rounds.pop(key, None)
                raise SnapRefused(f"{where}: chunk of round {head.round}, or too many pages")
            for index, digest, raw in pages:
                cur.pages[index], cur.hashes[index] = raw, digest
            return
        if part == "tree":
            from foglayer.snapshot import TreeCollector

            if spec is None or not spec.dirs:
                self._snap_rounds.pop(key, None)
                raise SnapRefused(f"{where}: volume files for an app without volumes")
            if cur.tree is None:
                cur.tree = TreeCollector(max_bytes=MAX_SNAP_FILES, where=f"{where}: volumes")
            try:
                await asyncio.get_running_loop().run_in_executor(None, cur.tree.apply, data)
            except SnapshotError as e:
                self._snap_rounds.pop(key, None)
                raise SnapRefused(str(e)) from None
            return
        if part != "state":
            raise SnapRefused(f"{where}: unknown part {part!r}")
        self._snap_rounds.pop(key, None)
        await self._commit_snap(key, p, spec, cur, data, max_pages, where)

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
        tree, files = self._snap_tree(cur, base if cur.number else None, where)
        obs = await self._store(SNAP_PAGES)
        compress = zstandard.ZstdCompressor(level=1).compress
        record = SnapRecord(p["app"], p["replica"], p["generation"], cur.instance, spec.digest,
                            cur.number, meta.memory.pages, pages, state, time.time(), tree)
        async with self._pages_lock:
            new = {cur.hashes[i]: raw for i, raw in cur.pages.items()  # once by hash
                   if raw and cur.hashes[i] not in self._stored_pages
                   and not self._page_refs[cur.hashes[i]]}
            new.update((d, raw) for d, raw in files.items()
                       if d not in self._stored_pages and not self._page_refs[d])
            # In parallel: an Object Store put is a few round trips of its own.
            await asyncio.gather(*(obs.put(d, compress(raw)) for d, raw in new.items()))
            self._stored_pages.update(new)
            await self.kv[SNAPSHOTS].put(key, encode_record(record))
            self._set_base(key, record)

    def _snap_tree(self, cur: _Round, base: SnapRecord | None,
                   where: str) -> tuple[list | None, dict[str, bytes]]:
        """The round's volumes: the manifest to record and the files to store. A file that
        did not come must be one the stored snapshot it follows already holds."""
        if cur.tree is None:  # (nothing about volumes came: they are as they were)
            return (base.tree if base is not None else None), {}
        from foglayer.snapshot import SnapshotError

        try:
            files = cur.tree.blobs()
        except SnapshotError as e:
            raise SnapRefused(str(e)) from None
        if sum(e.size for e in cur.tree.manifest) > MAX_VOLUME:
            raise SnapRefused(f"{where}: over {MAX_VOLUME} bytes of volumes (a durable "
                              "snapshot keeps that much)")
        held = {e.ref for e in (base.tree or ()) if e.kind == "file"} if base else set()
        lacking = [e.path for e in cur.tree.manifest
                   if e.kind == "file" and e.ref not in files and e.ref not in held]
        if lacking:
            raise SnapRefused(f"{where}: volume file {lacking[0][:200]!r} neither came nor "
                              "is stored: send every file again")
        return list(cur.tree.manifest), files

    async def _forget_snapshot(self, key: str) -> None:
        """The replica is gone (app stopped, or scaled down): so is its last snapshot."""
        await self._load_snapshots()
        self._set_base(key, None)
        self._snap_rounds.pop(key, None)
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

    async def _restore_tree(self, snap: SnapRecord, obs, key: str) -> list[bytes]:
        """The stored volumes as tree chunks; a record is untrusted too (its manifest must
        stay inside the volume, each file match its sha256)."""
        from foglayer.snapshot import SnapshotError, tree_chunks

        if snap.tree is None:
            return []
        where = f"the stored snapshot of {key}"
        try:
            from foglayer.snapshot import check_manifest

            check_manifest(snap.tree, where)  # (before anything is fetched for it)
            if sum(e.size for e in snap.tree) > MAX_VOLUME:
                raise SnapshotError(f"{where}: over {MAX_VOLUME} bytes of volumes")
            blobs = {}
            for e in snap.tree:
                if e.kind == "file" and e.ref not in blobs:
                    raw = bytes((await obs.get(e.ref)).data or b"")
                    blobs[e.ref] = zstandard.ZstdDecompressor().decompress(
                        raw, max_output_size=max(e.size, 1)) if raw else b""
            return tree_chunks(snap.tree, lambda sha, size: blobs[sha], where=where)
        except (SnapshotError, zstandard.ZstdError) as e:
            raise SnapRefused(str(e)) from None
        except Exception as e:  # noqa: BLE001 - a file missing from the store
            raise SnapRefused(f"{where}: {type(e).__name__}: {e}") from None

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
            stored = []
            for index in sorted(snap.pages):
                digest = snap.pages[index]
                stored.append((index, digest, bytes((await obs.get(digest)).data or b"")))
            groups = [stored[i:i + SNAP_CHUNK_PAGES]
                      for i in range(0, len(stored), SNAP_CHUNK_PAGES)] or [[]]
            parts = [("tree", c) for c in await self._restore_tree(snap, obs, key)]
            parts += [("pages", encode_chunk(0, n, snap.memory_pages, g, "zstd"))
                      for n, g in enumerate(groups)] + [("state", snap.state)]
            if len(self._restores) >= MAX_RESTORES:
                self._restores.pop(next(iter(self._restores)))
            self._restores[req.instance] = parts
            await self.event("restoring", f"{key} on {node} from its snapshot of "
                             f"{time.strftime('%H:%M:%S', time.localtime(snap.at))} "
                             f"({len(snap.pages)} pages)", app=p["app"], node=node)
        if req.index >= len(parts):
            raise SnapRefused(f"restore of {req.instance}: no part {req.index}")
        part, data = parts[req.index]
        if req.index == len(parts) - 1:
            self._restores.pop(req.instance, None)
        return data, {H_PART: part, H_CHUNK: f"{req.index}/{len(parts)}"}
