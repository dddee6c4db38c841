"""Faults on a multi-site continuum, with real servers and real node processes: a 3-server hub
(JetStream replicas 3), leaf sites behind delaying relays, two controllers. Links are cut at
the relay; servers and controllers are killed with SIGKILL. After every fault the consistency
checker must find each app running exactly as KV says, and nothing that KV does not name."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from _continuum import running

from foglayer.cluster import (
    Creds,
    NodeSpec,
    SyncClient,
    check_continuum,
    load_manifest,
    parse_sites,
    site_nodes,
    wait_until,
)
from foglayer.examples import EXAMPLES


def kv_manifest(tmp: Path, name: str, site: str, extra: str = "") -> Path:
    p = tmp / f"{name}.yaml"
    p.write_text(f"name: {name}\nmodule: {EXAMPLES / 'kvstore.c'}\nkind: service\n"
                 f"limits: {{memory: 16MiB, timeout: 5}}\npreferences: {{site: {site}}}\n{extra}")
    return p


def deploy(client, path: Path) -> dict:
    m = load_manifest(path)
    rec = client.deploy(m)
    (p,) = client.wait(m.name, rec["generation"], 1, 120, states=("running",))
    return p


def consistent(client) -> str:
    verdict = client.run(check_continuum(client.client))
    return str(verdict) if verdict.ok else ""


def leader(client) -> str | None:
    entry = client.run(client.client.kv["fog-leader"].get("controller"))
    return json.loads(entry.value)["holder"] if entry.value else None


@pytest.fixture
def sites(tmp_path):
    specs = parse_sites("cloud:3,edge-a@10,edge-b@5")
    with running(tmp_path / "continuum", site_nodes(specs), sites=specs, controllers=2) as c:
        yield c


def test_a_cut_off_edge_keeps_serving_locally_the_leader_dies_and_the_heal_reconciles(sites,
                                                                                   tmp_path):
    c, hub = sites
    kv = deploy(hub, kv_manifest(tmp_path, "kv", "edge-a"))
    mover = deploy(hub, kv_manifest(tmp_path, "mover", "edge-a", "on_partition: move\n"))
    assert kv["node"] == mover["node"] == "edge-a"
    edge = SyncClient(Creds.load(c.server.creds_path("admin", "edge-a")), "edge-a-client")
    try:
        assert edge.invoke("kv", "put", b"k=before") is not None
        c.server.sites["edge-a"].cut()

        # The site runs on and answers its own clients.
        assert edge.invoke("kv", "get", b"k") == b"before"
        wait_until(lambda: hub.nodes()["edge-a"]["state"] == "unreachable", 30,
                   "edge-a marked unreachable")
        # kv stays (its default policy); mover asked to move, and says so.
        moved = wait_until(lambda: (p := hub.placements().get("mover.0")) and p["node"] != "edge-a"
                           and p["state"] == "running" and p, 60, "mover running elsewhere")
        assert moved["moved_from"] == "edge-a"
        assert hub.placements()["kv.0"]["node"] == "edge-a"
        assert edge.invoke("kv", "put", b"k=during") is not None  # still local, still served
        assert any("on_partition: move" in (d.get("why") or "")
                   for d in hub.decision("mover")["replicas"].values())

        # The leader dies during the partition: the standby takes over (within the lease ttl
        # plus a round), and only one leads.
        first = leader(hub)
        c.kill(first, signal.SIGKILL)
        wait_until(lambda: leader(hub) not in (None, first), 15, "the standby to lead")

        c.server.sites["edge-a"].heal()
        wait_until(lambda: hub.nodes()["edge-a"]["state"] == "ready", 60, "edge-a back")
        verdict = wait_until(lambda: consistent(hub), 60, "a consistent continuum after the heal")
        assert "consistent" in verdict
        # Nothing was lost: kv never restarted and kept what it was told during the partition;
        # mover's copy at edge-a was stopped, the moved one serves.
        assert hub.placements()["kv.0"]["node"] == "edge-a"
        assert hub.invoke("kv", "get", b"k") == b"during"
        assert hub.placements()["mover.0"]["node"] == moved["node"]
    finally:
        edge.close()


def test_losing_one_of_three_hub_servers_loses_nothing_and_deploys_go_on(sites, tmp_path):
    c, hub = sites
    deploy(hub, kv_manifest(tmp_path, "kv", "cloud"))
    hub.invoke("kv", "put", b"k=v")
    victim = c.server.sites["cloud"].servers[0]
    victim.proc.kill()
    victim.proc.wait()
    # The clients fail over to the other two; the KV keeps its quorum.
    p = wait_until(lambda: deploy(hub, kv_manifest(tmp_path, "after", "edge-b")), 90,
                   "a deploy after the loss")
    assert p["node"] == "edge-b"
    assert hub.invoke("kv", "get", b"k") == b"v"
    assert "consistent" in wait_until(lambda: consistent(hub), 60, "a consistent continuum")


def test_the_scheduler_picks_the_node_it_measured_nearest(tmp_path):
    """Two edge nodes alike but for their links: 60 ms and 2 ms each way from the hub; the app
    wants low latency to a third site, 1 ms from the hub. No latency is declared anywhere, so
    only the round trips the nodes measured through the relays can decide (a tie would go to
    n-far, the lower name)."""
    specs = parse_sites("cloud,far@60,near@2,target@1")
    nodes = [NodeSpec("n-far", "edge", site="far"), NodeSpec("n-near", "edge", site="near")]
    with running(tmp_path / "continuum", nodes, sites=specs) as (c, hub):
        def measured():
            hbs = hub.heartbeats(1.0)
            rtt = {n: hbs[n]["rtt"].get("target") for n in ("n-far", "n-near") if n in hbs}
            return rtt if len(rtt) == 2 and all(rtt.values()) else None
        rtt = wait_until(measured, 30, "both nodes to measure the target site")
        assert rtt["n-far"] > 2 * 60 > rtt["n-near"]
        p = deploy(hub, _manifest_low_latency(tmp_path))
        assert p["node"] == "n-near"
        rows = {r["node"]: r for r in hub.decision("near")["replicas"]["0"]["rows"]}
        assert rows["n-near"]["scores"]["latency"] > rows["n-far"]["scores"]["latency"]


def _manifest_low_latency(tmp: Path) -> Path:
    p = tmp / "near.yaml"
    p.write_text(f"name: near\nmodule: {EXAMPLES / 'kvstore.c'}\nkind: service\n"
                 "limits: {memory: 16MiB}\npreferences: {low_latency_to: target}\n")
    return p
