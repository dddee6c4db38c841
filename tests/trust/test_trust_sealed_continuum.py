"""`fog run --checkpoint-to F --seal` on a node of a real continuum (nats-server, controller,
two sim node agents, the development policy): the snapshot's data key comes from the
controller after an affirming attestation of the node for the snapshot's module (RCAR:
challenge, evidence binding the nonce and an ephemeral key, release to that key), only its
wrapped form goes into the file; `fog restore F` on the other node gets it unwrapped the same
way and resumes byte-identically. Refused, in one line with the result's reason: a restore
when the policy no longer affirms (module not in the reference values; sim under a strict
policy), evidence from another key with the node's credentials, a tampered file. No
controller: one line, no fallback. Neither key is ever on any disk."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest
from _continuum import running
from _programs import build, fog

from foglayer.cluster import Creds, NodeSpec, connect, free_port, wait_until
from foglayer.trust import (
    ControllerIdentity,
    SecretVault,
    parse_policy,
    sealed_header,
    unwrap_data_key,
)

ROUNDS = "100"


@pytest.fixture(scope="module")
def compute():
    return build("snap_compute")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("sealed")
    with running(root, [NodeSpec("a", "cloud"), NodeSpec("b", "edge")], tee="sim") as (c, cl):
        wait_until(lambda: all((root / "nodes" / n / "attester.json").exists()
                               for n in "ab"), 60, "both node profiles")
        yield c, cl


def _on(c, node: str, data: Path, **extra) -> dict[str, str]:
    """A process on node ``node`` (its data dir says how to attest as it)."""
    return {**os.environ, "FOG_DATA_DIR": str(data),
            "FOG_NODE_DIR": str(c.root / "nodes" / node), **extra}


def _one_line(r) -> str:
    assert r.returncode != 0, r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


def _sealing_key(c) -> bytes:
    """The controller's sealing key, as only the controller can read it (test oracle)."""
    async def get() -> bytes:
        nc = await connect(creds=Creds.load(c.creds("admin")), reconnect=False)
        try:
            kv = await nc.jetstream(domain="fog").key_value("fog-attest")
            return (await kv.get("sealkey.default")).value
        finally:
            await nc.close()

    master = ControllerIdentity.load_or_create(c.trust_dir).master_key
    return SecretVault(master).unseal("sealkey:default", asyncio.run(get()))


def _set_policy(c, client, text: str) -> None:
    """Set the policy and wait until the controller appraises under it."""
    pid = parse_policy(text).id
    client.set_policy(text)
    key = __import__("base64").b64decode(c.server.controller_key)

    def applied() -> bool:
        try:
            return client.attestations("b", key)[0][1].policy_id == pid
        except Exception:  # noqa: BLE001 - not yet
            return False

    wait_until(applied, 60, "the new policy in force")


def test_a_snapshot_sealed_on_one_node_restores_only_where_the_controller_releases_its_key(
        cluster, compute, tmp_path):
    c, client = cluster
    ref = fog("run", compute, ROUNDS)
    assert ref.returncode == 3
    snap = tmp_path / "app.fogsnap"
    r = fog("run", "--seal", "--checkpoint-every", "0.1", "--stop-after-checkpoint",
            "--checkpoint-to", snap, compute, ROUNDS, env=_on(c, "a", tmp_path / "a"))
    assert "stopped after checkpoint" in r.stderr, r.stderr
    first, blob = r.stdout, snap.read_bytes()
    assert blob.startswith(b"FOGSEAL2") and b"FOGSNAP" not in blob
    head = sealed_header(blob, str(snap))
    assert head.key_id == "default" and head.node == "a"
    line = _one_line(fog("inspect", snap))
    assert "a sealed snapshot: only fog restore opens it" in line, line

    # On node b: released after an affirming attestation; its next snapshot (no --seal given)
    # is sealed as its input was; back on node a, the run ends as if it had never stopped.
    snap2 = tmp_path / "again.fogsnap"
    r = fog("restore", "--checkpoint-every", "0.1", "--stop-after-checkpoint",
            "--checkpoint-to", snap2, snap, env=_on(c, "b", tmp_path / "b"))
    assert "stopped after checkpoint" in r.stderr, r.stderr
    second = r.stdout
    assert snap2.read_bytes().startswith(b"FOGSEAL2") and b"FOGSNAP" not in snap2.read_bytes()
    r = fog("restore", snap2, env=_on(c, "a", tmp_path / "a"))
    assert r.returncode == 3, r.stderr
    assert first + second + r.stdout == ref.stdout
    line = _one_line(fog("restore", "--seal-local", snap, env=_on(c, "b", tmp_path / "b")))
    assert "--seal-local:" in line and "not under a local key" in line, line

    # A tampered file: refused (the body's AEAD covers the header too).
    bad = tmp_path / "tampered.fogsnap"
    data = bytearray(blob)
    data[-40] ^= 1
    bad.write_bytes(bytes(data))
    line = _one_line(fog("restore", bad, env=_on(c, "b", tmp_path / "b")))
    assert "authentication failed" in line, line
    # A header naming another module: the controller's unwrap (bound to the module) refuses.
    other = bytes(blob).replace(head.module.encode(), ("0" * 64).encode(), 1)
    bad.write_bytes(other)
    line = _one_line(fog("restore", bad, env=_on(c, "b", tmp_path / "b")))
    assert "controller refused the sealing key" in line and "authentication failed" in line, line

    # Node b's credentials with another attestation key (another machine): contraindicated.
    thief = tmp_path / "thief"
    thief.mkdir()
    shutil.copy(c.root / "nodes" / "b" / "attester.json", thief / "attester.json")
    line = _one_line(fog("restore", snap, env=_on(c, "b", tmp_path / "t",
                                                  FOG_NODE_DIR=str(thief))))
    assert "released no sealing key to node b: attestation contraindicated" in line, line
    assert "registered attestation key" in line, line

    # No controller to reach: one line, and no fallback to a weaker key.
    profile = json.loads((thief / "attester.json").read_text())
    profile["creds"]["server"] = f"nats://127.0.0.1:{free_port()}"
    (thief / "attester.json").write_text(json.dumps(profile))
    line = _one_line(fog("restore", snap, env=_on(c, "b", tmp_path / "t",
                                                  FOG_NODE_DIR=str(thief))))
    assert line.startswith("fog: error: restoring a sealed snapshot needs a controller: "
                           "cannot connect"), line

    # Neither the data key nor the sealing key is on any disk: the continuum (JetStream
    # state, node dirs, logs), both data dirs, the sealed file.
    sealing_key = _sealing_key(c)
    data_key = unwrap_data_key(sealing_key, "default", head.module, head.wrapped)
    files = [f for top in (c.root, tmp_path) for f in top.rglob("*") if f.is_file()]
    assert snap in files and len(files) > 20
    for f in files:
        content = f.read_bytes()
        for what, needle in (("data key", data_key), ("sealing key", sealing_key),
                             ("plain snapshot", b"FOGSNAP\0")):
            assert needle not in content, f"the {what} found in {f}"

    # A plain snapshot restored with --seal: its next snapshot is sealed (the key released at
    # that checkpoint, for the module the snapshot names) and resumes on the other node.
    plain, resealed = tmp_path / "plain.fogsnap", tmp_path / "resealed.fogsnap"
    r = fog("run", "--checkpoint-every", "0.1", "--stop-after-checkpoint", "--checkpoint-to",
            plain, compute, ROUNDS)
    out = [r.stdout]
    r = fog("restore", "--seal", "--checkpoint-every", "0.1", "--stop-after-checkpoint",
            "--checkpoint-to", resealed, plain, env=_on(c, "a", tmp_path / "a"))
    assert "stopped after checkpoint" in r.stderr, r.stderr
    assert resealed.read_bytes().startswith(b"FOGSEAL2")
    out.append(r.stdout)
    r = fog("restore", resealed, env=_on(c, "b", tmp_path / "b"))
    assert r.returncode == 3, r.stderr
    assert "".join(out) + r.stdout == ref.stdout

    # The policy no longer affirms: the module is not in its reference values; sim refused.
    dev = "backends: [sim]\nallow_sim: true\nmax_age: 300\n"
    _set_policy(c, client, dev + f"modules: [{'ab' * 32}]\n")
    line = _one_line(fog("restore", snap, env=_on(c, "b", tmp_path / "b")))
    assert "attestation contraindicated" in line, line
    assert "is not in the policy's modules" in line, line
    _set_policy(c, client, "backends: [tpm, tsm]\nallow_sim: false\n")
    line = _one_line(fog("restore", snap, env=_on(c, "b", tmp_path / "b")))
    assert "sim evidence refused" in line, line
