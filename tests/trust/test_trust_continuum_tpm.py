"""A node with a real TPM 2.0 (its own swtpm, started by `fog node --tee tpm`) in a real
continuum under the strict default policy: it is attested at join with a real quote, a
`tee: tpm` app with a secret runs there, and a sim node next to it gets nothing. A snapshot
sealed on the TPM node (`fog run --seal`: its data key released for a real quote) resumes
there and is refused on the sim node, with the result's reason."""

from __future__ import annotations

import base64
from pathlib import Path

from _programs import build, fog

from foglayer.cluster import Continuum, NodeSpec, load_manifest, wait_until

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"
TIMEOUTS = {"node_timeout": 5.0, "lease_ttl": 3.0, "heartbeat": 0.25}


def test_a_tpm_node_is_attested_with_a_real_quote_and_gets_the_tee_app(tmp_path):
    c = Continuum(tmp_path / "c", [NodeSpec("tpmnode", "edge", ["--tee", "tpm"]),
                                   NodeSpec("simnode", "cloud", ["--tee", "sim"])], **TIMEOUTS)
    c.env.pop("TPM2TOOLS_TCTI", None)   # the node starts its own swtpm
    c.start()
    client = c.client()
    key = base64.b64decode(c.server.controller_key)
    try:
        def result(node):
            rows = client.attestations(node, key)
            return rows[0][1]

        def both_attested() -> bool:
            try:
                return all(result(n) is not None for n in ("tpmnode", "simnode"))
            except Exception:  # noqa: BLE001 - not yet
                return False

        wait_until(both_attested, 90, "both nodes attested")
        tpm, sim = result("tpmnode"), result("simnode")
        assert tpm.affirming and tpm.backend == "tpm" and not tpm.proves_nothing, tpm.why()
        assert sim.status == "contraindicated"   # the default policy refuses sim
        assert any("sim evidence refused" in r for r in sim.reasons)
        client.put_secret("db_password", b"tpm-guarded")
        client.put_secret("api_token", b"tok")
        path = tmp_path / "app.yaml"
        path.write_text(f"name: tpmapp\nmodule: {PROGRAMS / 'secret_reader.c'}\n"
                        "secrets: [db_password, {name: api_token, env: true}]\n"
                        "constraints: {tee: tpm}\nrestart: never\n")
        m = load_manifest(path)
        (p,) = client.wait("tpmapp", client.deploy(m)["generation"], 1, 60)
        assert p["node"] == "tpmnode", p
        wait_until(lambda: client.placements()["tpmapp.0"]["state"] in ("exited", "failed"),
                   60, "the app to finish")
        p = client.placements()["tpmapp.0"]
        assert p["state"] == "exited" and p["exit_code"] == 0, p
        (tpm_again,) = [r for _, r in client.attestations("tpmnode", key)]
        assert tpm_again.module_digest == m.spec.digest   # measured into PCR 16 at the start
        _sealed_snapshot_opens_only_on_the_tpm_node(c, tmp_path)
    finally:
        client.close()
        c.stop()


def _sealed_snapshot_opens_only_on_the_tpm_node(c, tmp_path) -> None:
    import os

    compute = build("snap_compute")
    ref = fog("run", compute, "100")

    def on(node):  # a process on that node: it attests with the node's backend
        return {**os.environ, "FOG_DATA_DIR": str(tmp_path / f"data-{node}"),
                "FOG_NODE_DIR": str(c.root / "nodes" / node)}

    snap = tmp_path / "app.fogsnap"
    r = fog("run", "--seal", "--checkpoint-every", "0.1", "--stop-after-checkpoint",
            "--checkpoint-to", snap, compute, "100", env=on("tpmnode"))
    assert "stopped after checkpoint" in r.stderr, r.stderr
    assert snap.read_bytes().startswith(b"FOGSEAL2")
    r2 = fog("restore", snap, env=on("simnode"))
    assert r2.returncode != 0 and len(r2.stderr.strip().splitlines()) == 1, r2.stderr
    assert "attestation contraindicated" in r2.stderr and "sim evidence refused" in r2.stderr
    r2 = fog("restore", snap, env=on("tpmnode"))
    assert r2.returncode == 3, r2.stderr
    assert r.stdout + r2.stdout == ref.stdout
