"""The scheduler: filters, then scorers, as in the Kubernetes scheduler framework.

*Filters* drop a node that cannot host the app, each with a reason: the node is not ready, has
too little free memory, lacks a Wasm feature the module uses, lacks the required TEE, misses a
label, or has another CPU architecture. *Scorers* rank the rest from 0 to 100: latency to the
app's preferred site, free capacity, compute speed, security level, and spreading replicas.
The winner has the highest weighted mean (ties: the lower node name). Every decision keeps one
row per node, which ``fog explain`` prints.

This module is pure: it sees nodes as :class:`NodeView` values and never touches the bus.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from foglayer.cluster._manifest import app_memory
from foglayer.runtime import format_size


@dataclass
class NodeView:
    """What the scheduler knows of a node: its capabilities and what is placed on it."""

    name: str
    caps: dict
    ready: bool = True
    used_memory: int = 0
    apps: set[str] = field(default_factory=set)  # apps with an instance placed here

    @property
    def max_memory(self) -> int:
        return int(self.caps.get("max_memory") or 0)

    @property
    def free_memory(self) -> int:
        return self.max_memory - self.used_memory


# -- filters: a reason to refuse, or None -------------------------------------------------


def f_ready(spec: dict, n: NodeView) -> str | None:
    return None if n.ready else "node is not ready (lost or gone)"


def f_memory(spec: dict, n: NodeView) -> str | None:
    need = app_memory(spec)
    if need > n.free_memory:
        return (f"needs {format_size(need)}, node has {format_size(max(0, n.free_memory))} free "
                f"of {format_size(n.max_memory)}")
    return None


def f_features(spec: dict, n: NodeView) -> str | None:
    have = set(n.caps.get("features") or ())
    missing = [f for f in spec["constraints"].get("features") or () if f not in have]
    return f"lacks Wasm feature {', '.join(missing)}" if missing else None


def f_tee(spec: dict, n: NodeView) -> str | None:
    want = spec["constraints"].get("tee")
    if not want:
        return None
    have = list(n.caps.get("tee") or ())
    if (want == "any" and have) or want in have:
        return None
    return f"requires TEE {want}, node has {', '.join(have) or 'none'}"


def f_labels(spec: dict, n: NodeView) -> str | None:
    labels = n.caps.get("labels") or {}
    for k, v in (spec["constraints"].get("labels") or {}).items():
        if labels.get(k) != v:
            have = labels.get(k)
            return f"label {k}={v} required, node has {f'{k}={have}' if have is not None else f'no {k}'}"
    return None


def f_arch(spec: dict, n: NodeView) -> str | None:
    want = spec["constraints"].get("arch")
    if want and n.caps.get("arch") != want:
        return f"arch {want} required, node is {n.caps.get('arch')}"
    return None


FILTERS: list[tuple[str, Callable[[dict, NodeView], str | None]]] = [
    ("ready", f_ready), ("memory", f_memory), ("features", f_features), ("tee", f_tee),
    ("labels", f_labels), ("arch", f_arch),
]


# -- scorers: 0..100 ------------------------------------------------------------------------


def _latency(n: NodeView, site: str) -> float | None:
    if (n.caps.get("labels") or {}).get("site") == site:
        return 0.0
    ms = (n.caps.get("latency") or {}).get(site)
    return float(ms) if ms is not None else None


def s_latency(spec: dict, n: NodeView, ctx: dict) -> float | None:
    prefs = spec.get("preferences") or {}
    site = prefs.get("low_latency_to") or prefs.get("site")
    if not site:
        return None  # not part of this decision
    ms = _latency(n, site)
    if ms is None:
        return 0.0
    if prefs.get("site") and not prefs.get("low_latency_to"):
        return 100.0 if ms == 0 else 50.0 * 10 / (10 + ms)
    return 100.0 * 10 / (10 + ms)  # 0 ms -> 100, 10 ms -> 50, 90 ms -> 10


def s_capacity(spec: dict, n: NodeView, ctx: dict) -> float:
    if n.max_memory <= 0:
        return 0.0
    return 100.0 * max(0, n.free_memory - app_memory(spec)) / n.max_memory


def s_speed(spec: dict, n: NodeView, ctx: dict) -> float:
    fastest = ctx["fastest"]
    return 100.0 * float(n.caps.get("speed") or 0) / fastest if fastest > 0 else 0.0


def s_security(spec: dict, n: NodeView, ctx: dict) -> float:
    return 100.0 if n.caps.get("tee") else 0.0


def s_spread(spec: dict, n: NodeView, ctx: dict) -> float:
    return 0.0 if spec["name"] in n.apps else 100.0


SCORERS: list[tuple[str, float, Callable[[dict, NodeView, dict], float | None]]] = [
    ("latency", 3.0, s_latency), ("capacity", 1.0, s_capacity), ("speed", 1.0, s_speed),
    ("security", 0.5, s_security), ("spread", 2.0, s_spread),
]


@dataclass
class Decision:
    """One placement decision: a row per node, and the winner (None: no node fits)."""

    app: str
    replica: int
    winner: str | None
    rows: list[dict]
    time: float

    def to_dict(self) -> dict:
        return {"app": self.app, "replica": self.replica, "winner": self.winner,
                "rows": self.rows, "time": self.time}

    def summary(self) -> str:
        if self.winner is None:
            reasons = "; ".join(f"{r['node']}: {r['filter']} ({r['reason']})" for r in self.rows)
            return f"{self.app}.{self.replica}: no node fits: {reasons or 'no nodes'}"
        row = next(r for r in self.rows if r["node"] == self.winner)
        scores = ", ".join(f"{k} {v:.0f}" for k, v in row["scores"].items())
        dropped = sum(1 for r in self.rows if r["filter"])
        return (f"{self.app}.{self.replica} -> {self.winner} (score {row['total']:.1f}: {scores}; "
                f"{dropped} of {len(self.rows)} nodes filtered out)")


def schedule(spec: dict, nodes: Iterable[NodeView], replica: int = 0,
             exclude: Iterable[str] = ()) -> Decision:
    """Pick a node for replica ``replica`` of the app ``spec``. Never one that fails a filter."""
    excluded = set(exclude)
    rows: list[dict] = []
    feasible: list[tuple[NodeView, dict]] = []
    for n in sorted(nodes, key=lambda n: n.name):
        row: dict = {"node": n.name, "filter": None, "reason": None, "scores": {}, "total": None}
        rows.append(row)
        if n.name in excluded:
            row["filter"], row["reason"] = "ready", "the node the app is moving off"
            continue
        for fname, f in FILTERS:
            why = f(spec, n)
            if why is not None:
                row["filter"], row["reason"] = fname, why
                break
        else:
            feasible.append((n, row))
    ctx = {"fastest": max((float(n.caps.get("speed") or 0) for n, _ in feasible), default=0.0)}
    best: tuple[float, str] | None = None
    for n, row in feasible:
        total = weight = 0.0
        for sname, w, s in SCORERS:
            v = s(spec, n, ctx)
            if v is None:
                continue
            row["scores"][sname] = round(v, 1)
            total += w * v
            weight += w
        row["total"] = round(total / weight, 2) if weight else 0.0
        key = (row["total"], n.name)
        if best is None or key[0] > best[0] or (key[0] == best[0] and key[1] < best[1]):
            best = key
    return Decision(spec["name"], replica, best[1] if best else None, rows, time.time())
