"""Sealed artefacts: secrets at rest, encrypted modules, authenticated snapshots and streams.

- :class:`SecretVault` / :func:`seal_secret`: secrets at rest, sealed to a key only the
  controller holds (X25519 + HKDF + ChaCha20-Poly1305); the cluster keeps them in KV.
- :func:`encrypt_module` / :func:`decrypt_module`: ``fog deploy --encrypt``; the module key is
  released like any secret, and the node decrypts in memory only.
- :func:`pair_key` derives a key bound to an attested (source, target) node pair and their
  attestation results; :class:`StreamSealer` / :class:`StreamOpener` authenticate a migration
  stream frame by frame (ordered, no truncation); :func:`seal` / :func:`unseal` protect a
  snapshot file at rest.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from foglayer._dirs import atomic_write
from foglayer.trust._errors import SealError
from foglayer.trust._keys import box_open, box_seal, hkdf, sha256, x25519_raw

_SECRET_MAGIC = b"FOGSEC2\0"
_MODULE_MAGIC = b"FOGMOD1\0"
_FILE_MAGIC = b"FOGSEAL1"
MAX_SEALED_FILE = 4 << 30
#: An encrypted module is this many bytes longer than the module (header, digest, nonce, tag).
SEALED_MODULE_OVERHEAD = len(_MODULE_MAGIC) + 32 + 12 + 16


class SecretVault:
    """Secrets at rest, sealed to the controller's vault key (X25519, derived from its master
    key): anyone with the public half (the operator's ``fog secret put``) can seal, only the
    controller can open."""

    def __init__(self, master_key: bytes) -> None:
        self._key = X25519PrivateKey.from_private_bytes(
            hkdf(master_key, b"", b"foglayer-vault-x25519-v1"))
        self.public_key = x25519_raw(self._key.public_key())

    def seal(self, name: str, value: bytes) -> bytes:
        return seal_secret(self.public_key, name, value)

    def unseal(self, name: str, blob: bytes) -> bytes:
        if not blob.startswith(_SECRET_MAGIC) or len(blob) < len(_SECRET_MAGIC) + 32:
            raise SealError(f"secret {name}: not a sealed secret")
        epk = blob[len(_SECRET_MAGIC):len(_SECRET_MAGIC) + 32]
        try:
            shared = self._key.exchange(X25519PublicKey.from_public_bytes(epk))
        except ValueError:
            raise SealError(f"secret {name}: bad ephemeral key") from None
        return box_open(_vault_key(shared, epk, name), blob[len(_SECRET_MAGIC) + 32:],
                        _SECRET_MAGIC + name.encode(), f"secret {name}")


def _vault_key(shared: bytes, epk: bytes, name: str) -> bytes:
    return hkdf(shared, epk, b"foglayer-vault-v1\0" + name.encode())


def seal_secret(vault_public_key: bytes, name: str, value: bytes) -> bytes:
    """Seal ``value`` for the controller's vault (its public key): only it can open it."""
    try:
        peer = X25519PublicKey.from_public_bytes(vault_public_key)
    except ValueError:
        raise SealError("vault public key: not an X25519 key") from None
    eph = X25519PrivateKey.generate()
    epk = x25519_raw(eph.public_key())
    key = _vault_key(eph.exchange(peer), epk, name)
    return _SECRET_MAGIC + epk + box_seal(key, value, _SECRET_MAGIC + name.encode())


def new_key() -> bytes:
    return os.urandom(32)


def encrypt_module(wasm: bytes, key: bytes) -> bytes:
    """A module sealed for the Object Store; bound to its plaintext digest."""
    digest = sha256(wasm)
    return _MODULE_MAGIC + digest + box_seal(key, wasm, _MODULE_MAGIC + digest)


def encrypted_module_digest(blob: bytes) -> str:
    if not blob.startswith(_MODULE_MAGIC) or len(blob) < len(_MODULE_MAGIC) + 32:
        raise SealError("encrypted module: bad header")
    return blob[len(_MODULE_MAGIC):len(_MODULE_MAGIC) + 32].hex()


def decrypt_module(blob: bytes, key: bytes) -> bytes:
    """The plaintext module, in memory; SealError if the key or the bytes are wrong."""
    digest = bytes.fromhex(encrypted_module_digest(blob))
    wasm = box_open(key, blob[len(_MODULE_MAGIC) + 32:], _MODULE_MAGIC + digest,
                    "encrypted module")
    if sha256(wasm) != digest:
        raise SealError("encrypted module: digest does not match its contents")
    return wasm


def pair_key(master_key: bytes, source: str, target: str, source_result: str,
             target_result: str) -> bytes:
    """A key for one migration: bound to both nodes and to their attestation results."""
    info = b"\0".join(x.encode() for x in ("foglayer-pair-v1", source, target,
                                           source_result, target_result))
    return hkdf(master_key, b"", info)


class _Stream:
    def __init__(self, key: bytes, source: str, target: str, stream: str) -> None:
        self._aead = ChaCha20Poly1305(key)
        self._head = b"\0".join(x.encode() for x in ("foglayer-stream-v1", source, target,
                                                     stream))
        self.seq = 0
        self.done = False

    def _nonce_aad(self, final: bool) -> tuple[bytes, bytes]:
        nonce = struct.pack(">IQ", int(final), self.seq)
        return nonce, self._head + nonce


class StreamSealer(_Stream):
    """Seals the frames of one migration stream, in order; the last one is marked final."""

    def seal(self, frame: bytes, *, final: bool = False) -> bytes:
        if self.done:
            raise SealError("stream: already finished")
        nonce, aad = self._nonce_aad(final)
        self.seq += 1
        self.done = final
        return struct.pack(">B", int(final)) + self._aead.encrypt(nonce, frame, aad)


class StreamOpener(_Stream):
    """Opens frames from :class:`StreamSealer`: a reordered, replayed, forged, foreign or
    truncated stream is refused."""

    def open(self, sealed: bytes) -> bytes:
        if self.done:
            raise SealError("stream: frame after the final frame")
        if len(sealed) < 17 or sealed[0] > 1:
            raise SealError(f"stream: frame {self.seq} malformed")
        final = bool(sealed[0])
        nonce, aad = self._nonce_aad(final)
        try:
            frame = self._aead.decrypt(nonce, sealed[1:], aad)
        except InvalidTag:
            raise SealError(f"stream: frame {self.seq} does not authenticate (forged, "
                            "reordered, or not from the node pair the controller named)") \
                from None
        self.seq += 1
        self.done = final
        return frame

    def finish(self) -> None:
        if not self.done:
            raise SealError(f"stream: truncated after {self.seq} frames (no final frame)")


def seal_bytes(data: bytes, key: bytes, label: str) -> bytes:
    return _FILE_MAGIC + box_seal(key, data, _FILE_MAGIC + label.encode())


def unseal_bytes(blob: bytes, key: bytes, label: str, what: str) -> bytes:
    if not blob.startswith(_FILE_MAGIC):
        raise SealError(f"{what}: not a sealed file")
    return box_open(key, blob[len(_FILE_MAGIC):], _FILE_MAGIC + label.encode(), what)


def seal(path: Path, key: bytes, out: Path, label: str = "snapshot") -> None:
    """Seal a file (a snapshot) at rest: written via temp + rename."""
    atomic_write(Path(out), seal_bytes(Path(path).read_bytes(), key, label))


def machine_key(create: bool = False) -> bytes:
    """This user's sealing key on this machine (``keys/seal.key`` in the data dir, 0600):
    ``fog run --seal`` creates it; a sealed snapshot opens only where it is."""
    from foglayer._dirs import data_dir
    from foglayer.trust._keys import load_or_create_secret

    path = data_dir("keys") / "seal.key"
    if not create and not path.exists():
        raise SealError(f"no sealing key on this machine ({path}): a sealed snapshot opens "
                        "only for the user and machine that sealed it")
    return load_or_create_secret(path)


def seal_snapshot(data: bytes) -> bytes:
    """A snapshot's bytes sealed under this machine's key (``fog run --seal``)."""
    return seal_bytes(data, machine_key(create=True), "snapshot")


def unseal_snapshot(blob: bytes, where: str) -> bytes:
    """A sealed snapshot's bytes, in memory; SealError (one line) if it is not one or the key
    here is not the one it was sealed with."""
    if not blob.startswith(_FILE_MAGIC):
        raise SealError(f"{where}: not a foglayer snapshot (nor a sealed one)")
    return unseal_bytes(blob, machine_key(), "snapshot", f"{where} (sealed snapshot)")


def unseal(path: Path, key: bytes, label: str = "snapshot") -> bytes:
    """The plaintext of a sealed file, in memory; SealError if the key or file is wrong."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_SEALED_FILE:
            raise SealError(f"{path}: larger than {MAX_SEALED_FILE >> 30} GiB")
        blob = path.read_bytes()
    except OSError as e:
        raise SealError(f"{path}: cannot read ({e.strerror})") from None
    return unseal_bytes(blob, key, label, str(path))
