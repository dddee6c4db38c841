"""What the page shows: one typed snapshot of the continuum, built from the cluster's state."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

ACTIVE = ("scheduled", "starting", "running")


@dataclass(frozen=True)
class NodeRow:
    name: str
    site: str
    state: str  # ready | lost | ...
    arch: str
    cpus: int
    memory_used: int
    memory_max: int
    instances: int
    attestation: str  # the latest attestation result's status, or what the node only claims
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReplicaRow:
    replica: int
    node: str | None
    state: str
    restarts: int
    detail: str


@dataclass(frozen=True)
class AppRow:
    name: str
    kind: str
    tenant: str
    replicas: list[ReplicaRow]


@dataclass(frozen=True)
class EventRow:
    time: float
    kind: str
    message: str


@dataclass(frozen=True)
class ViewState:
    """Sites (name -> node names), nodes, apps with where each replica runs, recent events."""

    sites: dict[str, list[str]]
    nodes: list[NodeRow]
    apps: list[AppRow]
    events: list[EventRow]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _num(value: Any, default: int = 0) -> int:
    # Records come from nodes and the bus: a malformed field shows as 0, never breaks the view.
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _memory(spec: dict) -> int:
    limits = spec.get("limits") or {}
    return _num(limits.get("memory")) or _num(spec.get("initial_memory"))


def build_state(nodes: dict[str, dict], placements: dict[str, dict], apps: dict[str, dict],
                events: list[dict]) -> ViewState:
    """The snapshot from the records that ``Client.nodes/placements/apps/events`` return."""
    specs = {name: (rec.get("spec") or {}) for name, rec in apps.items() if isinstance(rec, dict)}
    rows, sites = [], {}
    for name in sorted(nodes):
        rec = nodes[name] if isinstance(nodes[name], dict) else {}
        caps = rec.get("caps") if isinstance(rec.get("caps"), dict) else {}
        labels = caps.get("labels") if isinstance(caps.get("labels"), dict) else {}
        mine = [p for p in placements.values()
                if isinstance(p, dict) and p.get("node") == name and p.get("state") in ACTIVE]
        used = sum(_memory(specs.get(p.get("app"), {})) for p in mine)
        att = rec.get("attestation")
        if isinstance(att, dict):
            attestation = str(att.get("status", "unknown"))
        else:
            tee = caps.get("tee") or []
            attestation = f"claims {', '.join(map(str, tee))}" if tee else "none"
        site = str(labels.get("site") or "-")
        sites.setdefault(site, []).append(name)
        rows.append(NodeRow(name, site, str(rec.get("state", "?")), str(caps.get("arch", "?")),
                            _num(caps.get("cpus")), used, _num(caps.get("max_memory")), len(mine),
                            attestation, {str(k): str(v) for k, v in labels.items()}))
    app_rows = []
    for name in sorted(specs):
        spec = specs[name]
        reps = []
        for r in range(_num(spec.get("replicas"), 1)):
            p = placements.get(f"{name}.{r}")
            if not isinstance(p, dict):
                reps.append(ReplicaRow(r, None, "unplaced", 0, ""))
                continue
            detail = str(p.get("error") or "")
            if p.get("state") == "exited":
                detail = f"exit code {p.get('exit_code')}"
            elif p.get("moved_from") and p.get("state") == "running":
                detail = f"moved from {p['moved_from']}"
            reps.append(ReplicaRow(r, p.get("node"), str(p.get("state", "?")),
                                   _num(p.get("restarts")), detail))
        app_rows.append(AppRow(name, str(spec.get("kind", "?")), str(spec.get("tenant", "default")),
                               reps))
    ev = [EventRow(float(e.get("time") or 0), str(e.get("kind", "")), str(e.get("message", "")))
          for e in events if isinstance(e, dict)]
    return ViewState(sites, rows, app_rows, ev)
