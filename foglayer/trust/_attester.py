"""The node side of the handshake (the RATS attester): answer a challenge, open what comes back.

Every result and every release must be signed by the controller whose public key came with
the node's credentials; anything else is refused (a node must know it reached the right
broker). The ephemeral X25519 private key lives only in this object, in memory.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from foglayer.trust._backend import EvidenceBackend, binding
from foglayer.trust._broker import secret_key_info
from foglayer.trust._ear import AttestationResult, verify_result
from foglayer.trust._errors import TrustError
from foglayer.trust._keys import box_open, hkdf, new_ephemeral, sha256, x25519_raw
from foglayer.trust._messages import Attestation, Challenge


@dataclass
class AttesterSession:
    """One answered challenge: holds the ephemeral key until the secrets are opened."""

    challenge: Challenge
    controller: Ed25519PublicKey
    _ephemeral: X25519PrivateKey

    def open_result(self, token: str) -> AttestationResult:
        result = verify_result(token, self.controller)
        if result.nonce != self.challenge.nonce:
            raise TrustError("attestation result: answers another challenge")
        return result

    def open_secrets(self, token: str, names: Sequence[str] | None = None) -> dict[str, bytes]:
        """Decrypt a release; with ``names``, exactly those must be in it."""
        try:
            claims = jwt.decode(token, self.controller, algorithms=["EdDSA"],
                                options={"verify_iat": False,
                                         "require": ["session", "epk", "secrets"]})
        except jwt.PyJWTError as e:
            raise TrustError(f"secret release: not signed by this controller ({e})") from None
        session = self.challenge.session
        if claims["session"] != session:
            raise TrustError("secret release: for another session")
        try:
            peer = X25519PublicKey.from_public_bytes(base64.b64decode(claims["epk"]))
            boxes = {str(k): base64.b64decode(v) for k, v in dict(claims["secrets"]).items()}
        except (ValueError, TypeError) as e:
            raise TrustError(f"secret release: malformed ({e})") from None
        if names is not None and set(boxes) != set(names):
            raise TrustError(f"secret release: got {sorted(boxes)}, expected {sorted(names)}")
        shared = self._ephemeral.exchange(peer)
        return {name: box_open(hkdf(shared, self.challenge.nonce, secret_key_info(name)), blob,
                               session.encode() + b"\0" + name.encode(), f"secret {name}")
                for name, blob in boxes.items()}


class Attester:
    """A node's attester: its backend and the controller identity from its credentials."""

    def __init__(self, node: str, backend: EvidenceBackend, controller: Ed25519PublicKey) -> None:
        self.node, self.backend, self.controller = node, backend, controller

    def answer(self, challenge: Challenge, module_digest: str
               ) -> tuple[Attestation, AttesterSession]:
        if challenge.node != self.node:
            raise TrustError(f"challenge for node {challenge.node}, this is {self.node}")
        eph = new_ephemeral()
        pub = x25519_raw(eph.public_key())
        evidence = self.backend.collect(binding(challenge.nonce, sha256(pub)), module_digest,
                                        pcrs=challenge.pcrs)
        att = Attestation(challenge.session, self.node, challenge.nonce, pub, evidence)
        return att, AttesterSession(challenge, self.controller, eph)
