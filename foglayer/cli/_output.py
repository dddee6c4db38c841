"""Machine-readable output (``-o json`` / ``-o yaml``): one typed, versioned schema per kind.

Every document is an object whose first key is ``kind`` (``AppList``, ``NodeList``,
``Explanation``, ``Snapshot``, ``RunStats``, ``UsageReport``, ``AttestationList``, ``EventList``) and whose last is ``version`` (this module's
:data:`VERSION`, raised only when a field changes meaning or goes away; new fields may be added).
Times are Unix seconds, sizes bytes, absent values ``null``. docs/cli-output.md documents each
field. The tables people see are drawn from these same values (``_render``), so the two never
disagree.
"""

from __future__ import annotations

import sys
from typing import IO, Literal

import msgspec

VERSION = 1
FORMATS = ("json", "yaml")
Format = Literal["json", "yaml"]


class _Doc(msgspec.Struct, kw_only=True, tag_field="kind", tag=True):
    version: int = VERSION


# -- fog ps -------------------------------------------------------------------------------------


# ``AppList``/``NodeList`` (fog ps, fog nodes) are in ``_status_docs``: they are built from the
# cluster's typed status, and importing the cluster here would slow ``fog run --stats`` down.


def __getattr__(name: str):
    if name in ("AppList", "NodeList", "app_list", "node_list"):
        from foglayer.cli import _status_docs

        return getattr(_status_docs, name)
    raise AttributeError(name)


# -- fog explain --------------------------------------------------------------------------------


class Candidate(msgspec.Struct, kw_only=True):
    node: str
    passed: bool  # through every filter
    filter: str | None = None  # the filter that dropped it
    reason: str | None = None  # why that filter dropped it
    scores: dict[str, float] = {}  # scorer -> 0..100 (passed nodes only)
    total: float | None = None  # weighted sum of the scores
    winner: bool = False


class Move(msgspec.Struct, kw_only=True):
    time: float
    source: str
    target: str
    why: str  # what moved it (fog migrate, a drain, new preferences, a better node)


class Placement(msgspec.Struct, kw_only=True):
    replica: int
    why: str  # what triggered the decision (placed, moved, ...)
    time: float
    winner: str | None  # None: no node fits
    nodes: int  # nodes in the registry
    examined: int  # nodes looked at (fewer at scale)
    candidates: list[Candidate]
    moves: list[Move] = []  # its live moves, oldest first (the last few)


class Explanation(_Doc):
    app: str
    replicas: list[Placement]


def explanation(decision: dict) -> Explanation:
    out = []
    for r, d in sorted(decision.get("replicas", {}).items(), key=lambda kv: int(kv[0])):
        rows = [Candidate(node=row["node"], passed=not row.get("filter"),
                          filter=row.get("filter") or None, reason=row.get("reason") or None,
                          scores={k: float(v) for k, v in (row.get("scores") or {}).items()},
                          total=None if row.get("filter") else row.get("total"),
                          winner=row["node"] == d.get("winner"))
                for row in d.get("rows", [])]
        out.append(Placement(replica=int(r), why=d.get("why", "placed"), time=d["time"],
                             winner=d.get("winner"), nodes=d.get("nodes", len(rows)),
                             examined=d.get("examined", len(rows)), candidates=rows,
                             moves=[Move(time=float(m["time"]), source=str(m["source"]),
                                         target=str(m["target"]), why=str(m["why"]))
                                    for m in d.get("moves") or []]))
    return Explanation(app=decision["app"], replicas=out)


# -- fog inspect --------------------------------------------------------------------------------


class GlobalValue(msgspec.Struct, kw_only=True):
    name: str | None  # services: the export's name
    index: int | None  # commands: the global's index
    type: str  # i32, i64, f32, f64
    mutable: bool
    value: int | float


class Preopen(msgspec.Struct, kw_only=True):
    guest: str
    host: str | None  # where it was when the snapshot was taken
    readonly: bool


class Descriptor(msgspec.Struct, kw_only=True):
    fd: int
    kind: str
    where: str  # <stdio N>, PREOPEN + relative path, or the guest path
    offset: int | None  # files only


class Snapshot(_Doc):
    path: str
    format: int  # the snapshot format's version
    snapshot_kind: str  # command or service
    foglayer: str | None  # the version that wrote it
    trusted: bool  # written by this user on this machine (its HMAC verifies)
    created: float | None
    node: str | None
    machine: str | None
    module_digest: str  # sha256 of the module as deployed
    checkpointable_digest: str  # sha256 of the module that runs (rewritten for commands)
    memory_pages: int  # 64 KiB pages
    stored_pages: int  # not all-zero, so stored
    stored_bytes: int  # compressed page data
    compression: str
    file_size: int
    carries_module: bool
    carries_files: bool
    checkpoints: int
    restores: int
    globals: list[GlobalValue]
    args: list[str]
    env: dict[str, str]
    preopens: list[Preopen]
    descriptors: list[Descriptor]


def snapshot(path: str) -> Snapshot:
    import os

    from foglayer.snapshot import load_snapshot

    snap = load_snapshot(path)
    try:
        m, w = snap.meta, snap.meta.wasi
        descriptors = []
        for d in w.fds:
            where = (f"<stdio {d.stdio}>" if d.stdio >= 0 else
                     f"{w.preopens[d.preopen].guest} + {d.path}" if d.preopen >= 0
                     else d.guest_path)
            descriptors.append(Descriptor(fd=d.fd, kind=d.kind_name, where=where,
                                          offset=d.offset if d.is_file else None))
        return Snapshot(
            path=snap.where, format=m.format, snapshot_kind=m.kind, foglayer=m.foglayer or None,
            trusted=snap.trusted, created=m.created or None, node=m.host.node or None,
            machine=m.host.machine or None, module_digest=m.module.original_digest,
            checkpointable_digest=m.module.digest, memory_pages=m.memory.pages,
            stored_pages=m.memory.stored, stored_bytes=sum(e.length for e in m.memory.table),
            compression=m.memory.compression, file_size=os.path.getsize(path),
            carries_module="module" in m.blobs, carries_files="files" in m.blobs,
            checkpoints=m.lineage.checkpoints, restores=m.lineage.restores,
            globals=[GlobalValue(name=g.name, index=g.index, type=g.type, mutable=g.mutable,
                                 value=float.fromhex(g.value) if isinstance(g.value, str)
                                 else g.value) for g in m.globals],
            args=list(w.args), env=dict(w.env),
            preopens=[Preopen(guest=p.guest, host=p.host or None, readonly=p.readonly)
                      for p in w.preopens],
            descriptors=descriptors)
    finally:
        snap.close()


# -- fog run --stats ----------------------------------------------------------------------------


class RunStats(_Doc):
    exit_code: int
    fuel: int | None  # Wasm instructions executed (None: not metered)
    peak_memory: int  # bytes of linear memory at its largest
    wall_time: float  # seconds
    wasi_calls: int  # in all
    wasi_calls_by_kind: dict[str, int]
    wasi_path: str | None  # native (hot calls in C) or python


def run_stats(stats, exit_code: int) -> RunStats:
    return RunStats(exit_code=exit_code, fuel=stats.fuel, peak_memory=stats.peak_memory,
                    wall_time=stats.wall_time, wasi_calls=sum(stats.wasi_calls.values()),
                    wasi_calls_by_kind=dict(sorted(stats.wasi_calls.items())),
                    wasi_path=getattr(stats, "wasi_path", "") or None)


# -- fog usage ----------------------------------------------------------------------------------


class UsageLine(msgspec.Struct, kw_only=True):
    tenant: str
    app: str | None  # null: the tenant's total
    instances: int
    fuel: int  # Wasm instructions
    memory_seconds: float  # reserved bytes x seconds running
    invocations: int
    wasi_calls: int
    volume_bytes: int  # bytes in the instances' volumes at their latest report


class UsageReport(_Doc):
    since: float | None  # Unix time; null: since the first report kept
    tenants: list[UsageLine]
    apps: list[UsageLine]
    dropped: int  # reports refused: from a node that was not running the instance


def usage_report(summary) -> UsageReport:
    line = lambda r: UsageLine(**r.to_dict())  # noqa: E731
    return UsageReport(since=summary.since, tenants=[line(r) for r in summary.tenants],
                       apps=[line(r) for r in summary.apps], dropped=summary.dropped)


# -- fog attest ---------------------------------------------------------------------------------


class Attestation(msgspec.Struct, kw_only=True):
    node: str
    status: str  # affirming, warning, contraindicated; none: not attested yet
    fresh: bool  # not past expires_at
    proves_nothing: bool  # a simulated TEE's result
    backend: str | None
    issued_at: float | None
    expires_at: float | None
    policy_id: str | None
    module_digest: str | None  # the module the evidence measured
    vector: dict[str, int]  # the AR4SI trustworthiness vector
    reasons: list[str]  # why (empty: every check passed)


class AttestationList(_Doc):
    items: list[Attestation]


# -- fog events ---------------------------------------------------------------------------------


class Event(msgspec.Struct, kw_only=True):
    time: float
    kind: str  # e.g. placed, moved, move-failed, failed, node, attest, leader
    message: str  # one line, as fog up prints it


class EventList(_Doc):
    items: list[Event]  # oldest first


def event_list(events: list[dict]) -> EventList:
    """The controller's events as stored (untrusted shape: odd fields are dropped)."""
    return EventList(items=[Event(time=float(e.get("time") or 0), kind=str(e.get("kind", "")),
                                  message=str(e.get("message", "")))
                            for e in events if isinstance(e, dict)])


def attestation_list(rows: list, now: float) -> AttestationList:
    items = []
    for node, r in rows:
        if r is None:
            items.append(Attestation(node=node, status="none", fresh=False, proves_nothing=False,
                                     backend=None, issued_at=None, expires_at=None,
                                     policy_id=None, module_digest=None, vector={}, reasons=[]))
            continue
        items.append(Attestation(node=node, status=r.status, fresh=r.fresh(now),
                                 proves_nothing=r.proves_nothing, backend=r.backend,
                                 issued_at=r.issued_at, expires_at=r.expires_at,
                                 policy_id=r.policy_id, module_digest=r.module_digest,
                                 vector=dict(r.vector), reasons=list(r.reasons)))
    return AttestationList(items=items)


# -- writing ------------------------------------------------------------------------------------


def encode(doc: _Doc, fmt: Format, *, compact: bool = False) -> bytes:
    if fmt == "yaml":
        return msgspec.yaml.encode(doc)
    data = msgspec.json.encode(doc)
    return (data if compact else msgspec.json.format(data, indent=2)) + b"\n"


def emit(doc: _Doc, fmt: Format, stream: IO[str] | None = None, *, compact: bool = False) -> None:
    out = stream or sys.stdout
    out.flush()
    out.buffer.write(encode(doc, fmt, compact=compact))
    out.flush()
