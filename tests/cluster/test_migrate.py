"""Live moves of a service between nodes (``fog migrate``): a real nats-server, a controller
and node agents as processes of their own. The state goes with the app; calls made during
the move are held and served after it, none lost and none answered twice."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from foglayer.cluster import Continuum, MoveError, NodeSpec, load_manifest, wait_until

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"
TIMEOUTS = {"node_timeout": 3.0, "lease_ttl": 3.0, "heartbeat": 0.25}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Continuum(tmp_path_factory.mktemp("continuum"),
                  [NodeSpec("cloud", "cloud"), NodeSpec("edge", "edge"), NodeSpec("iot", "iot")],
                  **TIMEOUTS)
    c.start()
    client = c.client()
    try:
        wait_until(lambda: sum(n["state"] == "ready" for n in client.nodes().values()) == 3,
                   60, "three ready nodes")
        yield c, client
    finally:
        client.close()
        c.stop()


def deploy(client, tmp_path: Path, name: str, extra: str = "") -> dict:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\nmodule: {PROGRAMS / 'cluster_service.c'}\nkind: service\n"
                    f"limits: {{memory: 16MiB}}\nconstraints: {{labels: {{tier: edge}}}}\n{extra}")
    m = load_manifest(path)
    (p,) = client.wait(name, client.deploy(m)["generation"], 1, 60)
    assert p["node"] == "edge"
    return p


def test_service_moves_live_with_its_state_and_keeps_answering(cluster, tmp_path):
    c, client = cluster
    path = tmp_path / "kv.yaml"
    path.write_text(f"name: mover\nmodule: {PROGRAMS / 'cluster_service.c'}\nkind: service\n"
                    "limits: {memory: 16MiB}\n")
    m = load_manifest(path)
    (p,) = client.wait("mover", client.deploy(m)["generation"], 1, 60)
    src = p["node"]
    dst = "cloud" if src != "cloud" else "edge"
    assert client.invoke("mover", "add", b"5") == b"5"
    assert client.invoke("mover", "add", b"7") == b"12"

    results: list[bytes] = []
    errors: list[Exception] = []
    stop = threading.Event()

    def load() -> None:  # a steady stream of calls while it moves: each adds 1
        while not stop.is_set():
            try:
                results.append(client.invoke("mover", "add", b"1"))
            except Exception as e:  # noqa: BLE001
                errors.append(e)

    t = threading.Thread(target=load)
    t.start()
    try:
        wait_until(lambda: len(results) >= 5, 30, "calls before the move")
        summary = client.migrate("mover", dst)
        n = len(results)
        wait_until(lambda: len(results) >= n + 5, 30, "calls after the move")
    finally:
        stop.set()
        t.join(30)
    assert not errors, errors
    assert summary.source == src and summary.target == dst and summary.rounds == 1
    assert 0 < summary.downtime_s <= summary.total_s and summary.bytes_sent > 0
    assert summary.memory >= 64 << 10
    placed = client.app_placements("mover", 1)[0]
    assert placed["node"] == dst and placed["state"] == "running"
    # Every call was served exactly once, in order: the totals run 13, 14, ... without a gap.
    assert [int(r) for r in results] == list(range(13, 13 + len(results)))
    assert client.invoke("mover", "add", b"0") == str(12 + len(results)).encode()
    client.stop("mover")


def test_move_to_a_node_that_fails_a_filter_is_refused_with_the_reason(cluster, tmp_path):
    c, client = cluster
    deploy(client, tmp_path, "pinned")
    with pytest.raises(MoveError, match="node cloud fails the labels filter"):
        client.migrate("pinned", "cloud")
    with pytest.raises(MoveError, match="already runs on edge"):
        client.migrate("pinned", "edge")
    r = subprocess.run([sys.executable, "-m", "foglayer.cli", "migrate", "pinned", "--to", "iot",
                        "--server", c.server.url, "--creds", str(c.creds("admin"))],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert r.stderr.count("\n") == 1 and "fails the labels filter" in r.stderr
    assert client.app_placements("pinned", 1)[0]["node"] == "edge"
    assert client.invoke("pinned", "add", b"2") == b"2"
    client.stop("pinned")
