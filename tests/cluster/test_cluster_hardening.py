"""Issue 14, the cluster's findings: a node (with its own, real credentials) lies, sends bad
messages, asks for modules it was not given, writes into another node's app's logs; bad
records in the store; modules nobody uses; descriptors. A real nats-server, a real controller,
and fake nodes that speak the protocol (or break it) on purpose."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import wasmtime
from nats.js.errors import ObjectNotFoundError

from foglayer.cluster import Client, Controller, ControllerConfig, EmbeddedServer, parse_manifest
from foglayer.cluster._bus import connect
from foglayer.cluster._manifest import BASELINE, FEATURES
from foglayer.cluster._protocol import (
    H_CHUNK,
    H_ERROR,
    H_INSTANCE,
    LEADER,
    MODULES,
    NODES,
    PLACEMENTS,
    Caps,
    Heartbeat,
    InstanceReport,
    ModuleRequest,
    Reply,
    StartRequest,
    decode,
    encode,
    hb_subject,
    log_subject,
    module_subject,
    node_inbox,
)
from foglayer.errors import FogError

REACTOR = wasmtime.wat2wasm(
    '(module (memory (export "memory") 1) (func (export "_initialize"))'
    ' (func (export "fog_alloc") (param i32) (result i32) i32.const 1024))')


@pytest.fixture()
def server(tmp_path):
    with EmbeddedServer(tmp_path / "nats", nodes=("a", "b", "liar")) as s:
        yield s


def run(coro, timeout: float = 90):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def until(pred, timeout: float = 20.0, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if asyncio.iscoroutine(v):
            v = await v
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


class FakeNode:
    """A node that speaks the protocol with its own credentials, and says what it is told to."""

    def __init__(self, server: EmbeddedServer, name: str, **caps) -> None:
        self.server, self.name = server, name
        self.caps = Caps(name=name, arch="x86_64", max_memory=caps.pop("max_memory", 1 << 30),
                         features=[*BASELINE, *FEATURES], **caps)
        self.starts: list[StartRequest] = []
        self.heartbeat: bytes | None = None  # what to send instead of a true heartbeat

    async def __aenter__(self) -> FakeNode:
        self.nc = await connect(creds=self.server.creds(f"node-{self.name}"),
                                inbox_prefix=node_inbox(self.name))
        await self.nc.subscribe(f"fog.cmd.{self.name}.>", cb=self._cmd)
        self._beat = asyncio.create_task(self._beats())
        return self

    async def __aexit__(self, *exc) -> None:
        self._beat.cancel()
        await self.nc.close()

    async def _cmd(self, msg) -> None:
        if msg.subject.endswith(".start"):
            self.starts.append(decode(msg.data, StartRequest))
        await self.nc.publish(msg.reply, encode(Reply(True)))

    async def _beats(self) -> None:
        while True:
            running = {s.instance: InstanceReport(s.app, s.replica, "running", s.generation)
                       for s in self.starts}
            body = self.heartbeat or encode(Heartbeat(self.name, "boot", self.caps,
                                                      instances=running))
            await self.nc.publish(hb_subject(self.name), body)
            await asyncio.sleep(0.1)

    async def ask_module(self, instance: str, digest: str) -> tuple[bytes, str | None]:
        """Ask the controller for a module, as an agent does: (bytes, error header)."""
        inbox = f"{node_inbox(self.name)}.m{os.getpid()}{time.monotonic_ns()}"
        got: dict[int, bytes] = {}
        error: list[str] = []
        done = asyncio.Event()

        async def cb(msg) -> None:
            h = msg.headers or {}
            if H_ERROR in h:
                error.append(h[H_ERROR])
                done.set()
                return
            i, n = map(int, h[H_CHUNK].split("/"))
            got[i] = msg.data
            if len(got) == n:
                done.set()

        sub = await self.nc.subscribe(inbox, cb=cb)
        await self.nc.publish(module_subject(self.name),
                              encode(ModuleRequest(self.name, instance, digest)), reply=inbox)
        await asyncio.wait_for(done.wait(), 10)
        await sub.unsubscribe()
        return b"".join(got[i] for i in sorted(got)), error[0] if error else None


class Cluster:
    """A controller in this process, and an admin client."""

    def __init__(self, server: EmbeddedServer, tmp_path: Path, **cfg) -> None:
        self.server, self.tmp = server, tmp_path
        self.cfg = ControllerConfig(creds=server.creds("controller"), name="ctl", lease_ttl=1.0,
                                    tick=0.05, node_timeout=5.0, **cfg)

    async def __aenter__(self) -> Cluster:
        self.client = await Client.open(self.server.creds("admin"), "fog-test")
        self.stop = asyncio.Event()
        self.controller = Controller(self.cfg)
        self.task = asyncio.create_task(self.controller.run(self.stop))
        await until(lambda: self.controller.leader, what="the controller to lead")
        return self

    async def __aexit__(self, *exc) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 10)
        await self.client.close()

    async def deploy(self, name: str, extra: str = "", wasm: bytes = bytes(REACTOR)):
        (self.tmp / f"{name}.wasm").write_bytes(wasm)
        limits = "" if "limits:" in extra else "limits: {memory: 1MiB}\n"
        m = parse_manifest(f"name: {name}\nmodule: {name}.wasm\nkind: service\n"
                           f"{limits}{extra}", f"{name}.yaml", self.tmp)
        await self.client.deploy(m)
        return m

    async def placement(self, app: str) -> dict | None:
        return (await self.client.app_placements(app, 1))[0]


def test_a_node_claiming_a_tee_gets_no_tee_apps_nor_secrets_even_when_trusted(server, tmp_path):
    # A fake agent claims a TPM and a terabyte: it must not receive a TEE app, nor an app's
    # secrets, on its own word; nor on the operator's (fog trust): secrets are released only
    # after an affirming attestation, and a TEE counts only through one (foglayer.trust).
    async def go():
        async with Cluster(server, tmp_path) as c, \
                FakeNode(server, "liar", tee=["tpm"], max_memory=1 << 40) as liar:
            await c.deploy("tee-app", "constraints: {tee: tpm}\n")
            await until(lambda: c.client._attest_get("vault"), what="the vault key published")
            await c.client.put_secret("TOKEN", b"t")  # a deploy naming a missing one is refused
            await c.deploy("secret-app", "secrets: [TOKEN]\n")
            for app in ("tee-app", "secret-app"):
                p = await until(lambda a=app: c.placement(a), what=f"{app} placed")
                assert p["state"] == "pending", p
                row = (await c.client.decision(app))["replicas"]["0"]["rows"][0]
                assert row["node"] == "liar" and row["filter"] in ("tee", "trust"), row
                assert "attest" in row["reason"], row
            nodes = await c.client.nodes()
            assert nodes["liar"]["trusted"] is False and nodes["liar"]["caps"]["tee"] == ["tpm"]
            await c.client.trust("liar")
            await asyncio.sleep(1.0)
            assert (await c.client.nodes())["liar"]["trusted"] is True
            assert liar.starts == []

    run(go())


def test_a_bad_heartbeat_is_dropped_and_counted_and_scheduling_goes_on(server, tmp_path):
    async def go():
        a = FakeNode(server, "a")
        a.heartbeat = encode({"name": "a", "boot": "x", "caps": {
            "name": "a", "arch": "x86_64", "max_memory": "lots"}})
        async with Cluster(server, tmp_path) as c, a, FakeNode(server, "b") as b:
            await until(lambda: c.controller.dropped["a"] >= 3, what="a's heartbeats dropped")
            await c.deploy("app")
            await until(lambda: b.starts, what="the app placed on b")
            a.heartbeat = b'{"name": "a", "caps": ['  # not even JSON
            n = c.controller.dropped["a"]
            await until(lambda: c.controller.dropped["a"] > n, what="more drops")
            assert "a" not in c.controller.nodes and "a" not in await c.client.nodes()
            events = [e for e in await c.client.events(50) if e["kind"] == "dropped"]
            assert events and "max_memory" in events[0]["message"], events
            assert "node a" in events[0]["message"] and "\n" not in events[0]["message"]
            from prometheus_client import generate_latest

            scrape = generate_latest(c.controller.metrics.registry).decode()
            assert 'fog_node_messages_dropped_total{node="a"}' in scrape, scrape

    run(go())


def test_bad_stored_records_stop_neither_a_restarted_controller_nor_fog_nodes(server, tmp_path):
    async def poison():
        client = await Client.open(server.creds("admin"))
        await client.kv[NODES].put("a", encode({"name": "a", "state": "ready", "caps": {
            "name": "a", "arch": "x86_64", "max_memory": "lots"}}))
        await client.kv[NODES].put("liar", b"\xff not json")
        await client.kv[PLACEMENTS].put("ghost.0", encode({"app": "ghost", "replica": 0}))
        await client.kv[PLACEMENTS].put("app.0", encode({"app": "other", "replica": 0,
                                                        "generation": 1, "instance": "i",
                                                        "state": "running", "node": "b"}))
        await client.kv[LEADER].put("controller", b"[1]")  # a lease nobody holds, not an object
        await client.close()

    async def go():
        await poison()
        async with Cluster(server, tmp_path) as c, FakeNode(server, "b") as b:
            await c.deploy("app")
            await until(lambda: b.starts, what="the app placed on b")
            nodes = await c.client.nodes()
            assert set(nodes) == {"b"}
            assert set(c.client.skipped) == {"fog-nodes/a", "fog-nodes/liar"}

    run(go())
    env = {**os.environ, "FOG_CREDS": str(server.creds_path("admin"))}
    r = subprocess.run([sys.executable, "-m", "foglayer.cli", "nodes"], capture_output=True,
                       env=env, timeout=60)
    assert r.returncode == 0 and b"Traceback" not in r.stderr, r
    assert b"b" in r.stdout and b"attested" in r.stdout


def test_a_node_gets_only_its_modules_and_writes_only_its_apps_logs(server, tmp_path):
    async def go():
        async with Cluster(server, tmp_path) as c, FakeNode(server, "a", labels={"x": "1"}) as a, \
                FakeNode(server, "b") as b:
            m = await c.deploy("app", "constraints: {labels: {x: '1'}}\n")
            digest = m.spec.digest
            # (under load the leader may send the start twice: the first is the one)
            start = (await until(lambda: a.starts, what="the start on a"))[0]
            data, err = await a.ask_module(start.instance, digest)
            assert err is None and hashlib.sha256(data).hexdigest() == digest
            # b was not told to run it: not by its instance, not by a made-up one.
            for instance in (start.instance, "app-0-00000000"):
                data, err = await b.ask_module(instance, digest)
                assert data == b"" and "was not told to run" in err
            # b writes into the app's logs with a's instance: the line is dropped.
            await a.nc.publish(log_subject("a", "app", 0, "stdout"), b"from a\n",
                               headers={H_INSTANCE: start.instance})
            await b.nc.publish(log_subject("b", "app", 0, "stdout"), b"forged by b\n",
                               headers={H_INSTANCE: start.instance})
            await b.nc.publish(log_subject("b", "app", 0, "stdout"), b"no instance\n")
            await a.nc.flush()
            await b.nc.flush()
            chunks: list[dict] = []
            await until(lambda: (chunks.clear(), c.client.logs("app", chunks.append))[1],
                        what="the logs")
            await asyncio.sleep(0.3)
            chunks.clear()
            await c.client.logs("app", chunks.append)
            assert [(x["node"], x["data"]) for x in chunks] == [("a", b"from a\n")]
            assert c.client.dropped_logs == 2

    run(go())


def test_a_module_no_app_uses_is_removed_from_the_object_store(server, tmp_path):
    async def go():
        async with Cluster(server, tmp_path, module_grace=0.3) as c, FakeNode(server, "a"):
            gone = await c.deploy("gone")
            kept = await c.deploy("kept", wasm=bytes(REACTOR) + b"\0\x04\x03fog")  # other bytes
            obs = await c.client.js.object_store(MODULES)
            await until(lambda: c.placement("gone"), what="placed")
            await c.client.stop("gone")

            async def deleted() -> bool:
                try:
                    await obs.get_info(gone.spec.digest)
                    return False
                except ObjectNotFoundError:
                    return True

            await until(deleted, what="the unused module deleted")
            await asyncio.sleep(0.6)
            assert (await obs.get_info(kept.spec.digest)).size == kept.spec.size
            assert any(e["kind"] == "module" for e in await c.client.events(50))

    run(go())


def test_names_that_are_not_subject_tokens_and_oversized_payloads_are_one_line_errors(server):
    async def go():
        client = await Client.open(server.creds("admin"))
        try:
            for bad in ("k*", ">", "../kv", "a.b", ""):
                for call in (client.invoke(bad, "get", b"x"), client.stop(bad),
                             client.decision(bad), client.logs(bad, print)):
                    with pytest.raises(FogError) as e:
                        await call
                    assert "invalid app name" in str(e.value) and "\n" not in str(e.value)
            for bad in ("g*t", ">", "a.b"):
                with pytest.raises(FogError, match="invalid function name"):
                    await client.invoke("kv", bad)
            with pytest.raises(FogError) as e:
                await client.invoke("kv", "get", b"x" * (9 << 20))
            assert "payload is 9437184 bytes" in str(e.value) and "\n" not in str(e.value)
        finally:
            await client.close()

    run(go())
    env = {**os.environ, "FOG_CREDS": str(server.creds_path("admin"))}
    for args in (["invoke", "k*", "get", "x"], ["logs", ">"], ["explain", "../kv"],
                 ["stop", "*"]):
        r = subprocess.run([sys.executable, "-m", "foglayer.cli", *args], capture_output=True,
                           env=env, timeout=60)
        err = r.stderr.decode().strip()
        assert r.returncode == 2 and "invalid app name" in err and len(err.splitlines()) == 1, r


def test_descriptors_are_counted_against_the_node_with_their_own_error(server, tmp_path):
    # A real agent (in this process) gives its instances 600 descriptors in all: two apps of
    # limits.max_fds 400 do not fit together; the second is refused with the reason, and runs
    # once the first is gone.
    from foglayer.cluster import Agent, NodeConfig

    async def go():
        stop = asyncio.Event()
        agent = Agent(NodeConfig("a", creds=server.creds("node-a"), max_fds=600, heartbeat=0.2,
                                 data_dir=tmp_path / "node-a"))
        task = asyncio.create_task(agent.run(stop))
        try:
            async with Cluster(server, tmp_path) as c:
                await until(lambda: "a" in c.controller.nodes, what="the node")
                assert c.controller.nodes["a"].caps.max_fds == 600
                await c.deploy("one", "limits: {memory: 1MiB, max_fds: 400}\n")
                await until(lambda: _state(c, "one", "running"), what="one running")
                await c.deploy("two", "max_restarts: 100\nlimits: {memory: 1MiB, max_fds: 400}\n")
                p = await until(lambda: _state(c, "two", "failed"), what="two refused")
                assert "node out of descriptors: 405 needed (limits.max_fds 400), 195 free" \
                    in p["error"], p
                await c.client.stop("one")
                await until(lambda: _state(c, "two", "running"), 30, what="two running")
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)

    run(go())


async def _state(c: Cluster, app: str, state: str) -> dict | None:
    p = await c.placement(app)
    return p if p and p["state"] == state else None


PROGRAMS = Path(__file__).resolve().parents[1] / "programs"


def test_a_guest_holds_at_most_its_max_fds_and_the_node_keeps_the_rest(server, tmp_path):
    # A guest that opens files without end stops at limits.max_fds (EMFILE), not at the node's
    # own limit: the next app on that node still gets its descriptors.
    from foglayer.cluster import Agent, NodeConfig

    async def go():
        stop = asyncio.Event()
        agent = Agent(NodeConfig("a", creds=server.creds("node-a"), heartbeat=0.2,
                                 data_dir=tmp_path / "node-a"))
        task = asyncio.create_task(agent.run(stop))
        try:
            async with Cluster(server, tmp_path) as c:
                await until(lambda: "a" in c.controller.nodes, what="the node")
                (tmp_path / "hog.yaml").write_text(
                    f"name: hog\nmodule: {PROGRAMS / 'cluster_fd_hog.c'}\ndirs: [/data]\n"
                    "restart: never\nlimits: {max_fds: 16}\n")
                m = parse_manifest((tmp_path / "hog.yaml").read_text(), "hog.yaml", tmp_path)
                await c.client.deploy(m)
                await until(lambda: _state(c, "hog", "exited"), 60, what="the hog to finish")
                chunks: list[dict] = []
                await c.client.logs("hog", chunks.append)
                out = b"".join(x["data"] for x in chunks).decode()
                # 16 in all: stdio (3) and the preopen (1) count.
                assert out.strip() == "held 12, then EMFILE", out
                await c.deploy("after")
                await until(lambda: _state(c, "after", "running"), what="the next app running")
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)

    run(go())
