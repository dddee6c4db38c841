"""The reconcile loop: make the placements match the desired state.

For each app and replica: place what has no placement, move what sits on a lost node, restart
what failed (per the restart policy, with exponential back-off), replace what an update made
stale; stop and delete what no app wants any more.
"""

from __future__ import annotations

import asyncio
import time

from foglayer.cluster._protocol import DECISIONS, PLACEMENTS, StopRequest
from foglayer.cluster._spec import AppRecord
from foglayer.cluster.controller._registry import ACTIVE


class Reconciler:
    async def _reconcile(self) -> None:
        await self._mark_lost()
        await self._drain()
        await self._rebalance()
        await self._renew_attestations()
        for key, p in list(self.placements.items()):
            app = self.apps.get(p["app"])
            if app is None or p["replica"] >= app.spec.replicas:
                await self._remove(key, p)
        for name, app in list(self.apps.items()):
            for r in range(app.spec.replicas):
                try:
                    await self._ensure(name, app, r)
                except Exception as e:  # noqa: BLE001 - one app never stops the others
                    self.log(f"{name}.{r}: {type(e).__name__}: {e}")
        await self._collect_modules()
        await self._collect_pages()

    async def _set(self, key: str, p: dict, **changes) -> None:
        p.update(changes, updated=time.time())
        await self._put(PLACEMENTS, key, p)
        self._dirty.set()

    def _stop_instance(self, p: dict) -> None:
        if p.get("node") and p["state"] in ACTIVE:
            asyncio.create_task(self._request(p["node"], "stop", StopRequest(p["instance"])))

    async def _remove(self, key: str, p: dict) -> None:
        self._stop_instance(p)
        self.placements.pop(key, None)
        await self._delete(PLACEMENTS, key)
        await self._forget_snapshot(key)  # a later deploy of that name starts fresh
        if not any(q["app"] == p["app"] for q in self.placements.values()):
            self.decisions.pop(p["app"], None)
            if p["app"] not in self.apps:
                await self._delete(DECISIONS, p["app"])
        await self.event("stopped", f"{key} removed", app=p["app"], node=p.get("node"))

    async def _ensure(self, name: str, app: AppRecord, r: int) -> None:
        key = f"{name}.{r}"
        spec, gen = app.spec, app.generation
        p = self.placements.get(key)
        if p is None:
            return await self._place(key, spec, gen, r, why="new")
        if p["generation"] != gen:
            if await self._follow_preferences(key, p, app):
                return  # only where it should run changed: it moves live (or stays)
            self._stop_instance(p)
            return await self._place(key, spec, gen, r, why=f"generation {gen}")
        node = self.nodes.get(p.get("node") or "")
        if p["state"] in ACTIVE and node is not None and node.state == "unreachable":
            if spec.on_partition == "stay":
                return  # it runs on in its site; the heal brings its heartbeats back
            site = node.caps.labels.get("site", "?")
            return await self._place(key, spec, gen, r, exclude=(p["node"],),
                                     why=f"node {p['node']} unreachable (site {site} cut off; "
                                     "on_partition: move)", restarts=p.get("restarts", 0),
                                     moved_from=p["node"], lost_at=node.since)
        if p["state"] in ACTIVE and (node is None or node.state != "ready"):
            lost_at = node.since if node is not None else time.time()
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
            policy = spec.restart
            if not (policy == "always" or (policy == "on-failure" and failed)):
                return
            restarts = p.get("restarts", 0)
            if restarts >= spec.max_restarts:
                if not p.get("gave_up"):
                    await self._set(key, p, gave_up=True)
                    await self.event("failed", f"{key}: gave up after {restarts} restarts",
                                     app=name)
                return
            backoff = min(0.1 * 2 ** restarts, 10.0)
            if wall - (p.get("ended") or p.get("updated", 0)) >= backoff:
                await self._place(key, spec, gen, r, why=f"restart {restarts + 1} ({policy})",
                                  restarts=restarts + 1)
