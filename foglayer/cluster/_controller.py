"""The controller: keeps the desired state and makes it true.

All of its state lives in JetStream KV: apps (``fog-apps``, written by ``fog deploy``/``stop``),
placements (``fog-placements``, key ``<app>.<replica>``), the node registry (``fog-nodes``) and
the scheduler's decisions (``fog-decisions``). A restarted controller reads them back and
carries on: it neither loses nor duplicates an instance, because every instance has an id
that the nodes report in their heartbeats, and the controller stops any instance that no
placement names.

Several controllers may run; the lease (:mod:`._lease`) makes one the leader. Standbys follow
the nodes' heartbeats too, so a new leader knows at once which nodes are alive.

The loop (every ``tick`` and on every change): mark nodes silent for ``node_timeout`` lost;
for each app and replica, place what has no placement, move what sits on a lost node, restart
what failed (per the restart policy, with exponential back-off), replace what an update made
stale; stop and delete what no app wants any more.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import time
from dataclasses import dataclass

from nats.js.errors import KeyNotFoundError

from foglayer.cluster._bus import (
    APPS,
    DECISIONS,
    EVENTS,
    LEADER,
    NODES,
    PLACEMENTS,
    Creds,
    connect,
    ensure_state,
    node_cmd,
)
from foglayer.cluster._lease import Lease
from foglayer.cluster._manifest import app_memory
from foglayer.cluster._scheduler import NodeView, schedule

ACTIVE = ("scheduled", "starting", "running")


@dataclass
class ControllerConfig:
    server: str | None = None
    creds: Creds | None = None
    name: str | None = None
    node_timeout: float = 5.0  # a node silent this long is lost
    lease_ttl: float = 5.0  # a leader silent this long is replaced
    tick: float = 0.25
    start_grace: float = 3.0  # how long a started instance may be missing from heartbeats
    log: bool = True


async def kv_snapshot(kv) -> dict[str, bytes]:
    """Every live key of a bucket and its value (one watcher, not a get per key)."""
    out: dict[str, bytes] = {}
    watcher = await kv.watchall()
    try:
        while True:
            entry = await watcher.updates(timeout=5.0)
            if entry is None:
                break
            if entry.operation in ("DEL", "PURGE"):
                out.pop(entry.key, None)
            else:
                out[entry.key] = entry.value
            if entry.delta == 0:
                break
    finally:
        await watcher.stop()
    return out


class Controller:
    def __init__(self, cfg: ControllerConfig) -> None:
        self.cfg = cfg
        self.id = cfg.name or f"controller-{secrets.token_hex(3)}"
        self.apps: dict[str, dict] = {}
        self.nodes: dict[str, dict] = {}
        self.placements: dict[str, dict] = {}
        self.decisions: dict[str, dict] = {}
        self.seen: dict[str, float] = {}  # node -> monotonic time of its last heartbeat
        self.hb: dict[str, dict] = {}  # node -> last heartbeat
        self._sent: dict[str, float] = {}  # instance -> monotonic time of the last start sent
        self._stopping: dict[str, float] = {}  # instance -> when we last told a node to stop it
        self._dirty = asyncio.Event()
        self._started = time.monotonic()
        self.leader = False

    # -- plumbing ---------------------------------------------------------------------------

    def log(self, text: str) -> None:
        if self.cfg.log:
            print(f"{time.strftime('%H:%M:%S')} {self.id}: {text}", file=sys.stderr, flush=True)

    async def event(self, kind: str, message: str, **fields) -> None:
        self.log(message)
        body = {"time": time.time(), "kind": kind, "message": message, "controller": self.id, **fields}
        try:
            await self.nc.publish(f"{EVENTS}.{kind}", json.dumps(body).encode())
        except Exception:  # noqa: BLE001 - events are best effort
            pass

    async def _put(self, bucket: str, key: str, value: dict) -> None:
        if self.lease.leader:  # a deposed leader writes nothing
            await self.kv[bucket].put(key, json.dumps(value).encode())

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
            self.js = self.nc.jetstream()
            self.kv = await ensure_state(self.js)
            self.lease = Lease(self.kv[LEADER], self.id, self.cfg.lease_ttl)
            await self.nc.subscribe("fog.node.*.hb", cb=self._on_node)
            await self.nc.subscribe("fog.node.*.status", cb=self._on_node)
            watch = asyncio.create_task(self._watch_apps())
            self.log(f"started (lease ttl {self.cfg.lease_ttl:g} s, node timeout "
                     f"{self.cfg.node_timeout:g} s)")
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
            watch.cancel()
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
        nodes = await kv_snapshot(self.kv[NODES])
        placements = await kv_snapshot(self.kv[PLACEMENTS])
        decisions = await kv_snapshot(self.kv[DECISIONS])
        self.nodes = {k: json.loads(v) for k, v in nodes.items()}
        self.placements = {k: json.loads(v) for k, v in placements.items()}
        self.decisions = {k: json.loads(v) for k, v in decisions.items()}
        now = time.monotonic()
        for name in self.nodes:  # a node we have not heard yet gets a whole timeout
            self.seen.setdefault(name, now)
        for p in self.placements.values():
            self._sent.setdefault(p["instance"], now)
        self.leader = True
        await self.event("leader", f"{self.id} leads ({len(self.placements)} placements, "
                         f"{len(self.nodes)} nodes loaded in {1000 * (time.monotonic() - t0):.0f} ms)",
                         leader=self.id)

    async def _watch_apps(self) -> None:
        while True:
            try:
                watcher = await self.kv[APPS].watchall()
                async for entry in watcher:
                    if entry is None:
                        continue
                    if entry.operation in ("DEL", "PURGE"):
                        self.apps.pop(entry.key, None)
                    else:
                        try:
                            self.apps[entry.key] = json.loads(entry.value)
                        except ValueError:
                            continue
                    self._dirty.set()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - re-watch after a reconnect
                self.log(f"app watch restarted: {e}")
                await asyncio.sleep(0.5)

    # -- nodes ------------------------------------------------------------------------------

    async def _on_node(self, msg) -> None:
        node = msg.subject.split(".")[2]  # the server guarantees only <node> publishes here
        try:
            body = json.loads(msg.data)
        except ValueError:
            return
        if body.get("name") != node:
            self.log(f"ignored a message on {msg.subject} claiming to be node {body.get('name')!r}")
            return
        self.seen[node] = time.monotonic()
        if msg.subject.endswith(".hb"):
            self.hb[node] = body
        if not self.lease.leader or not self.leader:
            return
        if msg.subject.endswith(".hb"):
            await self._heartbeat(node, body)
        else:
            await self._report(node, body["instance"], body)

    async def _heartbeat(self, node: str, hb: dict) -> None:
        rec = self.nodes.get(node)
        restarted = rec is not None and rec.get("boot") != hb["boot"]
        if rec is None or rec.get("state") != "ready" or rec.get("caps") != hb["caps"] \
                or rec.get("boot") != hb["boot"]:
            back = rec is not None and rec.get("state") == "lost"
            rec = {"name": node, "caps": hb["caps"], "state": "ready", "boot": hb["boot"],
                   "since": time.time(), "joined": (rec or {}).get("joined", time.time())}
            self.nodes[node] = rec
            await self._put(NODES, node, rec)
            what = "is back" if back else "joined"
            c = hb["caps"]
            await self.event("node", f"node {node} {what} ({c['arch']}, {c['cpus']} cpus, "
                             f"{c['max_memory'] >> 20} MiB for apps, labels "
                             f"{','.join(f'{k}={v}' for k, v in c['labels'].items()) or '-'})", node=node)
            self._dirty.set()
        reported = hb.get("instances", {})
        for iid, rep in reported.items():
            await self._report(node, iid, rep)
        now = time.monotonic()
        for key, p in list(self.placements.items()):
            if p.get("node") != node or p["instance"] in reported or p["state"] not in ACTIVE:
                continue
            if not restarted and now - self._sent.get(p["instance"], 0) < self.cfg.start_grace:
                continue  # (a node that restarted cannot hold what it held before)
            if p["state"] == "running":
                await self._set(key, p, state="failed", error="the instance vanished from its "
                                "node (the node restarted?)", ended=time.time())
                await self.event("failed", f"{key} vanished from node {node}", app=p["app"], node=node)
            else:
                self._send_start(p)  # the node never got it: say it again

    async def _report(self, node: str, iid: str, rep: dict) -> None:
        key = f"{rep.get('app')}.{rep.get('replica')}"
        p = self.placements.get(key)
        if p is None or p["instance"] != iid or p.get("node") != node:
            now = time.monotonic()
            if now - self._stopping.get(iid, 0) > self.cfg.start_grace:
                self._stopping[iid] = now
                asyncio.create_task(self._request(node, "stop", {"instance": iid}))
            return
        state = rep["state"]
        if p["state"] == state or (p["state"] in ("failed", "exited") and state in ACTIVE):
            return
        changes = {"state": state, "exit_code": rep.get("exit_code"), "error": rep.get("error")}
        if state == "running":
            changes["running_at"] = time.time()
        if state in ("exited", "failed"):
            changes["ended"] = rep.get("ended") or time.time()
        await self._set(key, p, **changes)
        if state == "running":
            took = changes["running_at"] - p.get("scheduled_at", changes["running_at"])
            moved = ""
            if p.get("moved_from"):
                since = changes["running_at"] - (p.get("lost_at") or p["scheduled_at"])
                moved = f" (moved from {p['moved_from']}, {since:.2f} s after it was lost)"
            await self.event("running", f"{key} running on {node}{moved}, "
                             f"{1000 * took:.0f} ms after placement", app=p["app"], node=node)
        elif state == "exited":
            await self.event("exited", f"{key} exited with code {rep.get('exit_code')} on {node}",
                             app=p["app"], node=node)
        elif state == "failed":
            await self.event("failed", f"{key} failed on {node}: {rep.get('error')}",
                             app=p["app"], node=node)

    async def _set(self, key: str, p: dict, **changes) -> None:
        p.update(changes, updated=time.time())
        await self._put(PLACEMENTS, key, p)
        self._dirty.set()

    # -- reconciling ------------------------------------------------------------------------

    async def _reconcile(self) -> None:
        now = time.monotonic()
        for name, rec in self.nodes.items():
            if rec.get("state") == "ready" and now - self.seen.get(name, self._started) > self.cfg.node_timeout:
                rec.update(state="lost", since=time.time())
                await self._put(NODES, name, rec)
                silent = now - self.seen.get(name, self._started)
                await self.event("node", f"node {name} lost (silent for {silent:.1f} s)", node=name)
        for key, p in list(self.placements.items()):
            app = self.apps.get(p["app"])
            if app is None or p["replica"] >= app["spec"]["replicas"]:
                await self._remove(key, p)
        for name, app in list(self.apps.items()):
            for r in range(app["spec"]["replicas"]):
                await self._ensure(name, app, r)

    async def _remove(self, key: str, p: dict) -> None:
        if p.get("node") and p["state"] in ACTIVE:
            asyncio.create_task(self._request(p["node"], "stop", {"instance": p["instance"]}))
        self.placements.pop(key, None)
        await self._delete(PLACEMENTS, key)
        if not any(q["app"] == p["app"] for q in self.placements.values()):
            self.decisions.pop(p["app"], None)
            if p["app"] not in self.apps:
                await self._delete(DECISIONS, p["app"])
        await self.event("stopped", f"{key} removed", app=p["app"], node=p.get("node"))

    async def _ensure(self, name: str, app: dict, r: int) -> None:
        key = f"{name}.{r}"
        spec, gen = app["spec"], app.get("generation", 1)
        p = self.placements.get(key)
        if p is None:
            return await self._place(key, spec, gen, r, why="new")
        if p["generation"] != gen:
            if p.get("node") and p["state"] in ACTIVE:
                asyncio.create_task(self._request(p["node"], "stop", {"instance": p["instance"]}))
            return await self._place(key, spec, gen, r, why=f"generation {gen}")
        node = self.nodes.get(p.get("node") or "")
        if p["state"] in ACTIVE and (node is None or node.get("state") != "ready"):
            lost_at = (node or {}).get("since", time.time())
            return await self._place(key, spec, gen, r, why=f"node {p['node']} lost",
                                     exclude=(p["node"],), restarts=p.get("restarts", 0),
                                     moved_from=p["node"], lost_at=lost_at)
        wall = time.time()
        if p["state"] == "pending":
            if wall - p.get("updated", 0) >= 1.0:
                await self._place(key, spec, gen, r, why="retry", restarts=p.get("restarts", 0),
                                  quiet=True)
            return
        if p["state"] in ("failed", "exited"):
            failed = p["state"] == "failed" or p.get("exit_code") != 0
            policy = spec["restart"]
            if not (policy == "always" or (policy == "on-failure" and failed)):
                return
            restarts = p.get("restarts", 0)
            if restarts >= spec["max_restarts"]:
                if not p.get("gave_up"):
                    await self._set(key, p, gave_up=True)
                    await self.event("failed", f"{key}: gave up after {restarts} restarts",
                                     app=name)
                return
            backoff = min(0.1 * 2 ** restarts, 10.0)
            if wall - (p.get("ended") or p.get("updated", 0)) >= backoff:
                await self._place(key, spec, gen, r, why=f"restart {restarts + 1} ({policy})",
                                  restarts=restarts + 1)

    def _views(self) -> list[NodeView]:
        used: dict[str, int] = {}
        apps: dict[str, set[str]] = {}
        for p in self.placements.values():
            if p.get("node") and p["state"] in ACTIVE:
                a = self.apps.get(p["app"])
                used[p["node"]] = used.get(p["node"], 0) + (app_memory(a["spec"]) if a else 0)
                apps.setdefault(p["node"], set()).add(p["app"])
        return [NodeView(n, rec["caps"], rec.get("state") == "ready", used.get(n, 0), apps.get(n, set()))
                for n, rec in self.nodes.items()]

    async def _place(self, key: str, spec: dict, gen: int, r: int, *, why: str,
                     exclude: tuple[str, ...] = (), restarts: int = 0, moved_from: str | None = None,
                     lost_at: float | None = None, quiet: bool = False) -> None:
        old = self.placements.get(key)
        if old is not None:  # the old one no longer counts against its node
            old["state"] = "replaced"
        decision = schedule(spec, self._views(), r, exclude)
        dec = self.decisions.setdefault(spec["name"], {"app": spec["name"], "replicas": {}})
        dec["replicas"][str(r)] = {**decision.to_dict(), "why": why}
        await self._put(DECISIONS, spec["name"], dec)
        now = time.time()
        p = {"app": spec["name"], "replica": r, "generation": gen, "restarts": restarts,
             "instance": f"{spec['name']}-{r}-{secrets.token_hex(4)}", "node": decision.winner,
             "created": now, "updated": now, "scheduled_at": now, "exit_code": None, "error": None}
        if moved_from:
            p.update(moved_from=moved_from, lost_at=lost_at)
        if decision.winner is None:
            p.update(state="pending", error=decision.summary())
            self.placements[key] = p
            await self._put(PLACEMENTS, key, p)
            if not quiet or (old or {}).get("error") != p["error"]:
                await self.event("pending", f"{decision.summary()} [{why}]", app=spec["name"])
            return
        p["state"] = "scheduled"
        self.placements[key] = p
        await self._put(PLACEMENTS, key, p)
        self._send_start(p)
        verb = "moved" if moved_from else "placed"
        await self.event(verb, f"{decision.summary()} [{why}]", app=spec["name"], node=decision.winner)

    def _send_start(self, p: dict) -> None:
        app = self.apps.get(p["app"])
        if app is None or not p.get("node"):
            return
        self._sent[p["instance"]] = time.monotonic()
        req = {"instance": p["instance"], "app": p["app"], "replica": p["replica"],
               "generation": p["generation"], "spec": app["spec"]}
        asyncio.create_task(self._start(p, req))

    async def _start(self, p: dict, req: dict) -> None:
        reply = await self._request(p["node"], "start", req)
        if reply is None:
            return  # no answer: the heartbeat check re-sends, or the node is lost
        key = f"{p['app']}.{p['replica']}"
        if self.placements.get(key) is not p:
            return
        if not reply.get("ok"):
            await self._set(key, p, state="failed", error=f"node {p['node']} refused: "
                            f"{reply.get('error')}", ended=time.time())
            await self.event("failed", f"{key}: node {p['node']} refused: {reply.get('error')}",
                             app=p["app"], node=p["node"])

    async def _request(self, node: str, verb: str, body: dict) -> dict | None:
        try:
            msg = await self.nc.request(f"{node_cmd(node)}.{verb}", json.dumps(body).encode(),
                                        timeout=2.0)
            return json.loads(msg.data)
        except Exception:  # noqa: BLE001 - no responders, timeout: the node is away
            return None


def run_controller(cfg: ControllerConfig) -> None:
    """Run a controller in this process until SIGINT/SIGTERM (``fog controller``)."""
    from foglayer.cluster._proc import run_until_signal

    run_until_signal(lambda stop: Controller(cfg).run(stop))
