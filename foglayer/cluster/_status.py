"""The continuum's status as typed values: apps with where each replica runs, nodes with
their load. One source for ``fog ps``/``fog nodes`` (and their ``-o json``) and the web view,
built from the records :class:`~foglayer.cluster.Client` returns."""

from __future__ import annotations

import msgspec

from foglayer.cluster._spec import app_memory

ACTIVE = ("scheduled", "starting", "running")


class Replica(msgspec.Struct, kw_only=True):
    replica: int
    state: str  # unplaced, scheduled, starting, running, exited, pending, failed, ...
    node: str | None = None
    restarts: int = 0
    since: float | None = None  # when it started running (or was created)
    exit_code: int | None = None  # a command that exited
    moved_from: str | None = None  # the node it ran on before it was moved
    error: str | None = None


class AppStatus(msgspec.Struct, kw_only=True):
    name: str
    kind: str  # command or service
    tenant: str  # who is billed for its usage (fog usage)
    generation: int
    replicas: int  # desired
    instances: list[Replica]


def app_status(apps: dict[str, dict], placements: dict[str, dict]) -> list[AppStatus]:
    items = []
    for name in sorted(apps):
        rec = apps[name]
        spec = rec["spec"]
        reps = []
        for r in range(spec["replicas"]):
            p = placements.get(f"{name}.{r}")
            if p is None:
                reps.append(Replica(replica=r, state="unplaced"))
                continue
            reps.append(Replica(
                replica=r, state=p["state"], node=p.get("node"), restarts=p.get("restarts", 0),
                since=p.get("running_at") or p.get("created"),
                exit_code=p.get("exit_code") if p["state"] == "exited" else None,
                moved_from=p.get("moved_from"), error=p.get("error") or None))
        items.append(AppStatus(name=name, kind=spec["kind"], tenant=spec.get("tenant", "default"),
                         generation=rec.get("generation", 0),
                         replicas=spec["replicas"], instances=reps))
    return items


class NodeStatus(msgspec.Struct, kw_only=True):
    name: str
    state: str  # ready, lost, or unreachable (behind a cut site link)
    trusted: bool  # the operator's word (fog trust); everything below is the node's claim
    arch: str
    cpus: int
    speed: float  # Wasm instructions per second, as measured by the node
    fuel_rate: float | None  # a throttle, instructions per second
    memory_capacity: int  # bytes for apps
    memory_used: int  # bytes reserved by the instances placed here
    instances: int  # scheduled, starting or running here
    tee: list[str]  # TEE kinds the node claims
    labels: dict[str, str]
    cordoned: bool = False  # takes no new work (fog drain; fog uncordon lifts it)
    # The latest attestation result's status (affirming, warning, contraindicated), checked
    # against the controller's key; None: no result, or not read (no controller key at hand)
    attested: str | None = None
    # What does the hot WASI calls and a live move's page scan there: native or python ("":
    # not loaded yet, or a node from before these were reported)
    wasi_path: str = ""
    dirty_scan: str = ""


def node_status(nodes: dict[str, dict], placements: dict[str, dict],
                apps: dict[str, dict]) -> list[NodeStatus]:
    items = []
    for name in sorted(nodes):
        rec = nodes[name]
        c = rec["caps"]
        mine = [p for p in placements.values() if p.get("node") == name and p["state"] in ACTIVE]
        used = sum(app_memory(apps[p["app"]]["spec"]) for p in mine if p["app"] in apps)
        items.append(NodeStatus(
            name=name, state=rec.get("state", "?"), trusted=bool(rec.get("trusted")),
            arch=c.get("arch", "?"), cpus=c.get("cpus", 1), speed=float(c.get("speed", 0.0)),
            fuel_rate=c.get("fuel_rate"), memory_capacity=c.get("max_memory", 0),
            memory_used=used, instances=len(mine), tee=list(c.get("tee") or ()),
            labels=dict(c.get("labels") or {}), cordoned=bool(rec.get("cordoned")),
            attested=(rec.get("attestation") or {}).get("status"),
            wasi_path=c.get("wasi_path", ""), dirty_scan=c.get("dirty_scan", "")))
    return items
