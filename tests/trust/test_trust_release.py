"""Secret release (KBS-style, to the attested instance's ephemeral key) and the policy file."""

from __future__ import annotations

import re

import pytest
from trust_support import MODULE, handshake, make_broker

from foglayer.trust import DEV_POLICY, Policy, PolicyError, TrustError, load_policy, parse_policy

STORE = {"db-password": b"hunter2", "api-token": b"t0k3n", "other-apps-key": b"not yours"}


def test_a_passing_appraisal_releases_exactly_the_named_secrets(identity, sim):
    broker = make_broker(identity, DEV_POLICY, a=sim)
    named = ("db-password", "api-token")
    result, session = handshake(broker, "a", sim, secrets=named)
    assert result.affirming
    sid = session.challenge.session
    got = session.open_secrets(broker.release(sid, {n: STORE[n] for n in named}), named)
    assert got == {"db-password": b"hunter2", "api-token": b"t0k3n"}
    with pytest.raises(TrustError, match="'other-apps-key' is not named by this app"):
        broker.release(sid, {"other-apps-key": STORE["other-apps-key"]})


def test_several_secrets_come_within_one_session_without_new_attestation(identity, sim):
    broker = make_broker(identity, DEV_POLICY, a=sim)
    _, session = handshake(broker, "a", sim, secrets=("db-password", "api-token"))
    sid = session.challenge.session
    for name in ("db-password", "api-token"):
        assert session.open_secrets(broker.release(sid, {name: STORE[name]})) == \
            {name: STORE[name]}


def test_a_node_that_fails_appraisal_gets_no_secrets(identity, sim):
    broker = make_broker(identity, Policy(), a=sim)    # strict: sim refused
    result, session = handshake(broker, "a", sim, secrets=("db-password",))
    assert not result.affirming
    with pytest.raises(TrustError, match="no affirming attestation"):
        broker.release(session.challenge.session, {"db-password": STORE["db-password"]})


def test_released_secrets_open_only_with_that_sessions_ephemeral_key(identity, sim):
    broker = make_broker(identity, DEV_POLICY, a=sim)
    _, s1 = handshake(broker, "a", sim, secrets=("db-password",))
    _, s2 = handshake(broker, "a", sim, secrets=("db-password",))
    token = broker.release(s1.challenge.session, {"db-password": b"hunter2"})
    assert b"hunter2" not in token.encode()
    with pytest.raises(TrustError, match="another session"):
        s2.open_secrets(token)


def test_secrets_are_not_released_after_max_age(identity, sim, clock):
    broker = make_broker(identity, DEV_POLICY, clock, a=sim)
    _, session = handshake(broker, "a", sim, secrets=("db-password",))
    clock.now += DEV_POLICY.max_age + 1
    with pytest.raises(TrustError, match="older than max_age"):
        broker.release(session.challenge.session, {"db-password": b"x"})


# --- the policy file ----------------------------------------------------------------------------

def test_policy_file_round_trips_with_reference_values(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("backends: [tpm]\nmax_age: 60\nmodules: [" + MODULE + "]\n"
                    "tpm:\n  pcrs: {0: " + "AB" * 32 + "}\n")
    policy = load_policy(path)
    assert policy.backends == ("tpm",) and policy.max_age == 60
    assert policy.modules == (MODULE,) and policy.tpm_pcrs == {0: "ab" * 32}
    assert not policy.accepts_sim()
    assert parse_policy(policy.to_yaml()).id == policy.id


def test_policy_refuses_yaml_aliases():
    with pytest.raises(PolicyError, match="aliases are not allowed"):
        parse_policy("a: &x [1, 2]\nbackends: *x\n", "p.yaml")


@pytest.mark.parametrize("text, message", [
    ("backends: [nil]\n", "unknown backend 'nil'"),
    ("backends: [sim]\n", "allow_sim is not true"),
    ("max_age: -3\n", "max_age"),
    ("tpm: {pcrs: {16: " + "00" * 32 + "}}\n", "16 holds the module"),
    ("modules: [xyz]\n", "modules[0] is not hex"),
    ("colour: blue\n", "unknown key 'colour'"),
    ("backends: [tpm\n", "not valid YAML"),
    # worded as a manifest's YAML error: the file, then line and column
    ("backends: [sim\nallow_sim: true\n", "p.yaml: not valid YAML: line 2, column 10: "),
])
def test_bad_policy_is_one_line_error_naming_what(text, message):
    with pytest.raises(PolicyError, match=re.escape(message)) as e:
        parse_policy(text, "p.yaml")
    assert str(e.value).startswith("p.yaml") and "\n" not in str(e.value)
