"""Key material: Ed25519 signing keys on disk, X25519 ephemeral keys, HKDF + AEAD boxes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from foglayer._dirs import atomic_write
from foglayer.trust._errors import EvidenceError, SealError, TrustError

_NONCE = 12


def sha256(*parts: bytes) -> bytes:
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.digest()


def _write_private(path: Path, data: bytes) -> None:
    # Private keys are written 0600 before the rename: never world-readable, never half-written.
    old = os.umask(0o077)
    try:
        atomic_write(path, data)
    finally:
        os.umask(old)


def load_or_create_signing_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 key at ``path`` (PEM, PKCS#8), created on first use."""
    if path.exists():
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError) as e:
            raise TrustError(f"{path}: not a PEM private key ({e})") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise TrustError(f"{path}: not an Ed25519 private key")
        return key
    key = Ed25519PrivateKey.generate()
    _write_private(path, key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return key


def load_or_create_secret(path: Path, size: int = 32) -> bytes:
    """A random symmetric key at ``path``, created on first use."""
    if path.exists():
        data = path.read_bytes()
        if len(data) != size:
            raise TrustError(f"{path}: key is {len(data)} bytes, expected {size}")
        return data
    data = os.urandom(size)
    _write_private(path, data)
    return data


def public_der(key: Ed25519PublicKey | Ed25519PrivateKey) -> bytes:
    """SubjectPublicKeyInfo DER of a public key (or of a private key's public half)."""
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_der(data: bytes, what: str):
    """A public key from SubjectPublicKeyInfo DER (any type cryptography knows)."""
    try:
        return serialization.load_der_public_key(data)
    except (ValueError, TypeError) as e:
        raise EvidenceError(f"{what}: not a DER public key ({e})") from None


def load_ed25519_public(data: bytes, what: str) -> Ed25519PublicKey:
    key = load_public_der(data, what)
    if not isinstance(key, Ed25519PublicKey):
        raise TrustError(f"{what}: not an Ed25519 public key")
    return key


def x25519_raw(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def new_ephemeral() -> X25519PrivateKey:
    return X25519PrivateKey.generate()


def hkdf(secret: bytes, salt: bytes, info: bytes, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(secret)


def box_seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """ChaCha20-Poly1305 with a random nonce: ``nonce || ciphertext+tag``."""
    nonce = os.urandom(_NONCE)
    return nonce + ChaCha20Poly1305(key).encrypt(nonce, plaintext, aad)


def box_open(key: bytes, blob: bytes, aad: bytes, what: str) -> bytes:
    if len(blob) < _NONCE + 16:
        raise SealError(f"{what}: sealed data too short ({len(blob)} bytes)")
    try:
        return ChaCha20Poly1305(key).decrypt(blob[:_NONCE], blob[_NONCE:], aad)
    except InvalidTag:
        raise SealError(f"{what}: authentication failed (wrong key, tampered or misplaced)") \
            from None
