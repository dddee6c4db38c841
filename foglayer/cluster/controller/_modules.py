"""Modules: the leader hands a node the module it was told to run, and collects unused ones.

Nodes cannot read the module Object Store (their credentials give them no JetStream access at
all): a node asks on ``fog.node.<node>.module`` for the module of an instance placed on it, and
the leader answers on the node's own inbox, in chunks, only if that instance is placed on that
node with that digest. So a node reads the modules it was told to run, and no other.

A module no app uses is deleted from the Object Store after ``module_grace`` seconds (the grace
covers a deploy that has uploaded the module but not yet written the app).
"""

from __future__ import annotations

import time

from nats.js.errors import NotFoundError

from foglayer.cluster._protocol import (
    H_CHUNK,
    H_ERROR,
    MODULES,
    BadMessage,
    ModuleRequest,
    decode_node,
    subject_node,
)

CHUNK = 1 << 20


class Modules:
    def _init_modules(self) -> None:
        self._unused_since: dict[str, float] = {}  # digest -> when no app used it any more
        self._gc_at = 0.0

    async def _on_module(self, msg) -> None:
        if not msg.reply or not self.lease.leader or not self.leader:
            return  # only the leader answers (the node retries through a takeover)
        node = subject_node(msg.subject)
        try:
            req = decode_node(msg.subject, msg.data, ModuleRequest)
        except BadMessage as e:
            return await self._drop(node, msg.subject, str(e))
        p = next((q for q in self.placements.values() if q["instance"] == req.instance), None)
        if p is None and req.instance in self._moving:  # a live move's target, preparing
            p = self._moving[req.instance]
        rec = self.apps.get(p["app"]) if p is not None else None
        if p is None or p.get("node") != node or rec is None or rec.spec.digest != req.digest:
            why = f"node {node} was not told to run module {req.digest[:12]} as {req.instance}"
            self.log(f"refused a module: {why}")
            await self.nc.publish(msg.reply, b"", headers={H_ERROR: why})
            return
        try:
            obs = await self.js.object_store(MODULES)
            # (an encrypted module goes out sealed: its key only with an attested start)
            data = bytes((await obs.get(rec.spec.module_object)).data or b"")
        except Exception as e:  # noqa: BLE001 - told to the node, which reports it
            await self.nc.publish(msg.reply, b"", headers={
                H_ERROR: f"module {req.digest[:12]}: {type(e).__name__}: {e}"[:500]})
            return
        n = max(1, -(-len(data) // CHUNK))
        for i in range(n):
            await self.nc.publish(msg.reply, data[i * CHUNK:(i + 1) * CHUNK],
                                  headers={H_CHUNK: f"{i}/{n}"})

    async def _collect_modules(self) -> None:
        now = time.monotonic()
        grace = self.cfg.module_grace
        if now - self._gc_at < min(10.0, max(0.2, grace / 2)) or self._bad_apps:
            return  # (an app record we cannot read may use any module: keep them all)
        self._gc_at = now
        used = {a.spec.module_object for a in self.apps.values()}
        obs = await self.js.object_store(MODULES)
        try:
            infos = await obs.list(ignore_deletes=True)
        except NotFoundError:
            infos = []
        for info in infos:
            if info.deleted or info.name in used:
                self._unused_since.pop(info.name, None)
                continue
            since = self._unused_since.setdefault(info.name, now)
            if now - since >= grace:
                await obs.delete(info.name)
                self._unused_since.pop(info.name, None)
                await self.event("module", f"module {info.name[:12]} ({info.size} bytes) "
                                 "deleted from the Object Store: no app uses it")
