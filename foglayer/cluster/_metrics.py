"""Prometheus metrics of the controller and of every node agent (PyPI ``prometheus-client``).

Each process has a registry of its own and serves it over HTTP on ``--metrics-port`` (0: a free
port), on 127.0.0.1 unless told otherwise, and says where at start. Counters and histograms
are bumped where things happen; gauges (nodes, instances by state, fuel, memory, WASI calls)
are read from the process's own state at scrape time, so they are never stale and cost
nothing between scrapes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from foglayer.errors import FogError

# Invocations are sub-millisecond to seconds; deploys tens of ms to a minute (a first compile).
CALL_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30)
DEPLOY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class _Gauges:
    """A collector that asks ``read()`` for ``(name, help, kind, labels, [(values, number)])``."""

    def __init__(self, read: Callable[[], Iterable[tuple]]) -> None:
        self.read = read

    def collect(self):
        for name, text, kind, labels, samples in self.read():
            family = (CounterMetricFamily if kind == "counter" else GaugeMetricFamily)(
                name, text, labels=labels)
            for values, number in samples:
                family.add_metric(list(values), number)
            yield family


class Metrics:
    """One process's metrics; :meth:`serve` starts the HTTP endpoint."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.port: int | None = None
        self._server = None

    def counter(self, name: str, text: str, labels: tuple[str, ...] = ()) -> Counter:
        return Counter(name, text, labels, registry=self.registry)

    def histogram(self, name: str, text: str, labels: tuple[str, ...] = (),
                  buckets: tuple[float, ...] = CALL_BUCKETS) -> Histogram:
        return Histogram(name, text, labels, buckets=buckets, registry=self.registry)

    def gauges(self, read: Callable[[], Iterable[tuple]]) -> None:
        self.registry.register(_Gauges(read))

    def serve(self, port: int = 0, host: str = "127.0.0.1") -> int:
        try:
            self._server, _ = start_http_server(port, host, registry=self.registry)
        except OSError as e:
            raise FogError(f"--metrics-port {port}: cannot listen on {host}:{port}: "
                           f"{e.strerror}") from None
        self.port = self._server.server_address[1]
        return self.port

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
