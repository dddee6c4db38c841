"""``fog ps`` and ``fog nodes`` documents: the cluster's typed status (``cluster._status``)."""

from __future__ import annotations

from foglayer.cli._output import _Doc
from foglayer.cluster import AppStatus, NodeStatus, app_status, node_status


class AppList(_Doc):
    items: list[AppStatus]


def app_list(apps: dict[str, dict], placements: dict[str, dict]) -> AppList:
    return AppList(items=app_status(apps, placements))


# -- fog nodes ----------------------------------------------------------------------------------


class NodeList(_Doc):
    items: list[NodeStatus]


def node_list(nodes: dict[str, dict], placements: dict[str, dict],
              apps: dict[str, dict]) -> NodeList:
    return NodeList(items=node_status(nodes, placements, apps))
