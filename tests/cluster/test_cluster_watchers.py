"""The client's KV watchers leave no JetStream consumer behind, however they end: a thousand
waits in a row once hit the hub's 'maximum consumers limit reached' (each left an ordered
consumer for five minutes). Against a real nats-server whose placements bucket is given a
small consumer limit, so a leak shows within a few dozen calls."""

from __future__ import annotations

import asyncio

import pytest

from foglayer.cluster import EmbeddedServer
from foglayer.cluster._protocol import LOGS_STREAM, PLACEMENTS, encode, log_subject
from foglayer.cluster.client import Client
from foglayer.errors import FogError

LIMIT = 12  # consumers the placements stream allows; each kind of exit below runs more often
STREAM = f"KV_{PLACEMENTS}"


@pytest.fixture()
def server(tmp_path):
    srv = EmbeddedServer(tmp_path / "nats").start()
    try:
        yield srv
    finally:
        srv.stop()


async def _client(server) -> Client:
    client = await Client.open(server.creds("admin"))
    for stream in (STREAM, LOGS_STREAM):
        info = await client.js.stream_info(stream)
        info.config.max_consumers = LIMIT
        await client.js.update_stream(info.config)
    return client


async def _consumers(client: Client, stream: str = STREAM) -> int:
    return (await client.js.stream_info(stream)).state.consumer_count


def test_wait_deletes_its_consumer_on_every_exit(server):
    async def go():
        client = await _client(server)
        try:
            baseline = await _consumers(client)
            await client.kv[PLACEMENTS].put("up.0", encode({"generation": 1, "state": "running"}))
            for _ in range(LIMIT + 3):  # returns: every replica is running
                (p,) = await client.wait("up", 1, 1, timeout=10)
                assert p["state"] == "running"
            for _ in range(LIMIT + 3):  # times out: nothing places "never"
                with pytest.raises(FogError, match="not running after"):
                    await client.wait("never", 1, 1, timeout=0.05)
            for delay in [0.0, 0.001, 0.01, 0.05] * 4:  # cancelled, also while being made
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(client.wait("never", 1, 1, timeout=30), delay)
            for _ in range(LIMIT + 3):  # the snapshot behind ps/nodes/placements
                assert "up.0" in await client.placements()
            for _ in range(100):  # a cancelled making finishes its removal in the background
                if await _consumers(client) == baseline:
                    break
                await asyncio.sleep(0.05)
            assert await _consumers(client) == baseline
        finally:
            await client.close()

    asyncio.run(go())



def test_reading_logs_deletes_its_consumer(server):
    async def go():
        client = await _client(server)
        try:
            baseline = await _consumers(client, LOGS_STREAM)
            await client.js.publish(log_subject("n1", "up", 0, "stdout"), b"hi\n")
            for _ in range(LIMIT + 3):
                await client.logs("up", lambda chunk: None)
                assert client.dropped_logs == 1  # (no placement wrote it)
            assert await _consumers(client, LOGS_STREAM) == baseline
        finally:
            await client.close()

    asyncio.run(go())
