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

from foglayer.cluster._spec import AppSpec, decode_spec
from foglayer.runtime import format_size


@dataclass
class NodeView:
    """What the scheduler knows of a node: its capabilities and what is placed on it."""

    name: str
    caps: dict
    ready: bool = True
    used_memory: int = 0
    apps: set[str] = field(default_factory=set)  # apps with an instance placed here
    # May receive secrets and TEE apps: an affirming attestation (never the node's own claim)
    trusted: bool = False
    attestation: str = ""  # the latest attestation result, in a few words (for ``fog explain``)
    cordoned: bool = False  # takes no new work (fog drain); then ``ready`` is False too

    def __post_init__(self) -> None:
        c = self.caps
        self.max_memory = int(c.get("max_memory") or 0)
        self.features = frozenset(c.get("features") or ())
        self.labels = dict(c.get("labels") or {})
        self.tee = list(c.get("tee") or ())
        self.arch = c.get("arch")
        self.speed = float(c.get("speed") or 0)
        self.latency = dict(c.get("latency") or {})

    @property
    def free_memory(self) -> int:
        return self.max_memory - self.used_memory


class App:
    """What the filters and scorers need of an app spec, computed once per decision."""

    def __init__(self, spec: AppSpec | dict) -> None:
        if not isinstance(spec, AppSpec):  # (simulations and tests may give the JSON form)
            spec = decode_spec(spec)
        cons = spec.constraints
        prefs = spec.preferences
        self.spec = spec
        self.name = spec.name
        self.need = spec.memory
        self.features = tuple(cons.features)
        self.tee = cons.tee
        self.labels = tuple(cons.labels.items())
        self.arch = cons.arch
        self.trust = spec.needs_trust
        self.site = prefs.low_latency_to or prefs.site
        self.strict_site = bool(prefs.site and not prefs.low_latency_to)


# -- filters: a reason to refuse, or None -------------------------------------------------


def f_ready(a: App, n: NodeView) -> str | None:
    if n.ready:
        return None
    return ("node is cordoned (fog drain; fog uncordon lifts it)" if n.cordoned
            else "node is not ready (lost or gone)")


def f_memory(a: App, n: NodeView) -> str | None:
    if a.need > n.max_memory - n.used_memory:
        return (f"needs {format_size(a.need)}, node has {format_size(max(0, n.free_memory))} free "
                f"of {format_size(n.max_memory)}")
    return None


def f_features(a: App, n: NodeView) -> str | None:
    missing = [f for f in a.features if f not in n.features]
    return f"lacks Wasm feature {', '.join(missing)}" if missing else None


def f_tee(a: App, n: NodeView) -> str | None:
    if not a.tee or (a.tee == "any" and n.tee) or a.tee in n.tee:
        return None
    why = f" ({n.attestation})" if n.attestation else ""
    return f"requires TEE {a.tee}, node has {', '.join(n.tee) or 'none'} attested{why}"


def f_trust(a: App, n: NodeView) -> str | None:
    # A node's claims (a TEE, its name) cost nothing to forge: secrets and TEE apps go only to
    # nodes that an affirming attestation proved (``trusted`` in the controller's views).
    if not a.trust or n.trusted:
        return None
    what = "a TEE" if a.tee else "secrets" if a.spec.secrets else "its module's key"
    why = f" ({n.attestation})" if n.attestation else ""
    return f"the app needs {what}: node is not trusted: no affirming attestation{why}"


def f_labels(a: App, n: NodeView) -> str | None:
    for k, v in a.labels:
        have = n.labels.get(k)
        if have != v:
            return f"label {k}={v} required, node has {f'{k}={have}' if have is not None else f'no {k}'}"
    return None


def f_arch(a: App, n: NodeView) -> str | None:
    if a.arch and n.arch != a.arch:
        return f"arch {a.arch} required, node is {n.arch}"
    return None


FILTERS: list[tuple[str, Callable[[App, NodeView], str | None]]] = [
    ("ready", f_ready), ("memory", f_memory), ("features", f_features), ("tee", f_tee),
    ("trust", f_trust), ("labels", f_labels), ("arch", f_arch),
]


def passes(spec: AppSpec | dict | App, n: NodeView) -> bool:
    """Whether node ``n`` passes every filter for the app."""
    a = spec if isinstance(spec, App) else App(spec)
    return all(f(a, n) is None for _, f in FILTERS)


# -- scorers: 0..100 ------------------------------------------------------------------------


def s_latency(a: App, n: NodeView, ctx: dict) -> float | None:
    if not a.site:
        return None  # not part of this decision
    ms = 0.0 if n.labels.get("site") == a.site else n.latency.get(a.site)
    if ms is None:
        return 0.0
    if a.strict_site:
        return 100.0 if ms == 0 else 50.0 * 10 / (10 + ms)
    return 100.0 * 10 / (10 + ms)  # 0 ms -> 100, 10 ms -> 50, 90 ms -> 10


def latency_to(n: NodeView, site: str) -> float | None:
    """Node ``n``'s round trip to ``site`` in ms (0 inside it; None: unknown)."""
    if n.labels.get("site") == site:
        return 0.0
    ms = n.latency.get(site)
    return float(ms) if ms is not None else None


#: A node must be this much nearer to an app's low_latency_to site, in ms and as a share of
#: the current round trip, before the app moves there (hysteresis: measured round trips jitter,
#: and a move costs a downtime; without a margin, two alike nodes would trade the app).
BETTER_BY_MS = 5.0
BETTER_SHARE = 0.5


def latency_gain(spec: AppSpec | dict | App, current: NodeView, other: NodeView) -> str | None:
    """Why ``other`` serves the app's ``low_latency_to`` preference clearly better than its
    current node (None: not clearly, or unknown). The words ``fog explain`` shows."""
    a = spec if isinstance(spec, App) else App(spec)
    site = a.spec.preferences.low_latency_to
    if not site:
        return None
    now, then = latency_to(current, site), latency_to(other, site)
    if now is None or then is None:
        return None
    if now - then < BETTER_BY_MS or then > now * BETTER_SHARE:
        return None
    return f"latency to site {site} {now:g} ms on {current.name} -> {then:g} ms on {other.name}"


def s_capacity(a: App, n: NodeView, ctx: dict) -> float:
    if n.max_memory <= 0:
        return 0.0
    return 100.0 * max(0, n.max_memory - n.used_memory - a.need) / n.max_memory


def s_speed(a: App, n: NodeView, ctx: dict) -> float:
    fastest = ctx["fastest"]
    return 100.0 * n.speed / fastest if fastest > 0 else 0.0


def s_security(a: App, n: NodeView, ctx: dict) -> float:
    # ``n.tee``: backends with an affirming attestation (the controller's view); a simulated
    # one proves nothing, so it counts for little.
    if not n.tee:
        return 0.0
    return 10.0 if set(n.tee) <= {"sim"} else 100.0


def s_spread(a: App, n: NodeView, ctx: dict) -> float:
    return 0.0 if a.name in n.apps else 100.0


SCORERS: list[tuple[str, float, Callable[[App, NodeView, dict], float | None]]] = [
    ("latency", 3.0, s_latency), ("capacity", 1.0, s_capacity), ("speed", 1.0, s_speed),
    ("security", 0.5, s_security), ("spread", 2.0, s_spread),
]


@dataclass
class Decision:
    """One placement decision: a row per examined node, and the winner (None: no node fits).

    Like the Kubernetes scheduler (``percentageOfNodesToScore``), a large cluster is not
    searched whole: past 100 nodes the search stops once enough feasible nodes are found,
    starting where the previous decision stopped. ``examined`` of ``nodes`` were looked at.
    """

    app: str
    replica: int
    winner: str | None
    rows: list[dict]
    time: float
    examined: int = 0
    nodes: int = 0

    def to_dict(self) -> dict:
        return {"app": self.app, "replica": self.replica, "winner": self.winner,
                "rows": self.rows, "time": self.time, "examined": self.examined, "nodes": self.nodes}

    def no_fit(self) -> str:
        """Why no node fits, node by node (a pending replica's error: its row names it)."""
        reasons = "; ".join(f"{r['node']}: {r['filter']} ({r['reason']})" for r in self.rows[:8])
        more = f"; and {len(self.rows) - 8} more" if len(self.rows) > 8 else ""
        return f"no node fits: {reasons or 'no nodes'}{more}"

    def summary(self) -> str:
        if self.winner is None:
            return f"{self.app}.{self.replica}: {self.no_fit()}"
        row = next(r for r in self.rows if r["node"] == self.winner)
        scores = ", ".join(f"{k} {v:.0f}" for k, v in row["scores"].items())
        dropped = sum(1 for r in self.rows if r["filter"])
        return (f"{self.app}.{self.replica} -> {self.winner} (score {row['total']:.1f}: {scores}; "
                f"{dropped} of {len(self.rows)} nodes filtered out)")


def feasible_to_find(n: int) -> int:
    """How many feasible nodes are enough (Kubernetes' adaptive percentage)."""
    if n <= 100:
        return n
    pct = max(5.0, 50.0 - n / 125.0)
    return max(100, int(n * pct / 100))


def filter_row(a: App, n: NodeView, excluded: set[str] | frozenset[str] = frozenset()) -> dict:
    """Node ``n``'s row in a decision: the first filter that refuses it and why, or a row
    for its scores (``filter`` None)."""
    if n.name in excluded:
        return {"node": n.name, "filter": "ready", "reason": "the node the app is moving off",
                "scores": {}, "total": None}
    for fname, f in FILTERS:
        why = f(a, n)
        if why is not None:
            return {"node": n.name, "filter": fname, "reason": why, "scores": {}, "total": None}
    return {"node": n.name, "filter": None, "reason": None, "scores": {}, "total": None}


def score_rows(a: App, feasible: list[tuple[NodeView, dict]]) -> str | None:
    """Score each feasible node into its row; the winner's name (ties: the lower name)."""
    ctx = {"fastest": max((n.speed for n, _ in feasible), default=0.0)}
    best: tuple[float, str] | None = None
    for n, row in feasible:
        total = weight = 0.0
        scores = row["scores"]
        for sname, w, s in SCORERS:
            v = s(a, n, ctx)
            if v is None:
                continue
            scores[sname] = v
            total += w * v
            weight += w
        t = row["total"] = total / weight if weight else 0.0
        if best is None or t > best[0] or (t == best[0] and n.name < best[1]):
            best = (t, n.name)
    return best[1] if best else None


def schedule(spec: AppSpec | dict, nodes: Iterable[NodeView], replica: int = 0,
             exclude: Iterable[str] = (), *, enough: int | None = None,
             start: int = 0) -> Decision:
    """Pick a node for replica ``replica`` of the app ``spec``. Never one that fails a filter.

    A full scan, pure: the same arguments give the same decision. Past ``enough`` feasible
    nodes the scan stops; ``start`` is where it begins (a caller that rotates passes the
    previous decision's ``start + examined``).
    """
    a = App(spec)
    excluded = set(exclude)
    nodes = list(nodes)
    total_nodes = len(nodes)
    want = enough if enough is not None else feasible_to_find(total_nodes)
    start = start % total_nodes if total_nodes > want else 0
    rows: list[dict] = []
    feasible: list[tuple[NodeView, dict]] = []
    examined = 0
    for i in range(total_nodes):
        n = nodes[(start + i) % total_nodes]
        examined += 1
        row = filter_row(a, n, excluded)
        rows.append(row)
        if row["filter"] is None:
            feasible.append((n, row))
            if len(feasible) >= want:
                break
    winner = score_rows(a, feasible)
    rows.sort(key=lambda r: r["node"])
    return Decision(a.name, replica, winner, rows, time.time(), examined, total_nodes)
