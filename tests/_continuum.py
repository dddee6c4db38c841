"""A running continuum for a test: started, its nodes ready, stopped afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from foglayer.cluster import Continuum, wait_until

FAST = {"node_timeout": 2.0, "lease_ttl": 3.0, "heartbeat": 0.25}


@contextmanager
def running(root, nodes, *, timeout: float = 90, **options) -> Iterator:
    """``(continuum, admin SyncClient)`` once all of ``nodes`` are ready."""
    c = Continuum(root, nodes, **{**FAST, **options})
    c.start()
    client = c.client()
    try:
        wait_until(lambda: sorted(n for n, r in client.nodes().items() if r["state"] == "ready")
                   == sorted(n.name for n in nodes), timeout, f"{len(nodes)} ready nodes")
        yield c, client
    finally:
        client.close()
        c.stop()
