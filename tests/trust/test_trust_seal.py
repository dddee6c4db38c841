"""Sealed artefacts: secrets at rest, encrypted modules, migration streams, snapshot files."""

from __future__ import annotations

import os

import pytest

from foglayer.trust import (
    SealError,
    SecretVault,
    StreamOpener,
    StreamSealer,
    decrypt_module,
    encrypt_module,
    new_key,
    pair_key,
    seal,
    unseal,
)


def test_secret_at_rest_opens_only_under_the_controllers_key_and_its_name():
    master = os.urandom(32)
    blob = SecretVault(master).seal("db", b"hunter2")
    assert b"hunter2" not in blob
    assert SecretVault(master).unseal("db", blob) == b"hunter2"
    with pytest.raises(SealError, match="authentication failed"):
        SecretVault(os.urandom(32)).unseal("db", blob)
    with pytest.raises(SealError, match="authentication failed"):
        SecretVault(master).unseal("other-name", blob)   # a blob moved to another name


def test_encrypted_module_decrypts_only_with_its_key_and_intact():
    wasm = b"\0asm\1\0\0\0" + os.urandom(1000)
    key = new_key()
    blob = encrypt_module(wasm, key)
    assert wasm[8:] not in blob
    assert decrypt_module(blob, key) == wasm
    with pytest.raises(SealError):
        decrypt_module(blob, new_key())
    with pytest.raises(SealError):
        decrypt_module(blob[:-1] + bytes([blob[-1] ^ 1]), key)


def _pair(source="a", target="b"):
    key = pair_key(b"m" * 32, "a", "b", "result-a", "result-b")
    return StreamSealer(key, source, target, "mig-1"), StreamOpener(key, "a", "b", "mig-1")


def test_migration_stream_authenticates_in_order_to_the_end():
    sealer, opener = _pair()
    frames = [sealer.seal(b"page %d" % i) for i in range(3)] + [sealer.seal(b"end", final=True)]
    assert [opener.open(f) for f in frames] == [b"page 0", b"page 1", b"page 2", b"end"]
    opener.finish()


def test_migration_stream_refuses_reordered_truncated_and_foreign_frames():
    sealer, opener = _pair()
    f0, f1 = sealer.seal(b"0"), sealer.seal(b"1")
    with pytest.raises(SealError, match="frame 0 does not authenticate"):
        opener.open(f1)
    _, opener = _pair()
    opener.open(f0)
    with pytest.raises(SealError, match="truncated"):
        opener.finish()
    other_key = pair_key(b"m" * 32, "c", "b", "result-c", "result-b")
    with pytest.raises(SealError, match="does not authenticate"):
        StreamOpener(other_key, "a", "b", "mig-1").open(f0)
    foreign, _ = _pair(source="c")
    with pytest.raises(SealError, match="does not authenticate"):
        _pair()[1].open(foreign.seal(b"x"))


def test_sealed_snapshot_file_unseals_only_where_the_key_is(tmp_path):
    snap = tmp_path / "app.snap"
    snap.write_bytes(b"SNAPSHOT" + os.urandom(5000))
    key = new_key()
    seal(snap, key, tmp_path / "app.sealed")
    assert unseal(tmp_path / "app.sealed", key) == snap.read_bytes()
    with pytest.raises(SealError, match="authentication failed"):
        unseal(tmp_path / "app.sealed", new_key())
    with pytest.raises(SealError, match="not a sealed file"):
        unseal(snap, key)


def test_anyone_with_the_vault_public_key_can_seal_only_the_controller_opens():
    from foglayer.trust import seal_secret

    vault = SecretVault(os.urandom(32))
    blob = seal_secret(vault.public_key, "db", b"hunter2")
    assert vault.unseal("db", blob) == b"hunter2"
    with pytest.raises(SealError):
        SecretVault(os.urandom(32)).unseal("db", blob)


# -- snapshot files sealed under a data key the controller releases (fog run --seal) --------

def _released_key(broker, backend, module, wrapped=None, sealing_key=b"k" * 32):
    """One RCAR round for a snapshot's data key, as the controller and a node run it."""
    from foglayer.trust import SEAL_DATA_KEY, Attester

    ch = broker.challenge("a", module, (SEAL_DATA_KEY,))
    att, session = Attester("a", backend, broker.identity.public_key).answer(ch, module)
    result = session.open_result(broker.attest(att).token)
    if not result.affirming:
        return result, None, None
    if wrapped is None:
        wrapped, token = broker.seal_data_key(ch.session, "default", sealing_key)
    else:
        token = broker.open_data_key(ch.session, "default", sealing_key, wrapped)
    return result, session.open_secrets(token, [SEAL_DATA_KEY])[SEAL_DATA_KEY], wrapped


def test_a_released_data_key_seals_a_snapshot_that_only_its_release_opens(identity, sim):
    import hashlib

    from trust_support import make_broker

    from foglayer.trust import (
        DEV_POLICY,
        Policy,
        SealHeader,
        TrustError,
        open_released,
        seal_released,
        sealed_header,
    )

    module = hashlib.sha256(b"the app").hexdigest()
    broker = make_broker(identity, DEV_POLICY, a=sim)
    _, key, wrapped = _released_key(broker, sim, module)
    snap = b"FOGSNAP" + os.urandom(3000)
    blob = seal_released(snap, key, SealHeader("default", module, wrapped, "a"))
    assert snap[7:] not in blob and key not in blob
    head = sealed_header(blob, "f")
    assert (head.key_id, head.module, head.wrapped) == ("default", module, wrapped)
    # A restore: the file's wrapped key comes back unwrapped, released to the new session.
    _, again, _ = _released_key(broker, sim, module, wrapped)
    assert again == key and open_released(blob, again, "f") == snap
    # Tampered body or header: refused.
    for i in (len(blob) - 5, blob.index(b'"node"') + 9):
        bad = bytearray(blob)
        bad[i] ^= 1
        with pytest.raises(SealError, match="authentication failed|malformed"):
            open_released(bytes(bad), key, "f")
    # The wrapped key unwraps only for the module it was made for.
    other = hashlib.sha256(b"another app").hexdigest()
    with pytest.raises(SealError, match="authentication failed"):
        _released_key(broker, sim, other, wrapped)
    # Under a policy that does not affirm, no key: the session cannot release.
    strict = make_broker(identity, Policy(), a=sim)
    result, none, _ = _released_key(strict, sim, module, wrapped)
    assert not result.affirming and none is None
    with pytest.raises(TrustError, match="no affirming attestation"):
        strict.open_data_key("no-such-session", "default", b"k" * 32, wrapped)
