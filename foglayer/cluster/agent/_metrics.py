"""A node's metrics: invocations and their latency by app and function (counted as they
happen); instances by state, fuel, peak memory and WASI calls by kind (read at scrape)."""

from __future__ import annotations

from collections import Counter

from foglayer.cluster._metrics import Metrics

SLOT_STATES = ("starting", "running", "exited", "failed", "stopped")


class AgentMetrics(Metrics):
    def __init__(self, agent) -> None:
        super().__init__()
        self.invocations = self.counter("fog_invocations_total",
                                        "Service invocations, by app and function.",
                                        ("app", "function"))
        self.invoke_seconds = self.histogram("fog_invocation_seconds",
                                             "Service invocation latency on the node.",
                                             ("app", "function"))
        self.gauges(lambda: self._read(agent))

    @staticmethod
    def _read(agent):
        slots = list(agent.slots.values())
        states = Counter(s.state for s in slots)
        yield ("fog_node_instances", "Instances this node holds, by state.", "gauge", ["state"],
               [((s,), states.get(s, 0)) for s in SLOT_STATES])
        fuel: Counter[str] = Counter()
        peak: dict[str, int] = {}
        calls: Counter[tuple[str, str]] = Counter()
        for s in slots:
            inst = getattr(s.local, "inst", None)
            if inst is None:
                continue
            st = inst.stats
            fuel[s.app] += st.fuel or 0
            peak[s.app] = max(peak.get(s.app, 0), st.peak_memory)
            for name, n in st.wasi_calls.items():
                calls[(s.app, name)] += n
        yield ("fog_fuel", "Wasm instructions executed by the app's instances here.", "counter",
               ["app"], [((a,), n) for a, n in sorted(fuel.items())])
        yield ("fog_peak_memory_bytes", "Largest linear memory of the app's instances here.",
               "gauge", ["app"], [((a,), n) for a, n in sorted(peak.items())])
        yield ("fog_wasi_calls", "WASI calls by the app's instances here, by call.", "counter",
               ["app", "call"], [(k, n) for k, n in sorted(calls.items())])
