"""Sites on real NATS servers: a 3-server hub with JetStream replicas, leaf sites behind
delaying relays. Local traffic stays local, a link costs its delay, a cut link keeps each side
working on its own and heals, and the hub survives the loss of one server."""

from __future__ import annotations

import asyncio
import time

import nats
import pytest

from foglayer.cluster._protocol import JS_DOMAIN
from foglayer.cluster._sites import SiteCluster, parse_sites
from foglayer.errors import FogError


def test_sites_parse_hub_servers_and_link_delays():
    hub, a, b = parse_sites("cloud:3,edge-a,edge-b@25")
    assert (hub.name, hub.servers, hub.hub) == ("cloud", 3, True)
    assert (a.name, a.servers, a.delay_ms, a.hub) == ("edge-a", 1, 10.0, False)
    assert b.delay_ms == 25.0


@pytest.mark.parametrize("text, word", [
    ("", "no sites"), ("cloud:9", "1 to 5"), ("cloud,edge:2", "one server"),
    ("cloud@5", "no link delay"), ("cloud,cloud", "named twice"), ("Cloud!", "expected NAME"),
    ("cloud,edge@99999", "not a link"),
])
def test_bad_sites_get_one_line_errors(text, word):
    with pytest.raises(FogError, match=word) as e:
        parse_sites(text)
    assert "\n" not in str(e.value)


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    sc = SiteCluster(tmp_path_factory.mktemp("sites"), parse_sites("cloud:3,edge-a@30,edge-b@5"))
    sc.start()
    yield sc
    sc.stop()


async def _connect(sc: SiteCluster, site: str | None = None):
    c = sc.creds("admin", site)
    return await nats.connect(c.server.split(","), user=c.user, password=c.password,
                              max_reconnect_attempts=-1, reconnect_time_wait=0.2)


async def _echo(nc, subject: str) -> None:
    async def cb(msg):
        await msg.respond(msg.data)
    await nc.subscribe(subject, cb=cb)
    await nc.flush()


async def _quiet(sites, site: str, still: float = 0.5, limit: float = 10.0) -> None:
    """Wait until nothing has crossed ``site``'s link for ``still`` seconds."""
    t0 = time.monotonic()
    last, since = sites.sites[site].link_bytes(), time.monotonic()
    while time.monotonic() - since < still and time.monotonic() - t0 < limit:
        await asyncio.sleep(0.05)
        now = sites.sites[site].link_bytes()
        if now != last:
            last, since = now, time.monotonic()


def test_a_local_request_at_an_edge_never_crosses_the_leaf_link(sites):
    async def go():
        server, client = await _connect(sites, "edge-a"), await _connect(sites, "edge-a")
        await _echo(server, "app.local.echo")
        await client.request("app.local.echo", b"warm", timeout=5)
        await _quiet(sites, "edge-a")  # interest updates and pings settle (slow under load)
        before = sites.sites["edge-a"].link_bytes()
        for _ in range(50):
            assert (await client.request("app.local.echo", b"x" * 100, timeout=5)).data == b"x" * 100
        crossed = sites.sites["edge-a"].link_bytes() - before
        await server.close()
        await client.close()
        return crossed
    # 50 requests and replies of 100 bytes would be over 10 KB on the link; a stray ping of
    # the leaf connection is a few bytes.
    assert asyncio.run(go()) < 64


def test_a_request_across_a_link_pays_its_delay_both_ways(sites):
    async def go():
        server, client = await _connect(sites, "edge-a"), await _connect(sites)
        await _echo(server, "app.far.echo")
        await asyncio.sleep(0.3)
        before = sites.sites["edge-a"].link_bytes()
        rtts = []
        for _ in range(5):
            t = time.perf_counter()
            await client.request("app.far.echo", b"ping", timeout=5)
            rtts.append(time.perf_counter() - t)
        crossed = sites.sites["edge-a"].link_bytes() - before
        await server.close()
        await client.close()
        return min(rtts), crossed
    rtt, crossed = asyncio.run(go())
    assert rtt >= 2 * 0.030  # 30 ms each way through edge-a's relay
    assert crossed > 0


def test_a_cut_link_keeps_each_side_working_and_heals(sites):
    edge = sites.sites["edge-b"]

    async def go():
        local_srv, local_cli = await _connect(sites, "edge-b"), await _connect(sites, "edge-b")
        hub = await _connect(sites)
        await _echo(local_srv, "app.b.echo")
        await asyncio.sleep(0.3)
        await hub.request("app.b.echo", b"before", timeout=5)
        edge.cut()
        try:
            assert (await local_cli.request("app.b.echo", b"during", timeout=5)).data == b"during"
            with pytest.raises((nats.errors.NoRespondersError, nats.errors.TimeoutError)):
                await hub.request("app.b.echo", b"during", timeout=1)
        finally:
            edge.heal()
        deadline = time.monotonic() + 20  # the leaf reconnects on its own (1 s back-off)
        while True:
            try:
                return (await hub.request("app.b.echo", b"after", timeout=1)).data
            except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
                assert time.monotonic() < deadline, "the link did not heal"
                await asyncio.sleep(0.2)
    assert asyncio.run(go()) == b"after"


def test_the_hub_keeps_every_kv_write_when_one_of_three_servers_dies(sites):
    async def go():
        nc = await _connect(sites)
        js = nc.jetstream(domain=JS_DOMAIN)
        kv = await js.create_key_value(bucket="survive", replicas=3)
        for i in range(20):
            await kv.put(f"k{i}", str(i).encode())
        victim = sites.sites["cloud"].servers[0]
        victim.proc.kill()
        victim.proc.wait()
        try:
            deadline = time.monotonic() + 20
            for i in range(20, 40):
                while True:
                    try:
                        await kv.put(f"k{i}", str(i).encode())
                        break
                    except Exception:  # noqa: BLE001 - a new stream leader is being elected
                        assert time.monotonic() < deadline, "the hub lost its quorum"
                        await asyncio.sleep(0.2)
            values = [(await kv.get(f"k{i}")).value for i in range(40)]
        finally:
            victim.spawn()
            victim.wait_ready(20)
            await nc.close()
        return values
    assert asyncio.run(go()) == [str(i).encode() for i in range(40)]
