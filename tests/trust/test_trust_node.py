"""Opening a node's backend by name (fog node --tee), and what the cluster persists."""

from __future__ import annotations

import pytest
from trust_support import handshake, make_broker

from foglayer.trust import DEV_POLICY, Registration, TrustError, open_backend


@pytest.mark.parametrize("kind, tsm_root", [("sim", None), ("tpm", None), ("tsm", "standin")])
def test_each_backend_opens_by_name_and_attests(identity, tmp_path, monkeypatch, kind, tsm_root):
    monkeypatch.delenv("TPM2TOOLS_TCTI", raising=False)   # tpm: starts its own swtpm
    backend = open_backend(kind, tmp_path / "node", tsm_root=tsm_root)
    try:
        broker = make_broker(identity, DEV_POLICY, a=backend)
        result, _ = handshake(broker, "a", backend)
        assert result.affirming, result.why()
        assert result.backend == kind and result.proves_nothing == (kind == "sim")
    finally:
        backend.close()


def test_unknown_backend_and_missing_configfs_are_one_line_errors(tmp_path):
    with pytest.raises(TrustError, match="sgx: unknown backend"):  # where="tee": fog says --tee
        open_backend("sgx", tmp_path)
    with pytest.raises(TrustError, match="no configfs-tsm"):
        open_backend("tsm", tmp_path, tsm_root=str(tmp_path / "nope"))


def test_registration_round_trips_and_refuses_garbage(sim):
    reg = Registration("sim", sim.identity())
    assert Registration.from_bytes(reg.to_bytes()) == reg
    with pytest.raises(TrustError, match="registration: malformed"):
        Registration.from_bytes(b"{not json")


def test_secrets_sealed_at_rest_are_released_only_by_name(identity, sim):
    broker = make_broker(identity, DEV_POLICY, a=sim)
    sealed = {"db": broker.seal_secret("db", b"hunter2")}
    assert b"hunter2" not in sealed["db"]
    _, session = handshake(broker, "a", sim, secrets=("db",))
    token = broker.release_sealed(session.challenge.session, sealed)
    assert session.open_secrets(token, ["db"]) == {"db": b"hunter2"}
