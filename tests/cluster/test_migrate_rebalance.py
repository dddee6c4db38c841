"""The controller moves an app live, on its own, when a node appears that serves the app's
``low_latency_to`` preference clearly better than its current one; ``fog explain`` says why.
A real nats-server, a controller and node processes."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from foglayer.cluster import Continuum, NodeSpec, load_manifest, wait_until

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"


def test_a_better_node_for_an_apps_latency_preference_takes_it_live(tmp_path):
    with Continuum(tmp_path / "continuum", [NodeSpec("cloud", "cloud")], node_timeout=3.0,
                   lease_ttl=3.0, heartbeat=0.25) as c:
        client = c.client()
        try:
            wait_until(lambda: client.nodes().get("cloud", {}).get("state") == "ready", 60,
                       "cloud ready")
            path = tmp_path / "near.yaml"
            path.write_text(f"name: near\nmodule: {PROGRAMS / 'cluster_service.c'}\n"
                            "kind: service\nlimits: {memory: 16MiB}\n"
                            "preferences: {low_latency_to: iot}\n")
            (p0,) = client.wait("near", client.deploy(load_manifest(path))["generation"], 1, 60)
            assert p0["node"] == "cloud"  # the only node: 45 ms from iot
            assert client.invoke("near", "add", b"20") == b"20"

            c.add_node(NodeSpec("edge", "edge"))  # 5 ms from iot
            p = wait_until(lambda: (q := client.app_placements("near", 1)[0])["node"] == "edge"
                           and q["state"] == "running" and q, 60, "the move to edge")
            assert p["moved_from"] == "cloud" and p["instance"] != p0["instance"]
            assert client.invoke("near", "add", b"1") == b"21"  # moved live: state kept
            (move,) = client.decision("near")["replicas"]["0"]["moves"]
            assert (move["source"], move["target"]) == ("cloud", "edge")
            assert "latency to site iot 45 ms on cloud -> 5 ms on edge" in move["why"]
            r = subprocess.run([sys.executable, "-m", "foglayer.cli", "explain", "near",
                                "--server", c.server.url, "--creds", str(c.creds("admin"))],
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            text = " ".join(r.stdout.split())
            assert "moved live from cloud to edge: a better node: latency to site iot 45 ms" \
                in text
            assert any(e["kind"] == "moved" and "a better node" in e["message"]
                       for e in client.events(50))
            client.stop("near")
        finally:
            client.close()


def test_the_controller_never_undoes_an_operators_move_for_latency(tmp_path):
    # settle 1 s: without the operator's pin the controller would take the app back to the
    # nearer node within a few seconds
    nodes = [NodeSpec("cloud", "cloud"), NodeSpec("edge", "edge")]
    with Continuum(tmp_path / "continuum", nodes, node_timeout=3.0, lease_ttl=3.0,
                   heartbeat=0.25, settle=1.0) as c:
        client = c.client()
        try:
            c.wait_ready(client, 60)
            path = tmp_path / "near.yaml"
            path.write_text(f"name: near\nmodule: {PROGRAMS / 'cluster_service.c'}\n"
                            "kind: service\nlimits: {memory: 16MiB}\n"
                            "preferences: {low_latency_to: iot}\n")
            (p0,) = client.wait("near", client.deploy(load_manifest(path))["generation"], 1, 60)
            assert p0["node"] == "edge"  # 5 ms from iot; cloud is 45 ms
            client.migrate("near", "cloud")
            time.sleep(8)  # four looks of the rebalancer, each past the settle time
            (p,) = client.app_placements("near", 1)
            assert (p["node"], p["state"]) == ("cloud", "running")
            assert not [e for e in client.events(50) if "a better node" in e["message"]]
            client.stop("near")
        finally:
            client.close()
