"""``fog usage``: what each tenant and app consumed, from the durable ``FOG_USAGE`` stream.

Reports carry running totals per instance, so the usage of an instance is its latest report
(minus, with ``since``, its last report before then). A report is counted only from the
node its instance was placed on (``fog-instances``, written by the leader): a node cannot
bill another node's instances, nor make up instances.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import nats.errors
from nats.js.api import DeliverPolicy
from nats.js.errors import NotFoundError

from foglayer.cluster._bus import drop_consumer
from foglayer.cluster._protocol import ALL_USAGE, USAGE_STREAM, BadMessage, UsageReport, decode_node

FIELDS = ("fuel", "memory_seconds", "invocations", "wasi_calls", "volume_bytes")


@dataclass
class UsageRow:
    """One tenant's or one app's consumption."""

    tenant: str
    app: str | None  # None: the tenant's total
    instances: int = 0
    fuel: int = 0
    memory_seconds: float = 0.0
    invocations: int = 0
    wasi_calls: int = 0
    volume_bytes: int = 0  # at the latest report, summed over instances

    def add(self, u: dict) -> None:
        self.instances += 1
        for f in FIELDS:
            setattr(self, f, getattr(self, f) + u[f])

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class UsageSummary:
    since: float | None
    tenants: list[UsageRow] = field(default_factory=list)
    apps: list[UsageRow] = field(default_factory=list)
    dropped: int = 0  # reports from a node that did not run the instance

    def to_dict(self) -> dict:
        return {"since": self.since, "tenants": [r.to_dict() for r in self.tenants],
                "apps": [r.to_dict() for r in self.apps], "dropped": self.dropped}


class UsageQueries:
    async def usage(self, tenant: str | None = None, since: float | None = None) -> UsageSummary:
        """Per tenant and per app; ``since``: a wall-clock time (only what was used after)."""
        latest: dict[str, dict] = {}
        before: dict[str, dict] = {}
        cache: dict = {}
        dropped = 0
        try:
            info = await self.js.stream_info(USAGE_STREAM)
        except NotFoundError:
            info = None
        if info is not None and info.state.messages:
            sub = await self.js.subscribe(ALL_USAGE, ordered_consumer=True, stream=USAGE_STREAM,
                                          deliver_policy=DeliverPolicy.ALL)
            try:
                while True:
                    try:
                        msg = await sub.next_msg(timeout=2.0)
                    except nats.errors.TimeoutError:
                        break
                    try:
                        report = decode_node(msg.subject, msg.data, UsageReport)
                    except BadMessage:
                        dropped += 1
                    else:
                        for u in report.items:
                            rec = await self._instance(u.instance, cache)
                            if rec is None or rec.node != report.name or rec.app != u.app:
                                dropped += 1
                                continue
                            if tenant is not None and u.tenant != tenant:
                                continue
                            d = {f: getattr(u, f) for f in FIELDS}
                            d.update(app=u.app, tenant=u.tenant, time=u.time)
                            if since is not None and u.time < since:
                                before[u.instance] = d
                            else:
                                latest[u.instance] = d
                    if msg.metadata.num_pending == 0:
                        break
            finally:
                await drop_consumer(sub)
        tenants: dict[str, UsageRow] = {}
        apps: dict[tuple[str, str], UsageRow] = {}
        for iid, u in latest.items():
            base = before.get(iid)
            if base is not None:  # only what was used after ``since``
                u = {**u, **{f: u[f] - base[f] for f in FIELDS if f != "volume_bytes"}}
            tenants.setdefault(u["tenant"], UsageRow(u["tenant"], None)).add(u)
            apps.setdefault((u["tenant"], u["app"]), UsageRow(u["tenant"], u["app"])).add(u)
        return UsageSummary(since, [tenants[k] for k in sorted(tenants)],
                            [apps[k] for k in sorted(apps)], dropped)


def parse_since(text: str) -> float:
    """``90s``, ``15m``, ``2h``, ``7d`` before now: a wall-clock time."""
    from foglayer.errors import FogError

    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    t = text.strip().lower()
    try:
        value = float(t[:-1]) if t and t[-1] in units else float(t)
        scale = units[t[-1]] if t and t[-1] in units else 1
    except ValueError:
        raise FogError(f"--since {text!r}: expected a duration like 90s, 15m, 2h or 7d") from None
    if not 0 <= value * scale < 10 * 365 * 86400 or value != value:
        raise FogError(f"--since {text!r}: out of range")
    return time.time() - value * scale
