"""Attestation in a real continuum (nats-server, controller, node agents as processes), with
the simulated TEE (sim) under the development policy, as `fog up` runs it: nodes are attested
at join; an app's secrets reach it only after an affirming attestation, as in-memory files
and env vars, and never touch a node's disk, the logs or the bus in the clear; a strict policy
that refuses sim takes the TEE away from the nodes, and `fog explain` says why."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from foglayer.cluster import Continuum, NodeSpec, load_manifest, wait_until

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"
TIMEOUTS = {"node_timeout": 3.0, "lease_ttl": 3.0, "heartbeat": 0.25}
SECRET = "s3cr3t-" + os.urandom(8).hex()
TOKEN = "t0k3n-" + os.urandom(8).hex()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("continuum")
    c = Continuum(root, [NodeSpec("cloud", "cloud"), NodeSpec("edge", "edge")], tee="sim",
                  **TIMEOUTS)
    c.start()
    client = c.client()
    key = base64.b64decode(c.server.controller_key)
    try:
        def attested() -> bool:
            rows = [client.attestations(n, key)[0][1] for n in ("cloud", "edge")]
            return all(r is not None and r.affirming for r in rows)

        wait_until(lambda: _quiet(attested), 60, "both nodes attested")
        yield c, client, key
    finally:
        client.close()
        c.stop()


def _quiet(pred) -> bool:
    try:
        return pred()
    except Exception:  # noqa: BLE001 - not there yet
        return False


def _deploy(client, path: Path, timeout: float = 60.0) -> list[dict]:
    m = load_manifest(path)
    rec = client.deploy(m)
    return client.wait(m.name, rec["generation"], m.spec.replicas, timeout)


def test_nodes_are_attested_at_join_and_results_say_sim_proves_nothing(cluster):
    c, client, key = cluster
    (node, result), = client.attestations("edge", key)
    assert result.affirming and result.backend == "sim" and result.proves_nothing
    assert any("proves nothing" in r for r in result.reasons)


def test_secrets_reach_the_guest_only_in_memory_and_never_touch_disk(cluster, tmp_path):
    c, client, key = cluster
    client.put_secret("db_password", SECRET.encode())
    client.put_secret("api_token", TOKEN.encode())
    client.put_secret("other", b"not for this app")
    path = tmp_path / "reader.yaml"
    path.write_text(f"name: reader\nmodule: {PROGRAMS / 'secret_reader.c'}\n"
                    "secrets: [db_password, {name: api_token, env: true}]\n"
                    "constraints: {tee: sim}\nrestart: never\n")
    _deploy(client, path)
    wait_until(lambda: client.placements()["reader.0"]["state"] in ("exited", "failed"), 60,
               "the reader to finish")
    p = client.placements()["reader.0"]
    assert p["state"] == "exited" and p["exit_code"] == 0, p
    out = "".join(ch["data"] for ch in _logs(client, "reader"))
    assert f"db_password reversed: {SECRET[::-1]}" in out, out
    assert f"api_token reversed: {TOKEN[::-1]}" in out, out
    assert "other secret visible: no" in out
    # Nothing under the continuum (node data dirs, logs, JetStream state) holds a secret.
    for needle in (SECRET, TOKEN):
        for f in c.root.rglob("*"):
            if f.is_file():
                assert needle.encode() not in f.read_bytes(), f"{needle} found in {f}"


def _logs(client, app: str) -> list[dict]:
    chunks: list[dict] = []
    client.logs(app, chunks.append)
    for ch in chunks:
        if isinstance(ch.get("data"), bytes):
            ch["data"] = ch["data"].decode(errors="replace")
    return chunks


def test_fog_attest_policy_and_secret_commands(cluster, tmp_path):
    from _programs import fog

    c, client, key = cluster
    creds = c.creds("admin")
    r = fog("attest", "edge", "--creds", creds)
    assert r.returncode == 0, r.stderr
    assert "edge" in r.stdout and "affirming" in r.stdout and "PROVES NOTHING" in r.stdout
    r = fog("policy", "show", "--creds", creds)
    assert r.returncode == 0 and "allow_sim: true" in r.stdout, r.stdout + r.stderr
    r = fog("secret", "put", "cli_secret", "--value", "v4lue", "--creds", creds)
    assert r.returncode == 0 and "stored sealed" in r.stdout, r.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("backends: [sim]\n")
    r = fog("policy", "set", bad, "--creds", creds)
    assert r.returncode != 0 and "allow_sim is not true" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    r = fog("secret", "put", "x", "--creds", creds)
    assert r.returncode != 0 and "exactly one of --from-file" in r.stderr


def test_a_service_with_secrets_moves_sealed_between_attested_nodes(cluster, tmp_path):
    c, client, key = cluster
    client.put_secret("db_password", SECRET.encode())
    path = tmp_path / "vault.yaml"
    path.write_text(f"name: vaultsvc\nmodule: {PROGRAMS / 'secret_service.c'}\nkind: service\n"
                    "secrets: [db_password]\nlimits: {memory: 16MiB}\n")
    (p,) = _deploy(client, path)
    assert p["state"] == "running", p
    assert client.invoke("vaultsvc", "secret", b"") == SECRET[::-1].encode()
    assert client.invoke("vaultsvc", "add", b"41") == b"41"
    dst = "cloud" if p["node"] != "cloud" else "edge"
    summary = client.migrate("vaultsvc", dst)
    assert summary.target == dst
    # The state (its counter) and the secret came along; the secret only as a release.
    assert client.invoke("vaultsvc", "add", b"1") == b"42"
    assert client.invoke("vaultsvc", "secret", b"") == SECRET[::-1].encode()
    for f in c.root.rglob("*"):
        if f.is_file():
            assert SECRET.encode() not in f.read_bytes(), f"the secret found in {f}"
    client.stop("vaultsvc")


def test_a_strict_policy_refuses_sim_and_the_scheduler_says_why(cluster, tmp_path):
    c, client, key = cluster
    client.put_secret("db_password", SECRET.encode())  # a deploy naming a missing one is refused
    keeper = tmp_path / "keeper.yaml"
    keeper.write_text(f"name: keeper\nmodule: {PROGRAMS / 'secret_service.c'}\nkind: service\n"
                      "secrets: [db_password]\nlimits: {memory: 16MiB}\n")
    (p,) = _deploy(client, keeper)
    assert p["state"] == "running", p
    client.set_policy("backends: [tpm, tsm]\nallow_sim: false\n")
    for node in ("cloud", "edge"):
        wait_until(lambda n=node: _quiet(lambda: client.attestations(n, key)[0][1].status
                                         == "contraindicated"), 60, f"{node} contraindicated")
    # A node that no longer attests keeps no app with secrets: the running one is stopped
    # there and waits, pending, for an attested node (it cannot go anywhere else here).
    wait_until(lambda: client.placements()["keeper.0"]["state"] == "pending", 30,
               "keeper stopped on its node that no longer attests")
    assert "no affirming attestation" in client.placements()["keeper.0"]["error"]
    client.stop("keeper")
    (node, result), = client.attestations("cloud", key)
    assert any("sim evidence refused" in r for r in result.reasons), result.reasons
    path = tmp_path / "tee.yaml"
    path.write_text(f"name: teeapp\nmodule: {PROGRAMS / 'secret_reader.c'}\n"
                    "secrets: [db_password]\nconstraints: {tee: sim}\nrestart: never\n")
    (p,) = _deploy(client, path, timeout=60)
    assert p["state"] == "pending", p
    rows = client.decision("teeapp")["replicas"]["0"]["rows"]
    assert all(r["filter"] == "tee" for r in rows), rows
    assert all("sim evidence refused" in r["reason"] for r in rows), rows
