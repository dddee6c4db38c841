"""The node registry: heartbeats and status reports in, lost nodes out.

Everything a node sends is untrusted: it is decoded against its type (bounded fields), and a
message that does not fit is dropped, counted per node, and reported (a log line and a
``dropped`` event, at most every 10 s per node). One bad message, or one bad record in
``fog-nodes``, never stops a round.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from foglayer.cluster._bus import LONG_WATCH, watching
from foglayer.cluster._protocol import (
    CORDON,
    NODES,
    TRUST,
    BadMessage,
    Heartbeat,
    InstanceReport,
    NodeRecord,
    Status,
    StopRequest,
    decode,
    decode_node,
    site_echo,
    subject_node,
)

ACTIVE = ("scheduled", "starting", "running")
SITE_PROBE_TIMEOUT = 1.0
DROP_REPORT_EVERY = 10.0


class NodeRegistry:
    def _init_registry(self) -> None:
        self.nodes: dict[str, NodeRecord] = {}
        self.seen: dict[str, float] = {}  # node -> monotonic time of its last valid message
        self.hb: dict[str, Heartbeat] = {}  # node -> last heartbeat
        self.trusted: set[str] = set()  # the operator's word (fog-trust), never a node's
        self.cordoned: set[str] = set()  # nodes that take no new work (fog-cordon)
        self.dropped: Counter[str] = Counter()  # node -> messages dropped as malformed
        self._drop_reported: dict[str, float] = {}
        self._stopping: dict[str, float] = {}  # instance -> when we last told a node to stop it

    # -- messages in ----------------------------------------------------------------------

    async def _on_heartbeat(self, msg) -> None:
        await self._on_node(msg, Heartbeat)

    async def _on_status(self, msg) -> None:
        await self._on_node(msg, Status)

    async def _on_node(self, msg, typ: type) -> None:
        node = subject_node(msg.subject)  # the server lets only <node> publish here
        try:
            body = decode_node(msg.subject, msg.data, typ)
        except BadMessage as e:
            await self._drop(node, msg.subject, str(e))
            return
        self.seen[node] = time.monotonic()
        if isinstance(body, Heartbeat):
            self.hb[node] = body
        if not self.lease.leader or not self.leader:
            return
        try:
            if isinstance(body, Heartbeat):
                await self._heartbeat(node, body)
            else:
                await self._report(node, body.instance, body)
        except Exception as e:  # noqa: BLE001 - one message never stops the controller
            self.log(f"a message from node {node} failed: {type(e).__name__}: {e}")

    async def _drop(self, node: str, subject: str, reason: str) -> None:
        self.dropped[node] += 1
        now = time.monotonic()
        if now - self._drop_reported.get(node, -DROP_REPORT_EVERY) < DROP_REPORT_EVERY:
            return
        self._drop_reported[node] = now
        text = (f"dropped a message from node {node} on {subject}: {reason} "
                f"({self.dropped[node]} dropped from it so far)")
        if self.leader:
            await self.event("dropped", text, node=node, count=self.dropped[node])
        else:
            self.log(text)

    # -- the registry ---------------------------------------------------------------------

    def _load_nodes(self, raw: dict[str, bytes]) -> None:
        """The registry as stored; a record that does not decode is skipped (and reported)."""
        self.nodes = {}
        for name, value in raw.items():
            try:
                rec = decode(value, NodeRecord)
                if rec.name != name:
                    raise BadMessage(f"record of node {rec.name!r}")
            except BadMessage as e:
                self.log(f"skipped the stored record of node {name!r}: {e}")
                continue
            self.nodes[name] = rec

    async def _heartbeat(self, node: str, hb: Heartbeat) -> None:
        rec = self.nodes.get(node)
        restarted = rec is not None and rec.boot != hb.boot
        if rec is None or rec.state != "ready" or rec.caps != hb.caps or rec.boot != hb.boot:
            back = rec is not None and rec.state in ("lost", "unreachable")
            rec = NodeRecord(node, hb.caps, "ready", hb.boot, time.time(),
                             rec.joined if rec is not None else time.time())
            self.nodes[node] = rec
            await self._put(NODES, node, rec)
            c = hb.caps
            labels = ",".join(f"{k}={v}" for k, v in c.labels.items()) or "-"
            await self.event("node", f"node {node} {'is back' if back else 'joined'} ({c.arch}, "
                             f"{c.cpus} cpus, {c.max_memory >> 20} MiB for apps, labels {labels}"
                             f"{', claims TEE ' + ','.join(c.tee) if c.tee else ''})", node=node)
            self._dirty.set()
        if hb.caps.tee and hb.caps.tee_key:
            await self._on_tee(node, hb.caps.tee[0], hb.caps.tee_key)
        for iid, rep in hb.instances.items():
            await self._report(node, iid, rep)
        now = time.monotonic()
        for key, p in list(self.placements.items()):
            if p.get("node") != node or p["instance"] in hb.instances or p["state"] not in ACTIVE:
                continue
            if not restarted and now - self._sent.get(p["instance"], 0) < self.cfg.start_grace:
                continue  # (a node that restarted cannot hold what it held before)
            if p["state"] == "running":
                await self._set(key, p, state="failed", error="the instance vanished from its "
                                "node (the node restarted?)", ended=time.time())
                await self.event("failed", f"{key} vanished from node {node}", app=p["app"],
                                 node=node)
            else:
                self._send_start(p)  # the node never got it: say it again

    async def _report(self, node: str, iid: str, rep: InstanceReport) -> None:
        if iid in self._moving:
            return  # a live move's new copy: its placement is written when the move commits
        key = f"{rep.app}.{rep.replica}"
        p = self.placements.get(key)
        if p is None or p["instance"] != iid or p.get("node") != node:
            now = time.monotonic()
            if now - self._stopping.get(iid, 0) > self.cfg.start_grace:
                self._stopping[iid] = now
                asyncio.create_task(self._request(node, "stop", StopRequest(iid)))
            return
        if rep.held:  # frozen by a move: this is the live copy (the placement says so)
            asyncio.create_task(self._resolve_held(node, iid, rep.held))
        state = rep.state
        if p["state"] == state or (p["state"] in ("failed", "exited") and state in ACTIVE):
            return
        changes = {"state": state, "exit_code": rep.exit_code, "error": rep.error}
        if state == "running":
            changes["running_at"] = time.time()
        if state in ("exited", "failed"):
            changes["ended"] = rep.ended or time.time()
        await self._set(key, p, **changes)
        if state == "running":
            app = self.apps.get(p["app"])
            self.metrics.on_running(p, app.deployed_at if app is not None
                                    and app.generation == p.get("generation") else None)
            took = changes["running_at"] - p.get("scheduled_at", changes["running_at"])
            moved = ""
            if p.get("moved_from"):
                since = changes["running_at"] - (p.get("lost_at") or p["scheduled_at"])
                moved = f" (moved from {p['moved_from']}, {since:.2f} s after it was lost)"
            await self.event("running", f"{key} running on {node}{moved}, "
                             f"{1000 * took:.0f} ms after placement", app=p["app"], node=node)
        elif state == "exited":
            await self.event("exited", f"{key} exited with code {rep.exit_code} on {node}",
                             app=p["app"], node=node)
        elif state == "failed":
            await self.event("failed", f"{key} failed on {node}: {rep.error}", app=p["app"],
                             node=node)

    async def _mark_lost(self) -> None:
        """Silent nodes are lost, unless their whole site is out of reach: then they are
        *unreachable* (a partition looks like that from here), and their apps stay put unless
        their policy says otherwise (``on_partition``)."""
        now = time.monotonic()
        silent: dict[str, float] = {}
        for name, rec in self.nodes.items():
            quiet = now - self.seen.get(name, self._started)
            if rec.state == "ready" and quiet > self.cfg.node_timeout:
                silent[name] = quiet
        reachable: dict[str, bool] = {}
        for name, quiet in silent.items():
            rec = self.nodes[name]
            hb = self.hb.get(name)
            # Only a node behind a leaf link can be cut off while alive; one on the hub's own
            # servers that goes silent is lost.
            site = rec.caps.labels.get("site") if hb is not None and hb.leaf else None
            if site and site not in reachable:
                reachable[site] = await self._site_answers(site)
            if site and not reachable[site]:
                rec.state, rec.since = "unreachable", time.time()
                await self._put(NODES, name, rec)
                await self.event("node", f"node {name} unreachable (silent for {quiet:.1f} s; "
                                 f"site {site} does not answer: a partition?)", node=name, site=site)
                continue
            rec.state, rec.since = "lost", time.time()
            await self._put(NODES, name, rec)
            await self.event("node", f"node {name} lost (silent for {quiet:.1f} s)", node=name)

    async def _site_answers(self, site: str) -> bool:
        """Whether anyone at ``site`` answers its echo (another node, or fog up's sentinel)."""
        try:
            await self.nc.request(site_echo(site), b"", timeout=SITE_PROBE_TIMEOUT)
            return True
        except Exception:  # noqa: BLE001 - no responders, a timeout: the site is out of reach
            return False

    # -- trust ----------------------------------------------------------------------------

    async def _watch_trust(self) -> None:
        """Follow ``fog-trust``: the nodes the operator trusts (``fog node trust``)."""
        await self._watch_names(TRUST, self.trusted, "trust")

    async def _watch_cordon(self) -> None:
        """Follow ``fog-cordon``: the nodes that take no new work (``fog drain``)."""
        await self._watch_names(CORDON, self.cordoned, "cordon")

    async def _watch_names(self, bucket: str, names: set[str], what: str) -> None:
        """Keep ``names`` equal to the keys of ``bucket``."""
        while True:
            try:
                async with watching(self.kv[bucket], idle=LONG_WATCH) as watcher:
                    async for entry in watcher:
                        if entry is None:
                            continue
                        if entry.operation in ("DEL", "PURGE") or not entry.value:
                            names.discard(entry.key)
                        else:
                            names.add(entry.key)
                        self._dirty.set()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - re-watch after a reconnect
                self.log(f"{what} watch restarted: {e}")
                await asyncio.sleep(0.5)
