"""The bus: a real nats-server with generated credentials. Nobody gets in anonymously; a node
publishes only on its own subjects, cannot read another node's commands, and cannot pass
itself off as another node. TLS works with a CA file."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys

import pytest

from foglayer.cluster import BusError, Creds, EmbeddedServer, connect
from foglayer.cluster._bus import MODULES, ensure_state


@pytest.fixture()
def server(tmp_path):
    srv = EmbeddedServer(tmp_path / "nats", nodes=("a", "b")).start()
    try:
        yield srv
    finally:
        srv.stop()


def run(coro):
    return asyncio.run(coro)


def test_config_and_creds_are_private(server):
    for p in (server.conf_path, server.root / "users.json", server.creds_path("node-a")):
        assert p.stat().st_mode & 0o077 == 0, p
    text = server.conf_path.read_text()
    assert '"authorization"' in text and '"fog.node.a.>"' in text


def test_anonymous_and_wrong_password_are_refused(server):
    with pytest.raises(BusError, match="authorization refused"):
        run(connect(server.url, reconnect=False))
    bad = Creds(server=server.url, user="node-a", password="guess")
    with pytest.raises(BusError, match="authorization refused"):
        run(connect(creds=bad, reconnect=False))
    with pytest.raises(BusError, match="connection refused"):
        run(connect("nats://127.0.0.1:1", reconnect=False, timeout=1))


def test_a_node_is_confined_to_its_own_subjects(server):
    async def go():
        admin = await connect(creds=server.creds("admin"))
        await ensure_state(admin.jetstream())
        obs = await admin.jetstream().object_store(MODULES)
        await obs.put("m", b"module bytes")
        seen = []

        async def spy(msg):
            seen.append(msg.subject)

        await admin.subscribe("fog.>", cb=spy)
        await admin.flush()
        errors: list[Exception] = []
        a = await connect(creds=server.creds("node-a"), inbox_prefix="_INBOX_a", errors=errors)
        # Its own subjects: fine.
        await a.publish("fog.node.a.hb", b"{}")
        # Another node's heartbeats, commands to another node, the desired state: refused.
        await a.publish("fog.node.b.hb", b'{"name": "b"}')
        await a.publish("fog.cmd.b.start", b"{}")
        await a.publish("fog.events.node", b"{}")
        await a.publish("$KV.fog-apps.evil", b"{}")
        await a.subscribe("fog.cmd.b.>")
        await a.subscribe("fog.node.>")
        await a.flush()
        for _ in range(50):
            if len(errors) >= 6 and "fog.node.a.hb" in seen:
                break
            await asyncio.sleep(0.05)
        await a.close()
        await admin.close()
        return errors, seen

    errors, seen = run(go())
    text = " | ".join(str(e) for e in errors).lower()
    for subject in ("fog.node.b.hb", "fog.cmd.b.start", "fog.events.node", "$kv.fog-apps.evil"):
        assert f'permissions violation for publish to "{subject}"' in text, text
    for subject in ("fog.cmd.b.>", "fog.node.>"):
        assert f'permissions violation for subscription to "{subject}"' in text, text
    assert seen == ["fog.node.a.hb"]  # nothing refused ever reached anyone


def test_a_node_cannot_read_modules_touch_the_object_store_or_write_others_logs(server):
    # With its own credentials a node could read every app's module and create or delete the
    # Object Store's consumers: it now has no JetStream API at all (modules come from the
    # leading controller, see test_cluster_hardening), and no other node's log subjects.
    obj = f"OBJ_{MODULES}"

    async def go():
        admin = await connect(creds=server.creds("admin"))
        await ensure_state(admin.jetstream())
        await (await admin.jetstream().object_store(MODULES)).put("m", b"module bytes")
        errors: list[Exception] = []
        a = await connect(creds=server.creds("node-a"), inbox_prefix="_INBOX_a", errors=errors)
        for subject in (f"$JS.API.CONSUMER.CREATE.{obj}", f"$JS.API.CONSUMER.DELETE.{obj}.c",
                        f"$JS.API.DIRECT.GET.{obj}", f"$JS.API.STREAM.MSG.GET.{obj}",
                        "fog.node.b.logs.kv.0.stdout"):
            await a.publish(subject, b"{}")
        await a.flush()
        with pytest.raises(Exception):  # noqa: B017 - refused, then no answer: any error
            await (await a.jetstream(timeout=1).object_store(MODULES)).get("m")
        for _ in range(50):
            if len(errors) >= 5:
                break
            await asyncio.sleep(0.05)
        await a.close()
        await admin.close()
        return " | ".join(str(e) for e in errors).lower()

    text = run(go())
    for subject in (f"$js.api.consumer.create.{obj}", f"$js.api.consumer.delete.{obj}.c",
                    f"$js.api.direct.get.{obj}", f"$js.api.stream.msg.get.{obj}",
                    "fog.node.b.logs.kv.0.stdout"):
        assert f'permissions violation for publish to "{subject.lower()}"' in text, text


def test_a_node_cannot_impersonate_another(server, tmp_path):
    # Node a's credentials, the name of node b: the server refuses its heartbeats and the
    # agent stops with a one-line error.
    async def listen():
        admin = await connect(creds=server.creds("admin"))
        seen = []

        async def spy(msg):
            seen.append(msg.subject)

        await admin.subscribe("fog.node.>", cb=spy)
        await admin.flush()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "foglayer.cli", "node", "--name", "b",
            "--creds", str(server.creds_path("node-a")), "--data-dir", str(tmp_path / "n"),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        await admin.close()
        return proc.returncode, err.decode(), seen

    code, err, seen = run(listen())
    assert code == 2, err
    assert "credentials belong to another node" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert seen == []


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tls_with_a_ca_file(tmp_path):
    ca_key, ca, key, csr, cert = (tmp_path / n for n in ("ca.key", "ca.pem", "s.key", "s.csr", "s.pem"))
    ext = tmp_path / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for argv in (
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
         "-days", "1", "-subj", "/CN=fog test CA"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=localhost"],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
         "-days", "1", "-extfile", ext],
    ):
        subprocess.run(["openssl", *map(str, argv)], check=True, capture_output=True)
    srv = EmbeddedServer(tmp_path / "nats", tls_cert=str(cert), tls_key=str(key), tls_ca=str(ca))
    srv.start()
    try:
        assert srv.url.startswith("tls://")

        async def ok():
            nc = await connect(creds=srv.creds("admin"), reconnect=False)
            tls = nc.connected_url.scheme
            await nc.close()
            return tls

        assert run(ok()) == "tls"
        no_ca = Creds(server=srv.url, user="admin", password=srv.auth.users["admin"])
        with pytest.raises(BusError, match="cannot connect"):
            run(connect(creds=no_ca, reconnect=False, timeout=2))
    finally:
        srv.stop()
