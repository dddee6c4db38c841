"""Errors of attestation, appraisal and sealing: each message is one line (what and where)."""

from foglayer.errors import FogError


class TrustError(FogError):
    """Attestation, secret release or sealing failed."""


class EvidenceError(TrustError):
    """Evidence is malformed or does not verify (bad signature, wrong binding): always raised,
    never only logged, so no caller can go on as if it had verified."""


class PolicyError(TrustError):
    """An appraisal policy file is malformed."""


class SealError(TrustError):
    """A sealed blob (secret, module, snapshot, stream frame) is corrupt, forged or misplaced."""
