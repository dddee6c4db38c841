"""The RCAR handshake's messages (request, challenge, attestation), as bytes on the bus."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass

from foglayer.trust._backend import Evidence, dumps
from foglayer.trust._errors import EvidenceError

_MAX_MESSAGE = 512 * 1024
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def _load(data: bytes, what: str) -> dict:
    if len(data) > _MAX_MESSAGE:
        raise EvidenceError(f"{what}: larger than {_MAX_MESSAGE // 1024} KiB")
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise EvidenceError(f"{what}: not JSON") from None
    if not isinstance(obj, dict):
        raise EvidenceError(f"{what}: not an object")
    return obj


def _b64field(obj: dict, key: str, what: str, size: int | None = None) -> bytes:
    try:
        out = base64.b64decode(obj[key], validate=True)
    except (KeyError, TypeError, ValueError):
        raise EvidenceError(f"{what}.{key}: missing or not base64") from None
    if size is not None and len(out) != size:
        raise EvidenceError(f"{what}.{key}: {len(out)} bytes, expected {size}")
    return out


def _name(obj: dict, key: str, what: str) -> str:
    v = obj.get(key)
    if not isinstance(v, str) or not _NAME.fullmatch(v):
        raise EvidenceError(f"{what}.{key}: missing or not a name")
    return v


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass(frozen=True)
class Challenge:
    """The verifier's answer to a request: a fresh nonce within a session."""

    session: str
    nonce: bytes
    node: str
    backend: str
    pcrs: tuple[int, ...] = ()   # further PCRs a TPM must quote (the policy's reference PCRs)

    def to_bytes(self) -> bytes:
        return dumps({"session": self.session, "nonce": _b64(self.nonce), "node": self.node,
                      "backend": self.backend, "pcrs": list(self.pcrs)})

    @classmethod
    def from_bytes(cls, data: bytes) -> Challenge:
        obj = _load(data, "challenge")
        pcrs = obj.get("pcrs", [])
        if not isinstance(pcrs, list) or not all(isinstance(i, int) and 0 <= i <= 23
                                                 for i in pcrs):
            raise EvidenceError("challenge.pcrs: not a list of PCR indexes")
        return cls(_name(obj, "session", "challenge"), _b64field(obj, "nonce", "challenge", 32),
                   _name(obj, "node", "challenge"), _name(obj, "backend", "challenge"),
                   tuple(pcrs))


@dataclass(frozen=True)
class Attestation:
    """The attester's reply: evidence binding the nonce and its ephemeral X25519 key."""

    session: str
    node: str
    nonce: bytes
    ephemeral_key: bytes        # raw X25519 public key (32 bytes)
    evidence: Evidence

    def to_bytes(self) -> bytes:
        return dumps({"session": self.session, "node": self.node, "nonce": _b64(self.nonce),
                      "ephemeral_key": _b64(self.ephemeral_key),
                      "evidence": self.evidence.to_json()})

    @classmethod
    def from_bytes(cls, data: bytes) -> Attestation:
        obj = _load(data, "attestation")
        return cls(_name(obj, "session", "attestation"), _name(obj, "node", "attestation"),
                   _b64field(obj, "nonce", "attestation", 32),
                   _b64field(obj, "ephemeral_key", "attestation", 32),
                   Evidence.from_json(obj.get("evidence")))
