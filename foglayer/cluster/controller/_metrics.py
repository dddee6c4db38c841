"""The controller's metrics: scheduler decisions and refusals, deploy-to-running, restarts,
moves and their downtime, attestation results; nodes and instances by state (at scrape)."""

from __future__ import annotations

from collections import Counter

from foglayer.cluster._metrics import DEPLOY_BUCKETS, Metrics

NODE_STATES = ("ready", "lost", "unreachable")
INSTANCE_STATES = ("pending", "scheduled", "starting", "running", "exited", "failed")


class ControllerMetrics(Metrics):
    def __init__(self, ctl) -> None:
        super().__init__()
        self.decisions = self.counter("fog_scheduler_decisions_total",
                                      "Placement decisions, by result (placed or pending).",
                                      ("result",))
        self.refusals = self.counter("fog_scheduler_filter_refusals_total",
                                     "Nodes a filter refused in a decision, by filter.", ("filter",))
        self.deploy = self.histogram("fog_deploy_to_running_seconds",
                                     "From a deploy to its replica running.", buckets=DEPLOY_BUCKETS)
        self.restarts = self.counter("fog_restarts_total", "Restarts, by app.", ("app",))
        self.moves = self.counter("fog_migrations_total", "Live moves, by result.", ("result",))
        self.downtime = self.histogram("fog_migration_downtime_seconds",
                                       "Downtime of a live move (last instruction on the source "
                                       "to the first on the target).")
        self.attestations = self.counter("fog_attestation_results_total",
                                         "Attestation results, by EAR status.", ("status",))
        self.events = self.counter("fog_events_total", "Controller events, by kind.", ("kind",))
        self.gauges(lambda: self._read(ctl))

    @staticmethod
    def _read(ctl):
        nodes = Counter(rec.state for rec in ctl.nodes.values())
        yield ("fog_nodes", "Nodes in the registry, by state.", "gauge", ["state"],
               [((s,), nodes.get(s, 0)) for s in NODE_STATES])
        inst = Counter(p.get("state") for p in ctl.placements.values())
        yield ("fog_instances", "Placed instances, by state.", "gauge", ["state"],
               [((s,), inst.get(s, 0)) for s in INSTANCE_STATES])
        yield ("fog_controller_leader", "1 while this controller leads.", "gauge", [],
               [((), 1 if ctl.leader else 0)])
        yield ("fog_node_messages_dropped", "Messages from a node dropped as malformed (they do "
               "not fit their type), by node.", "counter", ["node"],
               [((n,), c) for n, c in sorted(ctl.dropped.items())])

    def on_decision(self, decision, why: str) -> None:
        self.decisions.labels("placed" if decision.winner else "pending").inc()
        for row in decision.rows:
            if row.get("filter"):
                self.refusals.labels(row["filter"]).inc()
        if why.startswith("restart"):
            self.restarts.labels(decision.app).inc()

    def on_running(self, placement: dict, deployed_at: float | None) -> None:
        """A first run of a deploy (not a restart, not a move): deploy-to-running."""
        if deployed_at and not placement.get("restarts") and not placement.get("moved_from"):
            self.deploy.observe(max(0.0, placement["running_at"] - deployed_at))

    def on_event(self, kind: str, fields: dict) -> None:
        self.events.labels(kind).inc()
        if kind == "attest" and fields.get("status"):
            self.attestations.labels(str(fields["status"])).inc()
        elif kind == "moved" and "downtime_s" in fields:
            self.moves.labels("done").inc()
            self.downtime.observe(float(fields["downtime_s"]))
        elif kind == "move-failed":
            self.moves.labels("failed").inc()
