"""A running continuum for a test: started, its nodes ready, stopped afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from foglayer.cluster import Continuum

FAST = {"node_timeout": 2.0, "lease_ttl": 3.0, "heartbeat": 0.25}


@contextmanager
def running(root, nodes, *, timeout: float = 90, **options) -> Iterator:
    """``(continuum, admin SyncClient)`` once all of ``nodes`` are ready."""
    c = Continuum(root, nodes, **{**FAST, **options})
    c.start()
    client = c.client()
    try:
        c.wait_ready(client, timeout)
        yield c, client
    finally:
        client.close()
        c.stop()
