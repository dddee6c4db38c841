"""The simulated backend: a per-node Ed25519 key signs the binding. It PROVES NOTHING.

Any process that can read the key file can forge this evidence, and nothing ties it to
hardware. It exists so a laptop can run the whole attestation flow. Every result records that
it proves nothing, and a policy must opt in (``allow_sim: true``) to accept it: the default
policy refuses it (Enarx's Steward once certified its "nil" backend by mistake).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from foglayer.trust._backend import (
    REPORT_DATA_SIZE,
    Claims,
    Evidence,
    EvidenceBackend,
)
from foglayer.trust._errors import EvidenceError
from foglayer.trust._keys import load_or_create_signing_key, load_public_der, public_der

WARNING = "sim TEE: simulated evidence, proves nothing about this machine"
_DOMAIN = b"foglayer-sim-evidence-v1\0"
_warned = False


def _message(report_data: bytes, module_digest: str) -> bytes:
    return _DOMAIN + report_data + bytes.fromhex(module_digest)


class SimBackend(EvidenceBackend):
    name: ClassVar[str] = "sim"
    proves_nothing: ClassVar[bool] = True

    def __init__(self, key_path: Path, *, quiet: bool = False) -> None:
        self._key = load_or_create_signing_key(key_path)
        global _warned
        if not (quiet or _warned):
            print(f"warning: {WARNING}", file=sys.stderr)
            _warned = True

    def identity(self) -> bytes:
        return public_der(self._key)

    def collect(self, report_data: bytes, module_digest: str, *,
                pcrs: Sequence[int] = ()) -> Evidence:
        sig = self._key.sign(_message(report_data, module_digest))
        return Evidence("sim", module_digest, {"report_data": report_data, "signature": sig})

    @classmethod
    def check(cls, evidence: Evidence, identity: bytes) -> Claims:
        key = load_public_der(identity, "sim attestation key")
        if not isinstance(key, Ed25519PublicKey):
            raise EvidenceError("sim attestation key: not Ed25519")
        report_data = evidence.part("report_data")
        if len(report_data) != REPORT_DATA_SIZE:
            raise EvidenceError("sim evidence: report_data is not 32 bytes")
        try:
            key.verify(evidence.part("signature"), _message(report_data, evidence.module_digest))
        except InvalidSignature:
            raise EvidenceError("sim evidence: signature does not verify against the node's "
                                "registered attestation key") from None
        return Claims(report_data, evidence.module_digest, proves_nothing=True)
