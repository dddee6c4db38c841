"""Placement: ask the scheduler, record the decision and the placement, tell the node.

A start request carries the app's spec, secrets included: it goes only to the node the
scheduler chose, and an app that needs trust (secrets, a TEE) only to a node the operator
trusts, checked again right before the request leaves (trust may have been withdrawn).
"""

from __future__ import annotations

import asyncio
import secrets
import time

from foglayer.cluster._protocol import (
    DECISIONS,
    INSTANCES,
    PLACEMENTS,
    BadMessage,
    InstanceRecord,
    Reply,
    cmd_subject,
    decode,
    encode,
)
from foglayer.cluster._scheduler import NodeView, schedule
from foglayer.cluster._spec import AppSpec
from foglayer.cluster.controller._registry import ACTIVE


class Placement:
    def _views(self) -> list[NodeView]:
        used: dict[str, int] = {}
        apps: dict[str, set[str]] = {}
        for p in self.placements.values():
            if p.get("node") and p["state"] in ACTIVE:
                a = self.apps.get(p["app"])
                used[p["node"]] = used.get(p["node"], 0) + (a.spec.memory if a else 0)
                apps.setdefault(p["node"], set()).add(p["app"])
        views = []
        for n, rec in self.nodes.items():
            # A node's TEE counts only through an affirming, fresh attestation, never its claim;
            # and only such a result lets secrets in (the operator's word cannot release them).
            tee, note = self.attested(n)
            cordoned = n in self.cordoned
            views.append(NodeView(n, {**self._caps_with_rtt(n, rec.caps), "tee": tee},
                                  rec.state == "ready" and not cordoned, used.get(n, 0),
                                  apps.get(n, set()), trusted=bool(tee), attestation=note,
                                  cordoned=cordoned))
        return views

    def _caps_with_rtt(self, node: str, caps) -> dict:
        """The node's capabilities, with the round trips it measured in place of any declared
        latency: the scheduler ranks by what was measured."""
        d = caps.to_dict()
        hb = self.hb.get(node)
        if hb is not None and hb.rtt:
            d["latency"] = {**d.get("latency", {}), **hb.rtt}
        return d

    async def _place(self, key: str, spec: AppSpec, gen: int, r: int, *, why: str,
                     exclude: tuple[str, ...] = (), restarts: int = 0,
                     moved_from: str | None = None, lost_at: float | None = None,
                     quiet: bool = False) -> None:
        old = self.placements.get(key)
        if old is not None:  # the old one no longer counts against its node
            old["state"] = "replaced"
        decision = schedule(spec, self._views(), r, exclude)
        self.metrics.on_decision(decision, why)
        dec = self.decisions.setdefault(spec.name, {"app": spec.name, "replicas": {}})
        moves = dec["replicas"].get(str(r), {}).get("moves", [])  # (its live moves so far)
        dec["replicas"][str(r)] = {**decision.to_dict(), "why": why, "moves": moves}
        await self._put(DECISIONS, spec.name, dec)
        now = time.time()
        p = {"app": spec.name, "replica": r, "generation": gen, "restarts": restarts,
             "instance": f"{spec.name}-{r}-{secrets.token_hex(4)}", "node": decision.winner,
             "created": now, "updated": now, "scheduled_at": now, "exit_code": None,
             "error": None}
        if moved_from:
            p.update(moved_from=moved_from, lost_at=lost_at)
        if decision.winner is None:
            p.update(state="pending", error=decision.no_fit())
            self.placements[key] = p
            await self._put(PLACEMENTS, key, p)
            if not quiet or (old or {}).get("error") != p["error"]:
                await self.event("pending", f"{decision.summary()} [{why}]", app=spec.name)
            return
        p["state"] = "scheduled"
        self.placements[key] = p
        # Who may write this instance's logs (fog logs drops lines from any other node).
        await self._put(INSTANCES, p["instance"], InstanceRecord(spec.name, r, decision.winner))
        await self._put(PLACEMENTS, key, p)
        self._send_start(p)
        verb = "moved" if moved_from else "placed"
        await self.event(verb, f"{decision.summary()} [{why}]", app=spec.name,
                         node=decision.winner)

    def _send_start(self, p: dict) -> None:
        from foglayer.cluster._protocol import StartRequest

        rec = self.apps.get(p["app"])
        if rec is None or not p.get("node"):
            return
        key = f"{p['app']}.{p['replica']}"
        if rec.spec.needs_trust and not self.attested(p["node"])[0]:
            asyncio.create_task(self._refused(key, p, f"node {p['node']} has no affirming "
                                              "attestation: the app needs secrets or a TEE"))
            return
        self._sent[p["instance"]] = time.monotonic()
        req = StartRequest(p["instance"], p["app"], p["replica"], rec.spec, p["generation"])
        if rec.spec.needs_attestation:
            asyncio.create_task(self._start_attested(key, p, req))
        else:
            asyncio.create_task(self._start(key, p, req))

    async def _start_attested(self, key: str, p: dict, req) -> None:
        """Attest the node for this module first; secrets go only with an affirming result."""
        from foglayer.trust import TrustError

        try:
            release, session = await self.release_for(p["node"], req.spec)
        except TrustError as e:
            await self._refused(key, p, str(e))
            return
        except Exception as e:  # noqa: BLE001 - no answer: the heartbeat check re-sends
            self.log(f"{key}: attestation of {p['node']} failed: {type(e).__name__}: {e}")
            return
        import msgspec

        await self._start(key, p, msgspec.structs.replace(req, release=release,
                                                          session=session))

    async def _start(self, key: str, p: dict, req) -> None:
        reply = await self._request(p["node"], "start", req)
        if reply is None:
            return  # no answer: the heartbeat check re-sends, or the node is lost
        if self.placements.get(key) is not p:
            return
        if not reply.ok:
            await self._refused(key, p, f"node {p['node']} refused: {reply.error}")

    async def _refused(self, key: str, p: dict, why: str) -> None:
        if self.placements.get(key) is not p:
            return
        await self._set(key, p, state="failed", error=why, ended=time.time())
        await self.event("failed", f"{key}: {why}", app=p["app"], node=p["node"])

    async def _request(self, node: str, verb: str, body) -> Reply | None:
        try:
            msg = await self.nc.request(cmd_subject(node, verb), encode(body), timeout=2.0)
            return decode(msg.data, Reply)
        except BadMessage as e:
            await self._drop(node, f"the reply to {verb}", str(e))
            return None
        except Exception:  # noqa: BLE001 - no responders, timeout: the node is away
            return None
