"""Trust: nodes prove what they run before they get secrets; modules and snapshots are sealed.

Roles follow IETF RATS (RFC 9334): a node is the *attester*, the controller the *verifier*
and *relying party*; the handshake follows Confidential Containers' KBS (RCAR). What is real
and what is not: ``tpm`` is a real TPM 2.0 quote (tests use a real ``swtpm``); ``tsm`` is the
real configfs-tsm code path, but tests run it against a STAND-IN provider (no TDX/SEV-SNP
hardware here); ``sim`` is openly simulated and PROVES NOTHING.

Public API:

- Backends (one base class, :class:`EvidenceBackend`): :class:`SimBackend`,
  :class:`TpmBackend` (+ :func:`start_swtpm`), :class:`TsmBackend` (+ :class:`StandinProvider`);
  :data:`BACKENDS`; :class:`Evidence`.
- Policy: :class:`Policy`, :func:`parse_policy`, :func:`load_policy`, :data:`DEV_POLICY`.
- Handshake: :class:`Broker` (controller: ``register``, ``challenge``, ``attest``,
  ``release``), :class:`ControllerIdentity`, :class:`Attester` / :class:`AttesterSession`
  (node), :class:`Challenge`, :class:`Attestation`.
- Results: :class:`AttestationResult` (EAR), :func:`verify_result`, :func:`controller_key`.
- Sealing: :class:`SecretVault`, :func:`seal_secret`, :func:`encrypt_module`, :func:`decrypt_module`,
  :func:`pair_key`, :class:`StreamSealer`, :class:`StreamOpener`, :func:`seal`,
  :func:`unseal`; snapshot files sealed under a data key the controller releases after an
  affirming attestation (``fog run --seal``): :class:`SealHeader`, :func:`seal_released`,
  :func:`open_released`, :func:`sealed_header`, ``Broker.seal_data_key`` /
  ``Broker.open_data_key``, :data:`SEAL_DATA_KEY`; or under this machine's local key
  (``--seal-local``, weaker): :func:`seal_snapshot_locally` / :func:`unseal_snapshot_locally`.
- Nodes: :func:`open_backend` (``fog node --tee``), :func:`backend_location` (the same
  backend from another process on the node).
- Errors: :class:`TrustError`, :class:`EvidenceError`, :class:`PolicyError`, :class:`SealError`.
"""

from foglayer.trust._attester import Attester, AttesterSession
from foglayer.trust._backend import Claims, Evidence, EvidenceBackend, binding
from foglayer.trust._broker import Broker, ControllerIdentity, Registration, controller_key
from foglayer.trust._ear import AttestationResult, verify_result
from foglayer.trust._errors import EvidenceError, PolicyError, SealError, TrustError
from foglayer.trust._messages import Attestation, Challenge
from foglayer.trust._node import backend_location, open_backend
from foglayer.trust._policy import DEV_POLICY, Policy, load_policy, parse_policy
from foglayer.trust._registry import BACKENDS
from foglayer.trust._seal import (
    SEAL_DATA_KEY,
    SEALED_MODULE_OVERHEAD,
    SealHeader,
    SecretVault,
    StreamOpener,
    StreamSealer,
    decrypt_module,
    encrypt_module,
    encrypted_module_digest,
    is_local_seal,
    is_released_seal,
    new_key,
    open_released,
    pair_key,
    seal,
    seal_bytes,
    seal_released,
    seal_secret,
    seal_snapshot_locally,
    sealed_header,
    unseal,
    unseal_bytes,
    unseal_snapshot_locally,
    unwrap_data_key,
)
from foglayer.trust._sim import WARNING as SIM_WARNING
from foglayer.trust._sim import SimBackend
from foglayer.trust._tpm import Swtpm, TpmBackend, expected_pcr, start_swtpm
from foglayer.trust._tsm import STANDIN_PROVIDER, StandinProvider, TsmBackend

__all__ = [
    "BACKENDS", "DEV_POLICY", "SEALED_MODULE_OVERHEAD", "SIM_WARNING", "STANDIN_PROVIDER", "Attestation",
    "AttestationResult", "Attester", "AttesterSession", "Broker", "Challenge", "Claims",
    "ControllerIdentity", "Evidence", "EvidenceBackend", "EvidenceError", "Policy",
    "PolicyError", "Registration", "SealError", "SecretVault", "SimBackend", "StandinProvider",
    "StreamOpener", "StreamSealer", "Swtpm", "TpmBackend", "TrustError", "TsmBackend", "binding",
    "backend_location", "controller_key", "decrypt_module", "encrypt_module", "encrypted_module_digest",
    "expected_pcr", "load_policy", "open_backend", "new_key", "pair_key", "parse_policy", "seal", "seal_bytes", "seal_secret",
    "SEAL_DATA_KEY", "SealHeader", "is_local_seal", "is_released_seal", "open_released",
    "seal_released", "seal_snapshot_locally", "sealed_header", "unseal_snapshot_locally",
    "unwrap_data_key",
    "start_swtpm", "unseal", "unseal_bytes", "verify_result",
]
