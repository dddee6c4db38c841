"""The handshake end to end with each backend, and each refusal with its reason."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from trust_support import MODULE, handshake, make_broker

from foglayer.trust import (
    DEV_POLICY,
    SIM_WARNING,
    STANDIN_PROVIDER,
    Attester,
    Evidence,
    EvidenceError,
    Policy,
    SimBackend,
    TpmBackend,
    TrustError,
    expected_pcr,
    verify_result,
)


def test_sim_affirms_only_under_a_policy_that_opts_in_and_says_it_proves_nothing(identity, sim):
    broker = make_broker(identity, DEV_POLICY, a=sim)
    result, _ = handshake(broker, "a", sim)
    assert result.status == "affirming", result.why()
    assert result.proves_nothing and SIM_WARNING in result.reasons
    assert result.vector["hardware"] == 0   # no claim about hardware: there is none


def test_sim_evidence_is_refused_by_the_default_policy(identity, sim):
    broker = make_broker(identity, Policy(), a=sim)
    result, _ = handshake(broker, "a", sim)
    assert result.status == "contraindicated"
    assert any("sim evidence refused" in r for r in result.reasons), result.reasons


def test_sim_evidence_is_refused_under_a_strict_policy_even_if_listed_without_opt_in():
    with pytest.raises(TrustError, match="allow_sim"):
        Policy(backends=("sim", "tpm"))


def test_replayed_nonce_is_refused(identity, sim):
    broker = make_broker(identity, DEV_POLICY, a=sim)
    ch = broker.challenge("a", MODULE)
    att, _ = Attester("a", sim, identity.public_key).answer(ch, MODULE)
    assert broker.attest(att).affirming
    replay = broker.attest(att)
    assert replay.status == "contraindicated"
    assert any("replayed nonce" in r for r in replay.reasons), replay.reasons


def test_evidence_for_an_old_nonce_in_a_new_session_is_refused(identity, sim):
    broker = make_broker(identity, DEV_POLICY, a=sim)
    old = broker.challenge("a", MODULE)
    att, _ = Attester("a", sim, identity.public_key).answer(old, MODULE)
    new = broker.challenge("a", MODULE)
    result = broker.attest(dataclasses.replace(att, session=new.session, nonce=new.nonce))
    assert result.status == "contraindicated"
    assert any("does not bind this session's nonce" in r for r in result.reasons)


def test_wrong_module_digest_is_refused(identity, sim):
    broker = make_broker(identity, DEV_POLICY, a=sim)
    result, _ = handshake(broker, "a", sim, module=hashlib.sha256(b"other").hexdigest())
    assert result.status == "contraindicated"
    assert result.vector["executables"] >= 96
    assert any("module digest" in r for r in result.reasons), result.reasons


def test_module_not_in_the_policy_reference_values_is_refused(identity, sim):
    policy = dataclasses.replace(DEV_POLICY, modules=(hashlib.sha256(b"x").hexdigest(),))
    broker = make_broker(identity, policy, a=sim)
    result, _ = handshake(broker, "a", sim)
    assert any("not in the policy's modules" in r for r in result.reasons), result.reasons


def test_expired_evidence_is_refused(identity, sim, clock):
    broker = make_broker(identity, DEV_POLICY, clock, a=sim)
    ch = broker.challenge("a", MODULE)
    att, _ = Attester("a", sim, identity.public_key).answer(ch, MODULE)
    clock.now += DEV_POLICY.max_age + 1
    result = broker.attest(att)
    assert result.status == "contraindicated"
    assert any("evidence expired" in r for r in result.reasons), result.reasons


def test_evidence_signed_with_another_nodes_key_is_refused(identity, sim, tmp_path):
    other = SimBackend(tmp_path / "node-b" / "sim.key", quiet=True)
    broker = make_broker(identity, DEV_POLICY, a=sim, b=other)
    result, _ = handshake(broker, "a", other)   # b's key, claiming to be a
    assert result.status == "contraindicated"
    assert result.vector["instance-identity"] >= 96
    assert any("registered attestation key" in r for r in result.reasons), result.reasons


def test_a_node_cannot_re_register_with_another_key(identity, sim, tmp_path):
    broker = make_broker(identity, DEV_POLICY, a=sim)
    other = SimBackend(tmp_path / "node-b" / "sim.key", quiet=True)
    with pytest.raises(TrustError, match="already registered"):
        broker.register("a", "sim", other.identity())


def test_node_refuses_a_result_not_signed_by_its_controller(identity, sim):
    broker = make_broker(identity, DEV_POLICY, a=sim)
    ch = broker.challenge("a", MODULE)
    impostor = Ed25519PrivateKey.generate().public_key()
    att, session = Attester("a", sim, impostor).answer(ch, MODULE)
    token = broker.attest(att).token
    with pytest.raises(TrustError, match="not signed by this controller"):
        session.open_result(token)
    assert verify_result(token, identity.public_key).affirming


# --- tpm: a real swtpm -----------------------------------------------------------------------

def test_tpm_quote_from_a_real_swtpm_affirms(identity, tpm):
    broker = make_broker(identity, Policy(), a=tpm)
    result, _ = handshake(broker, "a", tpm)
    assert result.status == "affirming", result.why()
    assert not result.proves_nothing
    assert all(result.vector[c] == 2 for c in ("instance-identity", "configuration",
                                                "executables", "hardware"))


def _tpm_attestation(identity, tpm, broker):
    ch = broker.challenge("a", MODULE)
    att, _ = Attester("a", tpm, identity.public_key).answer(ch, MODULE)
    return att


def _with_part(att, name: str, value: bytes):
    ev = att.evidence
    return dataclasses.replace(att, evidence=Evidence(ev.backend, ev.module_digest,
                                                      {**ev.parts, name: value}))


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1:]


def test_tampered_tpm_quote_is_refused(identity, tpm):
    broker = make_broker(identity, Policy(), a=tpm)
    att = _tpm_attestation(identity, tpm, broker)
    quote = att.evidence.parts["quote"]
    bad = _with_part(att, "quote", _flip(quote, len(quote) - 1))   # the PCR digest
    result = broker.attest(bad)
    assert result.status == "contraindicated"
    assert any("signature does not verify" in r for r in result.reasons), result.reasons


def test_tampered_tpm_signature_raises_and_is_refused(identity, tpm):
    broker = make_broker(identity, Policy(), a=tpm)
    att = _tpm_attestation(identity, tpm, broker)
    sig = att.evidence.parts["signature"]
    bad = _with_part(att, "signature", _flip(sig, len(sig) - 3))
    with pytest.raises(EvidenceError, match="signature does not verify"):
        TpmBackend.check(bad.evidence, tpm.identity())
    result = broker.attest(bad)
    assert result.status == "contraindicated"
    assert any("signature does not verify" in r for r in result.reasons), result.reasons


def test_pcr_values_that_do_not_hash_to_the_quoted_digest_are_refused(identity, tpm):
    broker = make_broker(identity, Policy(), a=tpm)
    att = _tpm_attestation(identity, tpm, broker)
    forged = _with_part(att, "pcrs", expected_pcr(hashlib.sha256(b"other").hexdigest()))
    result = broker.attest(forged)
    assert result.status == "contraindicated"
    assert any("do not hash to the quoted PCR digest" in r for r in result.reasons)


def test_pcr_mismatch_against_the_policy_is_refused(identity, tpm, swtpm):
    import os
    import subprocess

    # PCR 23 is resettable too: give it a value the policy does not expect.
    env = dict(os.environ, TPM2TOOLS_TCTI=swtpm.tcti)
    subprocess.run(["tpm2_pcrextend", "23:sha256=" + "ab" * 32], env=env, check=True)
    policy = Policy(tpm_pcrs={23: "00" * 32})
    broker = make_broker(identity, policy, a=tpm)
    result, _ = handshake(broker, "a", tpm)
    assert result.status == "contraindicated"
    assert result.vector["configuration"] >= 96
    assert any("PCR 23 mismatch" in r for r in result.reasons), result.reasons


def test_the_module_measured_into_pcr16_must_be_the_one_claimed(identity, tpm):
    broker = make_broker(identity, Policy(), a=tpm)
    ch = broker.challenge("a", MODULE)
    att, _ = Attester("a", tpm, identity.public_key).answer(
        ch, hashlib.sha256(b"what really runs").hexdigest())
    claimed = dataclasses.replace(att, evidence=dataclasses.replace(att.evidence,
                                                                    module_digest=MODULE))
    result = broker.attest(claimed)
    assert result.status == "contraindicated"
    assert any("PCR 16 mismatch" in r for r in result.reasons), result.reasons


# --- tsm: the real configfs-tsm code path against a STAND-IN provider --------------------------

def test_tsm_report_through_configfs_standin_affirms(identity, tsm, tsm_root):
    policy = Policy(tsm_providers=(STANDIN_PROVIDER,),
                    tsm_measurements=(tsm_root[1].measurement.hex(),))
    broker = make_broker(identity, policy, a=tsm)
    result, _ = handshake(broker, "a", tsm)
    assert result.status == "affirming", result.why()
    assert not list(tsm_root[0].iterdir())   # report entries are removed after use


def test_tsm_report_whose_inblob_does_not_match_is_refused(identity, tsm):
    broker = make_broker(identity, Policy(), a=tsm)
    old = broker.challenge("a", MODULE)
    att, _ = Attester("a", tsm, identity.public_key).answer(old, MODULE)
    new = broker.challenge("a", MODULE)
    result = broker.attest(dataclasses.replace(att, session=new.session, nonce=new.nonce))
    assert result.status == "contraindicated"
    assert any("tsm report inblob does not match" in r or "inblob does not bind" in r
               for r in result.reasons), result.reasons


def test_tsm_measurement_not_in_the_policy_is_refused(identity, tsm):
    broker = make_broker(identity, Policy(tsm_measurements=("00" * 48,)), a=tsm)
    result, _ = handshake(broker, "a", tsm)
    assert result.status == "contraindicated"
    assert any("tsm measurement" in r for r in result.reasons), result.reasons


def test_tsm_report_raced_by_a_concurrent_writer_is_refused(tsm_root, monkeypatch):
    from trust_support import wait_for

    from foglayer.trust import _tsm

    root, _ = tsm_root
    backend = _tsm.TsmBackend(root)
    real_read = _tsm._read

    def racing_read(path, limit=64 * 1024):
        # Once the report for our inblob is ready, another writer replaces the inblob and
        # the provider answers it before we read.
        if path.name == "outblob" and path.exists() and not getattr(racing_read, "done", 0):
            racing_read.done = 1
            (path.parent / "inblob").write_bytes(b"someone else")
            wait_for(lambda: (path.parent / "generation").read_text().strip() == "2")
        return real_read(path, limit)

    monkeypatch.setattr(_tsm, "_read", racing_read)
    with pytest.raises(TrustError, match="concurrent writer"):
        backend.collect(bytes(32), MODULE)


# --- untrusted bytes: anything a node sends is refused cleanly, never crashes the verifier -------

def test_mutated_attestation_bytes_are_refused_never_crash(identity, tpm):
    import random

    from foglayer.trust import Attestation

    broker = make_broker(identity, Policy(), a=tpm)
    wire = _tpm_attestation(identity, tpm, broker).to_bytes()
    rng = random.Random(7)
    for _ in range(300):
        data = bytearray(wire)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            att = Attestation.from_bytes(bytes(data))
        except EvidenceError:
            continue
        result = broker.attest(att)   # a contraindicated result, or affirming only if intact
        assert result.status in ("affirming", "contraindicated")


def test_mutated_tpm_quotes_raise_evidence_errors_only(tpm, identity):
    import random

    broker = make_broker(identity, Policy(), a=tpm)
    ev = _tpm_attestation(identity, tpm, broker).evidence
    rng = random.Random(11)
    for _ in range(300):
        part = rng.choice(["quote", "signature", "pcrs"])
        data = bytearray(ev.parts[part])
        if rng.random() < 0.3:
            del data[rng.randrange(len(data)):]
        else:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        with pytest.raises(EvidenceError):
            TpmBackend.check(Evidence("tpm", ev.module_digest, {**ev.parts, part: bytes(data)}),
                             tpm.identity())


def test_every_challenge_crosses_the_bus_intact(identity, sim):
    # Session ids once came from token_urlsafe, whose '_' and leading '-' the message reader
    # refuses: about a third of all challenges failed on the node's side.
    from foglayer.trust import Challenge

    broker = make_broker(identity, DEV_POLICY, a=sim)
    for _ in range(300):
        ch = broker.challenge("a", MODULE)
        assert Challenge.from_bytes(ch.to_bytes()) == ch


def test_a_node_that_never_registered_gets_no_challenge(identity, sim):
    broker = make_broker(identity, DEV_POLICY)   # no node registered
    with pytest.raises(TrustError, match="node a: not registered"):
        broker.challenge("a", MODULE)
