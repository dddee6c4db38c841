"""Attestation results as EAR (IETF RATS draft-ietf-rats-ear): a JWT signed by the controller.

The claims follow EAR: ``eat_profile``, ``iat``, ``ear.verifier-id``, ``eat_nonce`` and one
``submods`` entry per attester with ``ear.status``, the AR4SI ``ear.trustworthiness-vector``
and ``ear.appraisal-policy-id``. foglayer's own claims carry the ``ear.foglayer.`` prefix:
backend, module, reasons, and whether the evidence proves nothing (sim).
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from foglayer.trust._errors import TrustError

EAR_PROFILE = "tag:github.com,2023:veraison/ear"
VERIFIER_ID = {"developer": "foglayer", "build": "foglayer-trust 1"}

# AR4SI tiers (draft-ietf-rats-ar4si): 0 no claim, 2..31 affirming, 32..95 warning,
# 96..127 contraindicated. The specific codes used here:
NO_CLAIM = 0
AFFIRMING = 2          # trustworthy instance / approved config / approved runtime / genuine hw
UNRECOGNIZED = 33      # e.g. a module nobody listed, when the policy only warns
CONTRAINDICATED = 96   # known bad: wrong key, wrong module, wrong PCRs
UNTRUSTED = 97         # e.g. hardware the policy does not accept (sim under a strict policy)
CLAIMS = ("instance-identity", "configuration", "executables", "hardware", "freshness")


def tier(value: int) -> str:
    if value >= 96:
        return "contraindicated"
    if value >= 32:
        return "warning"
    return "affirming"


def status_of(vector: dict[str, int]) -> str:
    """The worst tier of the vector (no claim counts as affirming)."""
    order = ("affirming", "warning", "contraindicated")
    return max((tier(v) for v in vector.values()), key=order.index, default="affirming")


@dataclass(frozen=True)
class AttestationResult:
    """One appraisal of one node (decoded EAR); ``token`` is the signed JWT."""

    node: str
    status: str
    vector: dict[str, int]
    reasons: tuple[str, ...]
    backend: str
    module_digest: str | None
    issued_at: float
    expires_at: float
    policy_id: str
    proves_nothing: bool = False
    nonce: bytes = b""
    token: str = field(default="", compare=False)

    @property
    def id(self) -> str:
        """A short name for this signed result (binds pair keys to the results behind them)."""
        import hashlib

        return hashlib.sha256(self.token.encode()).hexdigest()[:32]

    @property
    def affirming(self) -> bool:
        return self.status == "affirming"

    def fresh(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) < self.expires_at

    def why(self) -> str:
        """One line: the status and the reasons."""
        tail = "; ".join(self.reasons) if self.reasons else "all checks passed"
        return f"{self.status}: {tail}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_result(result: AttestationResult, key: Ed25519PrivateKey) -> AttestationResult:
    sub = {"ear.status": result.status,
           "ear.trustworthiness-vector": dict(result.vector),
           "ear.appraisal-policy-id": result.policy_id,
           "ear.foglayer.backend": result.backend,
           "ear.foglayer.module": result.module_digest,
           "ear.foglayer.reasons": list(result.reasons),
           "ear.foglayer.proves-nothing": result.proves_nothing}
    claims = {"eat_profile": EAR_PROFILE, "iat": int(result.issued_at),
              "ear.foglayer.iat": result.issued_at, "exp": int(result.expires_at) + 1,
              "ear.foglayer.exp": result.expires_at, "ear.verifier-id": VERIFIER_ID,
              "eat_nonce": _b64(result.nonce), "submods": {result.node: sub}}
    token = jwt.encode(claims, key, algorithm="EdDSA")
    return AttestationResult(**{**result.__dict__, "token": token})


def verify_result(token: str, controller: Ed25519PublicKey) -> AttestationResult:
    """Decode an EAR, checking that the controller signed it; TrustError if not."""
    try:
        claims = jwt.decode(token, controller, algorithms=["EdDSA"],
                            options={"verify_exp": False, "verify_iat": False,
                                     "require": ["iat", "submods"]})
    except jwt.PyJWTError as e:
        raise TrustError(f"attestation result: not signed by this controller ({e})") from None
    try:
        if claims["eat_profile"] != EAR_PROFILE:
            raise ValueError("eat_profile")
        ((node, sub),) = claims["submods"].items()
        vector = {k: int(v) for k, v in sub["ear.trustworthiness-vector"].items()}
        nonce = claims.get("eat_nonce", "")
        return AttestationResult(
            node=str(node), status=str(sub["ear.status"]), vector=vector,
            reasons=tuple(str(r) for r in sub["ear.foglayer.reasons"]),
            backend=str(sub["ear.foglayer.backend"]), module_digest=sub["ear.foglayer.module"],
            issued_at=float(claims["ear.foglayer.iat"]),
            expires_at=float(claims["ear.foglayer.exp"]),
            policy_id=str(sub["ear.appraisal-policy-id"]),
            proves_nothing=bool(sub["ear.foglayer.proves-nothing"]),
            nonce=base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4)), token=token)
    except (KeyError, ValueError, TypeError, AttributeError) as e:
        raise TrustError(f"attestation result: malformed EAR claims ({e})") from None
