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
