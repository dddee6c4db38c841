"""Failures, with real processes: ``kill -9`` a node and its apps come back elsewhere;
restart the controller and nothing is lost or duplicated; kill the leader of two controllers
and the standby takes over."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

from nats.js.errors import KeyNotFoundError

from foglayer.cluster import Continuum, NodeSpec, load_manifest, wait_until
from foglayer.cluster._lease import KEY

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"
# A node timeout well above the heartbeat: on a loaded 2-core CI machine a starved agent must
# not pass for a dead one in the tests that assert that nothing moves.
NODE_TIMEOUT, LEASE_TTL, HEARTBEAT = 4.0, 2.0, 0.25


def start(tmp_path: Path, controllers: int = 1, nodes=("cloud", "edge", "iot")) -> tuple:
    c = Continuum(tmp_path / "continuum", [NodeSpec(n, n) for n in nodes], controllers=controllers,
                  node_timeout=NODE_TIMEOUT, lease_ttl=LEASE_TTL, heartbeat=HEARTBEAT)
    c.start()
    client = c.client()
    wait_until(lambda: len([n for n in client.nodes().values() if n["state"] == "ready"]) == len(nodes),
               60, "the nodes")
    return c, client


def deploy(client, tmp_path: Path, name: str, text: str) -> dict:
    p = tmp_path / f"{name}.yaml"
    p.write_text(f"name: {name}\n{text}")
    m = load_manifest(p)
    rec = client.deploy(m)
    client.wait(name, rec["generation"], m.spec.replicas, 60, states=("running",))
    return rec


SERVICE = f"module: {PROGRAMS / 'cluster_service.c'}\nkind: service\nlimits: {{memory: 16MiB}}\n"


def instances(client) -> Counter:
    """Every instance the nodes hold and run, as the nodes themselves report them."""
    hbs = client.heartbeats(3 * HEARTBEAT + 0.3)
    return Counter((iid, rep["app"], rep["replica"]) for hb in hbs.values()
                   for iid, rep in hb["instances"].items() if rep["state"] == "running")


def test_kill_9_a_node_moves_its_apps(tmp_path):
    c, client = start(tmp_path)
    try:
        deploy(client, tmp_path, "svc", SERVICE + "replicas: 2\n")
        deploy(client, tmp_path, "near", SERVICE + "preferences: {site: edge}\n")
        victim = client.app_placements("near", 1)[0]["node"]
        assert victim == "edge"
        on_victim = [(k, p) for k, p in client.placements().items() if p["node"] == victim]
        c.kill(f"node-{victim}")  # SIGKILL (how fast they move: fog bench cluster)

        def moved():
            ps = client.placements()
            return all(ps[k]["state"] == "running" and ps[k]["node"] != victim for k, _ in on_victim) and ps
        ps = wait_until(moved, NODE_TIMEOUT + 20, "the apps to move")
        for key, _ in on_victim:
            p = ps[key]
            assert p["moved_from"] == victim
            assert p["running_at"] >= p["lost_at"]  # restarted after the loss, not before
        assert client.nodes()[victim]["state"] == "lost"
        assert client.invoke("near", "add", b"2") == b"2"
        # The moved replicas still spread: the two svc replicas sit on two different nodes.
        assert ps["svc.0"]["node"] != ps["svc.1"]["node"]
        # A lost node that comes back gets no stale instance: it is told to stop them.
        c.start_node(victim)
        wait_until(lambda: client.nodes()[victim]["state"] == "ready", 30, "the node to return")
        counts = instances(client)
        assert all(n == 1 for n in counts.values())
        assert sorted((a, r) for _, a, r in counts) == [("near", 0), ("svc", 0), ("svc", 1)]
    finally:
        client.close()
        c.stop()


def test_restarting_the_controller_loses_and_duplicates_nothing(tmp_path):
    c, client = start(tmp_path, nodes=("cloud", "edge"))
    try:
        deploy(client, tmp_path, "svc", SERVICE + "replicas: 2\n")
        deploy(client, tmp_path, "one", SERVICE)
        client.invoke("one", "add", b"40")
        before = client.placements()
        running_before = instances(client)
        assert len(running_before) == 3
        c.kill("controller-0")  # SIGKILL: no goodbye
        c.start_controller(0)
        # The new controller leads, reads the KV state back and keeps every instance.
        wait_until(lambda: any(e["kind"] == "leader" and "3 placements" in e["message"]
                               for e in client.events(20)), 30, "the new controller to lead")
        time.sleep(NODE_TIMEOUT)  # a full node timeout and start grace: time to (not) act
        after = client.placements()
        assert {k: p["instance"] for k, p in after.items()} == \
            {k: p["instance"] for k, p in before.items()}
        assert all(p["state"] == "running" for p in after.values())
        assert instances(client) == running_before
        assert client.invoke("one", "add", b"2") == b"42"  # the same instance, state intact
        # And it still works: a new app gets placed.
        deploy(client, tmp_path, "late", SERVICE)
        assert len(instances(client)) == 4
    finally:
        client.close()
        c.stop()


def leader(client) -> str | None:
    try:
        entry = client.run(client.client.kv["fog-leader"].get(KEY))
    except KeyNotFoundError:  # no leader yet, or the lease was given up
        return None
    return json.loads(entry.value)["holder"] if entry.value else None


def test_standby_controller_takes_over_from_a_dead_leader(tmp_path):
    c, client = start(tmp_path, controllers=2, nodes=("cloud", "edge"))
    try:
        first = wait_until(lambda: leader(client), 20, "a leader")
        deploy(client, tmp_path, "svc", SERVICE)
        before = client.placements()
        c.kill(f"{first}")  # controller-0 or controller-1, SIGKILL (how fast: fog bench cluster)
        wait_until(lambda: (h := leader(client)) and h != first and h, 30, "a new leader")
        deploy(client, tmp_path, "after", SERVICE)  # the new leader places new apps
        after = client.placements()
        assert after["svc.0"]["instance"] == before["svc.0"]["instance"], client.events(30)
        assert sorted(a for _, a, _ in instances(client)) == ["after", "svc"]
    finally:
        client.close()
        c.stop()


def test_two_live_controllers_never_both_lead(tmp_path):
    c, client = start(tmp_path, controllers=2, nodes=("cloud",))
    try:
        wait_until(lambda: leader(client), 20, "a leader")
        for i in range(4):
            deploy(client, tmp_path, f"app{i}", SERVICE)
        time.sleep(LEASE_TTL)
        counts = instances(client)
        assert sorted(a for _, a, _ in counts) == [f"app{i}" for i in range(4)]
        leads = [e["controller"] for e in client.events(100) if e["kind"] == "leader"]
        assert len(leads) == 1, leads
    finally:
        client.close()
        c.stop()
