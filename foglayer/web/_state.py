"""What the page shows: one typed snapshot of the continuum, built from the cluster's own
typed status (the same as ``fog ps`` and ``fog nodes``) plus sites, attestation and events."""

from __future__ import annotations

from typing import Any

import msgspec

from foglayer.cluster import AppStatus, NodeStatus, app_status, node_status


class SiteNode(NodeStatus, kw_only=True):
    """A node as ``fog nodes`` shows it, with its site and attestation state."""

    site: str
    attestation: str  # the latest attestation result's status, or what the node only claims


class EventRow(msgspec.Struct):
    time: float
    kind: str
    message: str


class ViewState(msgspec.Struct):
    """Sites (name -> node names), nodes, apps with where each replica runs, recent events."""

    sites: dict[str, list[str]]
    nodes: list[SiteNode]
    apps: list[AppStatus]
    events: list[EventRow]

    def to_json(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)


def _attestation(rec: dict, status: NodeStatus) -> str:
    att = rec.get("attestation")
    if isinstance(att, dict):
        return str(att.get("status", "unknown"))
    return f"claims {', '.join(status.tee)}" if status.tee else "none"


def build_state(nodes: dict[str, dict], placements: dict[str, dict], apps: dict[str, dict],
                events: list[dict]) -> ViewState:
    """The snapshot from the records that ``Client.nodes/placements/apps/events`` return."""
    rows, sites = [], {}
    for st in node_status(nodes, placements, apps):
        site = st.labels.get("site") or "-"
        sites.setdefault(site, []).append(st.name)
        rows.append(SiteNode(**msgspec.structs.asdict(st), site=site,
                             attestation=_attestation(nodes[st.name], st)))
    ev = [EventRow(float(e.get("time") or 0), str(e.get("kind", "")), str(e.get("message", "")))
          for e in events if isinstance(e, dict)]
    return ViewState(sites, rows, app_status(apps, placements), ev)
