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

import base64
import json
import os
import re
import struct
from dataclasses import dataclass
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
    """This user's LOCAL sealing key on this machine (``keys/seal.key`` in the data dir, 0600):
    ``fog run --seal-local`` creates it. Weaker than :class:`SealHeader` sealing: no
    attestation, and the key sits on this disk."""
    from foglayer._dirs import data_dir
    from foglayer.trust._keys import load_or_create_secret

    path = data_dir("keys") / "seal.key"
    if not create and not path.exists():
        raise SealError(f"no local sealing key on this machine ({path}): a snapshot sealed "
                        "with --seal-local opens only for the user and machine that sealed it")
    return load_or_create_secret(path)


def seal_snapshot_locally(data: bytes) -> bytes:
    """A snapshot's bytes sealed under this machine's local key (``fog run --seal-local``)."""
    return seal_bytes(data, machine_key(create=True), "snapshot")


def unseal_snapshot_locally(blob: bytes, where: str) -> bytes:
    """A locally sealed snapshot's bytes, in memory; SealError (one line) if it is not one or
    the key here is not the one it was sealed with."""
    if not blob.startswith(_FILE_MAGIC):
        raise SealError(f"{where}: not a foglayer snapshot (nor a sealed one)")
    return unseal_bytes(blob, machine_key(), "snapshot", f"{where} (locally sealed snapshot)")


# -- snapshots sealed under a data key the controller releases (fog run --seal) -------------

_RELEASED_MAGIC = b"FOGSEAL2"
_HEADER_LEN = struct.Struct(">I")
_MAX_HEADER = 4096
_KEY_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
#: The release name of a snapshot's data key (the only name a sealing session is opened for).
SEAL_DATA_KEY = "snapshot-data-key"


@dataclass(frozen=True)
class SealHeader:
    """What a controller-sealed snapshot file says in the clear (and authenticates: it is the
    AEAD's associated data): the controller's sealing key it needs (``key_id``), the module it
    is of (the release is bound to it), and the data key wrapped under the sealing key, which
    only the controller can unwrap. ``node`` and ``policy`` say where and under what it was
    sealed (for people; the controller appraises a restore under the policy then in force)."""

    key_id: str
    module: str
    wrapped: bytes
    node: str = ""
    policy: str = ""

    def to_bytes(self) -> bytes:
        return json.dumps({"v": 1, "key_id": self.key_id, "module": self.module,
                           "wrapped": base64.b64encode(self.wrapped).decode(),
                           "node": self.node, "policy": self.policy},
                          sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes, where: str) -> SealHeader:
        try:
            obj = json.loads(data)
            head = cls(str(obj["key_id"]), str(obj["module"]),
                       base64.b64decode(obj["wrapped"], validate=True),
                       str(obj.get("node", ""))[:256], str(obj.get("policy", ""))[:256])
            if obj.get("v") != 1:
                raise ValueError(f"version {obj.get('v')!r}")
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
            raise SealError(f"{where}: sealed snapshot header is malformed ({e})") from None
        if not _KEY_ID.fullmatch(head.key_id):
            raise SealError(f"{where}: sealed snapshot header: bad key id {head.key_id!r}")
        if not re.fullmatch(r"[0-9a-f]{64}", head.module):
            raise SealError(f"{where}: sealed snapshot header: module is not a SHA-256 digest")
        if not 28 <= len(head.wrapped) <= 128:
            raise SealError(f"{where}: sealed snapshot header: wrapped key of "
                            f"{len(head.wrapped)} bytes")
        return head


def check_key_id(key_id: str) -> str:
    if not _KEY_ID.fullmatch(key_id):
        raise SealError(f"sealing key id {key_id!r}: use 1-63 of a-z, 0-9, '-' and '_'")
    return key_id


def _wrap_aad(key_id: str, module: str) -> bytes:
    return b"foglayer-seal-wrap-v1\0" + key_id.encode() + b"\0" + bytes.fromhex(module)


def wrap_data_key(sealing_key: bytes, key_id: str, module: str, data_key: bytes) -> bytes:
    """A snapshot's data key wrapped under the controller's sealing key, bound to the key id
    and the module: unwrapped for another module, it fails."""
    return box_seal(sealing_key, data_key, _wrap_aad(check_key_id(key_id), module))


def unwrap_data_key(sealing_key: bytes, key_id: str, module: str, wrapped: bytes) -> bytes:
    key = box_open(sealing_key, wrapped, _wrap_aad(check_key_id(key_id), module),
                   f"sealed snapshot's data key (key {key_id}, module {module[:12]})")
    if len(key) != 32:
        raise SealError("sealed snapshot's data key: not 32 bytes")
    return key


def is_released_seal(blob: bytes) -> bool:
    """Whether ``blob`` is a snapshot sealed under a controller-released key (FOGSEAL2)."""
    return blob.startswith(_RELEASED_MAGIC)


def is_local_seal(blob: bytes) -> bool:
    """Whether ``blob`` is a snapshot sealed under this machine's local key (FOGSEAL1)."""
    return blob.startswith(_FILE_MAGIC)


def _split(blob: bytes, where: str) -> tuple[bytes, SealHeader, bytes]:
    if not is_released_seal(blob):
        raise SealError(f"{where}: not a snapshot sealed for controller release")
    start = len(_RELEASED_MAGIC) + _HEADER_LEN.size
    if len(blob) < start:
        raise SealError(f"{where}: sealed snapshot truncated in its header")
    (n,) = _HEADER_LEN.unpack_from(blob, len(_RELEASED_MAGIC))
    if n > _MAX_HEADER or len(blob) < start + n:
        raise SealError(f"{where}: sealed snapshot header of {n} bytes (truncated or too long)")
    raw = blob[start:start + n]
    return raw, SealHeader.from_bytes(raw, where), blob[start + n:]


def sealed_header(blob: bytes, where: str) -> SealHeader:
    """The clear header of a FOGSEAL2 file (not yet authenticated: the body's AEAD is)."""
    return _split(blob, where)[1]


def seal_released(data: bytes, data_key: bytes, header: SealHeader) -> bytes:
    """``data`` sealed under its data key; the header rides as associated data."""
    raw = header.to_bytes()
    return (_RELEASED_MAGIC + _HEADER_LEN.pack(len(raw)) + raw
            + box_seal(data_key, data, _RELEASED_MAGIC + raw))


def open_released(blob: bytes, data_key: bytes, where: str) -> bytes:
    """The plaintext of a FOGSEAL2 file, in memory; SealError if tampered with or misplaced."""
    raw, _head, body = _split(blob, where)
    return box_open(data_key, body, _RELEASED_MAGIC + raw, f"{where} (sealed snapshot)")


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
