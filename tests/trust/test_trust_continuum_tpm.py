"""A node with a real TPM 2.0 (its own swtpm, started by `fog node --tee tpm`) in a real
continuum under the strict default policy: it is attested at join with a real quote, a
`tee: tpm` app with a secret runs there, and a sim node next to it gets nothing."""

from __future__ import annotations

import base64
from pathlib import Path

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
    finally:
        client.close()
        c.stop()
