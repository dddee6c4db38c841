"""A running continuum for a test: started, its nodes ready, stopped afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from foglayer.cluster import Continuum, MoveError

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


def move_killing_the_target(c, client, app: str, target: str = "iot") -> dict:
    """``fog migrate APP --to TARGET`` with TARGET killed (-9) as soon as pages flow: the move
    fails with that reason; TARGET is started again. The app's placement afterwards."""

    def kill(p) -> None:
        if "copying" in p.phase and c.procs[f"node-{target}"].poll() is None:
            c.kill(f"node-{target}")

    try:
        with pytest.raises(MoveError, match=f"node {target} did not"):
            client.migrate(app, target, kill)
    finally:
        c.start_node(target)
    return client.app_placements(app, 1)[0]
