"""Evidence backends behind one base class, as httpx puts transports behind one interface.

A backend has two halves. On the node (the RATS *attester*), an instance holds the TEE's key
material and ``collect``s evidence that binds ``report_data`` (the hash of the verifier's nonce
and the instance's ephemeral key) and the module's digest. On the controller (the *verifier*),
the class method ``check`` verifies that evidence against the key registered when the node first
joined, and returns the claims it proves. ``check`` raises :class:`EvidenceError` on any
failure: a bad signature is never only logged.
"""

from __future__ import annotations

import base64
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from foglayer.trust._errors import EvidenceError
from foglayer.trust._keys import sha256

REPORT_DATA_SIZE = 32
#: The backends' names (the classes are in ``_registry.BACKENDS``).
BACKEND_NAMES = ("sim", "tpm", "tsm")
_DIGEST = re.compile(r"[0-9a-f]{64}")
_MAX_PART = 64 * 1024  # evidence is small; anything bigger is refused before parsing


def binding(nonce: bytes, key_hash: bytes) -> bytes:
    """The runtime data every backend binds into its evidence (KBS's ``runtime_data``)."""
    return sha256(b"foglayer-rcar-v1\0", nonce, key_hash)


def check_digest(value: object, what: str) -> str:
    if not isinstance(value, str) or not _DIGEST.fullmatch(value):
        raise EvidenceError(f"{what}: not a lowercase hex SHA-256 digest")
    return value


@dataclass(frozen=True)
class Evidence:
    """What a node sends: the backend's name, the module it measured, and backend parts."""

    backend: str
    module_digest: str
    parts: dict[str, bytes] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"backend": self.backend, "module_digest": self.module_digest,
                "parts": {k: base64.b64encode(v).decode() for k, v in self.parts.items()}}

    @classmethod
    def from_json(cls, obj: object) -> Evidence:
        if not isinstance(obj, dict):
            raise EvidenceError("evidence: not an object")
        backend = obj.get("backend")
        if backend not in BACKEND_NAMES:
            raise EvidenceError(f"evidence: unknown backend {backend!r}")
        parts = obj.get("parts")
        if not isinstance(parts, dict) or len(parts) > 8:
            raise EvidenceError("evidence.parts: not an object of at most 8 parts")
        decoded: dict[str, bytes] = {}
        for k, v in parts.items():
            if not isinstance(k, str) or not isinstance(v, str) or len(v) > _MAX_PART * 4 // 3 + 4:
                raise EvidenceError(f"evidence.parts.{k}: not base64 text of at most 64 KiB")
            try:
                decoded[k] = base64.b64decode(v, validate=True)
            except ValueError:
                raise EvidenceError(f"evidence.parts.{k}: not base64") from None
        return cls(backend, check_digest(obj.get("module_digest"), "evidence.module_digest"),
                   decoded)

    def part(self, name: str) -> bytes:
        try:
            return self.parts[name]
        except KeyError:
            raise EvidenceError(f"{self.backend} evidence: missing part {name!r}") from None


@dataclass(frozen=True)
class Claims:
    """What verified evidence proves (filled by a backend's ``check``)."""

    report_data: bytes
    module_digest: str | None = None   # measured (tpm) or signed (sim, tsm)
    pcrs: dict[int, bytes] = field(default_factory=dict)
    provider: str | None = None
    measurement: str | None = None
    proves_nothing: bool = False


class EvidenceBackend(ABC):
    """Base of the evidence backends: ``sim``, ``tpm``, ``tsm``."""

    name: ClassVar[str]
    #: True only for the simulated backend: its evidence shows nothing about the machine.
    proves_nothing: ClassVar[bool] = False

    @abstractmethod
    def identity(self) -> bytes:
        """The attestation public key (DER) the controller registers when the node first joins."""

    @abstractmethod
    def collect(self, report_data: bytes, module_digest: str, *,
                pcrs: Sequence[int] = ()) -> Evidence:
        """Evidence that binds ``report_data`` and the module's digest (and, for a TPM,
        quotes the further ``pcrs`` the verifier asked for)."""

    @classmethod
    @abstractmethod
    def check(cls, evidence: Evidence, identity: bytes) -> Claims:
        """Verify ``evidence`` against the registered ``identity``; raise EvidenceError."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the backend holds (processes, files)."""




def dumps(obj: dict) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
