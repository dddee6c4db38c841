"""The controller: keeps the desired state and makes it true.

All of its state lives in JetStream KV: apps (``fog-apps``, written by ``fog deploy``/``stop``),
placements (``fog-placements``, key ``<app>.<replica>``), the node registry (``fog-nodes``),
the scheduler's decisions (``fog-decisions``) and the nodes the operator trusts
(``fog-trust``). A restarted controller reads them back and carries on: it neither loses nor
duplicates an instance, because every instance has an id that the nodes report in their
heartbeats, and the controller stops any instance that no placement names.

Several controllers may run; the lease (:mod:`.._lease`) makes one the leader. Standbys follow
the nodes' heartbeats too, so a new leader knows at once which nodes are alive.

The class is assembled from one part per job: :class:`NodeRegistry` (heartbeats in, lost
nodes out), :class:`Reconciler` (the loop), :class:`Placement` (scheduler and start
requests), :class:`Modules` (module hand-out and collection), :class:`Sealing` (data keys of
sealed snapshot files), :class:`Events`.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec
from nats.js.errors import KeyNotFoundError

from foglayer.cluster._bus import LONG_WATCH, Creds, connect, ensure_state, kv_snapshot, watching
from foglayer.cluster._lease import Lease
from foglayer.cluster._protocol import (
    ALL_HB,
    ALL_MODULE,
    ALL_STATUS,
    APPS,
    DECISIONS,
    JS_DOMAIN,
    LEADER,
    NODES,
    PLACEMENTS,
    BadMessage,
    PlacementRecord,
    decode,
    encode,
)
from foglayer.cluster._spec import AppRecord
from foglayer.cluster.controller._attest import Attesting
from foglayer.cluster.controller._durable import Durable
from foglayer.cluster.controller._events import Events
from foglayer.cluster.controller._metrics import ControllerMetrics
from foglayer.cluster.controller._modules import Modules
from foglayer.cluster.controller._move import MOVE_SUBJECT, Mover
from foglayer.cluster.controller._placement import Placement
from foglayer.cluster.controller._reconcile import Reconciler
from foglayer.cluster.controller._registry import NodeRegistry
from foglayer.cluster.controller._sealing import Sealing

APPS_RESYNC = 3.0  # seconds between full reads of the desired state


@dataclass
class ControllerConfig:
    server: str | None = None
    creds: Creds | None = None
    name: str | None = None
    node_timeout: float = 5.0  # a node silent this long is lost
    lease_ttl: float = 5.0  # a leader silent this long is replaced
    tick: float = 0.25
    start_grace: float = 3.0  # how long a started instance may be missing from heartbeats
    module_grace: float = 60.0  # how long an unused module stays in the Object Store
    settle: float = 60.0  # how long an app stays where the controller moved it (no flapping)
    log: bool = True
    trust_dir: Path | None = None  # the controller's signing and master keys (foglayer.trust)
    metrics_port: int | None = None  # Prometheus metrics on 127.0.0.1 (0: a free port)


class Controller(NodeRegistry, Reconciler, Placement, Modules, Mover, Durable, Attesting,
                 Sealing, Events):
    def __init__(self, cfg: ControllerConfig) -> None:
        self.cfg = cfg
        self.id = cfg.name or f"controller-{secrets.token_hex(3)}"
        self.apps: dict[str, AppRecord] = {}
        self._bad_apps: set[str] = set()  # app keys whose record does not decode
        self._missing_apps: set[str] = set()  # absent from the last full read (_resync_apps)
        self.placements: dict[str, dict] = {}
        self.decisions: dict[str, dict] = {}
        self._sent: dict[str, float] = {}  # instance -> monotonic time of the last start sent
        self._dirty = asyncio.Event()
        self._started = time.monotonic()
        self.leader = False
        self._init_registry()
        self._init_modules()
        self._init_moves()
        self._init_durable()
        self._init_attest()
        self._init_sealing()
        self.metrics = ControllerMetrics(self)

    # -- state ----------------------------------------------------------------------------

    async def _put(self, bucket: str, key: str, value) -> None:
        if self.lease.leader:  # a deposed leader writes nothing
            await self.kv[bucket].put(key, encode(value))

    async def _delete(self, bucket: str, key: str) -> None:
        if self.lease.leader:
            try:
                await self.kv[bucket].delete(key)
            except KeyNotFoundError:
                pass

    # -- main loop --------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        self.nc = await connect(self.cfg.server, self.cfg.creds, name=f"fog-{self.id}")
        try:
            self.js = self.nc.jetstream(domain=JS_DOMAIN)
            self.kv = await ensure_state(self.js)
            self.lease = Lease(self.kv[LEADER], self.id, self.cfg.lease_ttl)
            await self.nc.subscribe(ALL_HB, cb=self._on_heartbeat)
            await self.nc.subscribe(ALL_STATUS, cb=self._on_status)
            await self.nc.subscribe(ALL_MODULE, cb=self._on_module)
            await self.nc.subscribe(MOVE_SUBJECT, cb=self._on_move)
            await self._subscribe_durable()
            await self._subscribe_sealing()
            watches = [asyncio.create_task(self._watch_apps()),
                       asyncio.create_task(self._resync_apps()),
                       asyncio.create_task(self._watch_trust()),
                       asyncio.create_task(self._watch_cordon()),
                       asyncio.create_task(self._watch_policy())]
            self.log(f"started (lease ttl {self.cfg.lease_ttl:g} s, node timeout "
                     f"{self.cfg.node_timeout:g} s)")
            if self.cfg.metrics_port is not None:
                port = self.metrics.serve(self.cfg.metrics_port)
                self.log(f"metrics on http://127.0.0.1:{port}/metrics")
            while not stop.is_set():
                try:
                    await self._round()
                except Exception as e:  # noqa: BLE001 - a failed round is retried
                    self.log(f"round failed: {type(e).__name__}: {e}")
                self._dirty.clear()
                stopped = asyncio.ensure_future(stop.wait())
                dirty = asyncio.ensure_future(self._dirty.wait())
                await asyncio.wait({stopped, dirty}, timeout=self.cfg.tick,
                                   return_when=asyncio.FIRST_COMPLETED)
                for f in (stopped, dirty):
                    f.cancel()
            for w in watches:
                w.cancel()
        finally:
            try:
                if getattr(self, "lease", None) is not None:
                    await self.lease.release()
                await self.nc.drain()
            except Exception:  # noqa: BLE001
                pass

    async def _round(self) -> None:
        was = self.lease.leader
        leader = await self.lease.step()
        if leader and not was:
            await self._take_over()
        elif was and not leader:
            self.leader = False
            self.log("lost the lease: standing by")
        if leader:
            await self._reconcile()

    async def _take_over(self) -> None:
        t0 = time.monotonic()
        self._load_nodes(await kv_snapshot(self.kv[NODES]))
        self.placements = _records(await kv_snapshot(self.kv[PLACEMENTS]), self.log, "placement",
                                   PlacementRecord)
        self.decisions = _records(await kv_snapshot(self.kv[DECISIONS]), self.log, "decision")
        await self._load_attest()
        self._reset_snapshots()  # (read afresh when first needed: another leader wrote them)
        now = time.monotonic()
        for name in self.nodes:  # a node we have not heard yet gets a whole timeout
            self.seen.setdefault(name, now)
        for p in self.placements.values():
            self._sent.setdefault(p["instance"], now)
        self.leader = True
        await self.event("leader", f"{self.id} leads ({len(self.placements)} placements, "
                         f"{len(self.nodes)} nodes loaded in "
                         f"{1000 * (time.monotonic() - t0):.0f} ms)", leader=self.id)

    async def _watch_apps(self) -> None:
        while True:
            try:
                async with watching(self.kv[APPS], idle=LONG_WATCH) as watcher:
                    async for entry in watcher:
                        if entry is None:
                            continue
                        deleted = entry.operation in ("DEL", "PURGE")
                        self._apply_app(entry.key, None if deleted else entry.value)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - re-watch after a reconnect
                self.log(f"app watch restarted: {e}")
                await asyncio.sleep(0.5)

    def _apply_app(self, key: str, value: bytes | None) -> None:
        """One app's record as stored (None: deleted) into the desired state."""
        self._bad_apps.discard(key)
        if value is None:
            if self.apps.pop(key, None) is not None:
                self._dirty.set()
            return
        try:
            rec = decode(value, AppRecord)
            if rec.spec.name != key:
                raise BadMessage(f"the spec of app {rec.spec.name!r}")
        except BadMessage as e:
            self._bad_apps.add(key)
            self.log(f"ignored the record of app {key!r}: {e}")
            return
        old = self.apps.get(key)
        if old is not None and (rec.generation < old.generation or (
                old.generation == rec.generation and old.deployed_at == rec.deployed_at)):
            return  # nothing new (a resync may read a record older than the watch's)
        if old is not None and old.generation != rec.generation:
            self._prev_specs[key] = (old.generation, old.spec)
        self.apps[key] = rec
        self._dirty.set()

    async def _resync_apps(self) -> None:
        """Read the whole desired state again now and then: a watch whose server died can go
        quiet without an error (its ephemeral consumer lived there), and a deploy must not
        wait on it."""
        while True:
            await asyncio.sleep(APPS_RESYNC)
            try:
                raw = await kv_snapshot(self.kv[APPS])
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the next round tries again
                continue
            # An app missing from two reads in a row is gone (one read may predate a deploy
            # that the watch already brought).
            missing = set(self.apps) - set(raw)
            for key in missing & self._missing_apps:
                self._apply_app(key, None)
            self._missing_apps = missing
            for key, value in raw.items():
                self._apply_app(key, value)


def _records(raw: dict[str, bytes], log, what: str, typ: type | None = None) -> dict[str, dict]:
    """The stored records of a bucket as dicts; one that is not a JSON object (or does not fit
    ``typ``, or is stored under another key) is skipped with a log line."""
    out = {}
    for k, v in raw.items():
        try:
            rec = decode(v, dict)
            if typ is not None:
                checked = msgspec.convert(rec, typ)
                if f"{checked.app}.{checked.replica}" != k:
                    raise BadMessage(f"stored as {k!r}, names {checked.app}.{checked.replica}")
        except (BadMessage, msgspec.ValidationError) as e:
            log(f"skipped the stored {what} {k!r}: {str(e).splitlines()[0] if str(e) else e}")
            continue
        out[k] = rec
    return out


def run_controller(cfg: ControllerConfig) -> None:
    """Run a controller in this process until SIGINT/SIGTERM (``fog controller``)."""
    from foglayer.cluster._proc import run_until_signal

    run_until_signal(lambda stop: Controller(cfg).run(stop))
