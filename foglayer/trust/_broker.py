"""The controller side: verifier and relying party (RFC 9334), with a KBS/RCAR-style handshake.

1. ``challenge(node, module_digest, secrets)`` answers a request with a nonce and a session.
2. ``attest(attestation)`` appraises the evidence, which must bind the nonce and the hash of the
   attester's ephemeral X25519 key, against the policy; it returns a signed EAR. A nonce is
   good for one attestation: a replay is refused.
3. ``release(session, secrets)`` encrypts secrets to that ephemeral key (X25519 + HKDF +
   ChaCha20-Poly1305), inside a JWT signed by the controller, as often as the session lives:
   several secrets need no new attestation. Only the names the session was opened for go out.
"""

from __future__ import annotations

import base64
import json
import os
import secrets as _secrets
import threading
import time
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from foglayer.trust import _ear as ear
from foglayer.trust._backend import Claims, binding, check_digest, dumps
from foglayer.trust._errors import EvidenceError, TrustError
from foglayer.trust._keys import (
    box_seal,
    hkdf,
    load_ed25519_public,
    load_or_create_secret,
    load_or_create_signing_key,
    new_ephemeral,
    public_der,
    sha256,
    x25519_raw,
)
from foglayer.trust._messages import Attestation, Challenge
from foglayer.trust._policy import Policy
from foglayer.trust._registry import BACKENDS
from foglayer.trust._seal import SEAL_DATA_KEY, SecretVault, unwrap_data_key, wrap_data_key
from foglayer.trust._sim import WARNING as SIM_WARNING
from foglayer.trust._tpm import MEASURE_PCR, expected_pcr

_MAX_SECRET = 1024 * 1024
_MAX_PENDING = 10_000


def secret_key_info(name: str) -> bytes:
    return b"foglayer-secret-v1\0" + name.encode()


@dataclass(frozen=True)
class ControllerIdentity:
    """The controller's signing key (EARs, releases) and its master key (sealing at rest).

    Nodes get ``public_der`` with their credentials and check every result and release
    against it: that is how a node knows it reached the right broker.
    """

    signing_key: Ed25519PrivateKey
    master_key: bytes

    @classmethod
    def load_or_create(cls, directory: Path) -> ControllerIdentity:
        directory = Path(directory)
        return cls(load_or_create_signing_key(directory / "controller-ed25519.pem"),
                   load_or_create_secret(directory / "controller-master.key"))

    @property
    def public_der(self) -> bytes:
        return public_der(self.signing_key)

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.signing_key.public_key()


@dataclass(frozen=True)
class Registration:
    """A node's attestation key, trusted from its first join on."""

    backend: str
    identity: bytes

    def to_bytes(self) -> bytes:
        return dumps({"backend": self.backend,
                      "identity": base64.b64encode(self.identity).decode()})

    @classmethod
    def from_bytes(cls, data: bytes) -> Registration:
        try:
            obj = json.loads(data)
            reg = cls(str(obj["backend"]), base64.b64decode(obj["identity"], validate=True))
        except (ValueError, KeyError, TypeError):
            raise TrustError("registration: malformed") from None
        if reg.backend not in BACKENDS:
            raise TrustError(f"registration: unknown backend {reg.backend!r}")
        return reg


@dataclass
class _Session:
    challenge: Challenge
    issued_at: float
    module_digest: str
    secrets: frozenset[str]
    ephemeral_key: bytes = b""
    result: ear.AttestationResult | None = None


@dataclass
class Broker:
    """Verifier and relying party; thread-safe. ``registry`` may be a persistent mapping."""

    identity: ControllerIdentity
    policy: Policy = field(default_factory=Policy)
    registry: MutableMapping[str, Registration] = field(default_factory=dict)
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self.vault = SecretVault(self.identity.master_key)
        self._lock = threading.Lock()
        self._sessions: dict[str, _Session] = {}
        self._used: dict[bytes, float] = {}   # consumed nonces -> when they stop mattering
        self.results: dict[str, ear.AttestationResult] = {}

    # --- registration (first join) ------------------------------------------------------------
    def register(self, node: str, backend: str, identity: bytes) -> None:
        """Record a node's attestation key at its first join; a different key later is refused."""
        if backend not in BACKENDS:
            raise TrustError(f"node {node}: unknown TEE backend {backend!r}")
        with self._lock:
            known = self.registry.get(node)
            if known is not None and known != Registration(backend, identity):
                raise TrustError(f"node {node}: already registered with another {known.backend} "
                                 "attestation key; refusing the new one")
            self.registry[node] = Registration(backend, identity)

    # --- 1. request -> challenge --------------------------------------------------------------
    def challenge(self, node: str, module_digest: str, secrets: Sequence[str] = ()) -> Challenge:
        check_digest(module_digest, "module digest")
        reg = self.registry.get(node)
        if reg is None:
            raise TrustError(f"node {node}: not registered (no attestation key)")
        now = self.clock()
        with self._lock:
            self._expire(now)
            if len(self._sessions) >= _MAX_PENDING:
                raise TrustError("broker: too many open attestation sessions")
            ch = Challenge(_secrets.token_hex(16), os.urandom(32), node, reg.backend,
                           tuple(sorted(self.policy.tpm_pcrs)) if reg.backend == "tpm" else ())
            self._sessions[ch.session] = _Session(ch, now, module_digest, frozenset(secrets))
        return ch

    def _expire(self, now: float) -> None:
        horizon = now - 2 * self.policy.max_age
        for sid in [s for s, v in self._sessions.items() if v.issued_at < horizon]:
            del self._sessions[sid]
        for n in [n for n, t in self._used.items() if t < now]:
            del self._used[n]

    # --- 2. evidence -> appraisal -------------------------------------------------------------
    def attest(self, att: Attestation) -> ear.AttestationResult:
        """Appraise; a refused attestation is a signed ``contraindicated`` result with reasons."""
        now = self.clock()
        with self._lock:
            if att.nonce in self._used:
                return self._refuse(att, now, "freshness",
                                    "replayed nonce: this nonce was already used")
            session = self._sessions.get(att.session)
            if session is None:
                return self._refuse(att, now, "freshness", f"unknown session {att.session}")
            if session.challenge.nonce != att.nonce:
                return self._refuse(att, now, "freshness",
                                    "nonce does not match the session's challenge")
            # The nonce is spent whatever the outcome: one challenge, one appraisal.
            self._used[att.nonce] = session.issued_at + 2 * self.policy.max_age
            result = self._appraise(att, session, now)
            if result.affirming:
                session.ephemeral_key, session.result = att.ephemeral_key, result
            else:
                del self._sessions[att.session]
            self.results[att.node] = result
            return result

    def _refuse(self, att: Attestation, now: float, claim: str, reason: str,
                backend: str | None = None) -> ear.AttestationResult:
        vector = dict.fromkeys(ear.CLAIMS, ear.NO_CLAIM)
        vector[claim] = ear.CONTRAINDICATED
        return self._sign(att.node, vector, [reason], backend or att.evidence.backend,
                          att.evidence.module_digest, now, att.nonce, False)

    def _sign(self, node: str, vector: dict[str, int], reasons: list[str], backend: str,
              module: str | None, now: float, nonce: bytes, proves_nothing: bool,
              ) -> ear.AttestationResult:
        result = ear.AttestationResult(
            node=node, status=ear.status_of(vector), vector=vector, reasons=tuple(reasons),
            backend=backend, module_digest=module, issued_at=now,
            expires_at=now + self.policy.max_age, policy_id=self.policy.id,
            proves_nothing=proves_nothing, nonce=nonce)
        return ear.sign_result(result, self.identity.signing_key)

    def _appraise(self, att: Attestation, s: _Session, now: float) -> ear.AttestationResult:
        policy, ev = self.policy, att.evidence
        vector = dict.fromkeys(ear.CLAIMS, ear.NO_CLAIM)
        reasons: list[str] = []

        def bad(claim: str, reason: str, code: int = ear.CONTRAINDICATED) -> None:
            vector[claim] = max(vector[claim], code)
            reasons.append(reason)

        proves_nothing = BACKENDS[ev.backend].proves_nothing
        if proves_nothing:
            reasons.append(SIM_WARNING)
        age = now - s.issued_at
        if age > policy.max_age:
            bad("freshness", f"evidence expired: nonce issued {age:.0f} s ago, "
                             f"policy max_age is {policy.max_age:g} s")
        else:
            vector["freshness"] = ear.AFFIRMING
        reg = self.registry.get(att.node)
        if att.node != s.challenge.node or reg is None:
            bad("instance-identity", f"attestation from {att.node} for a session of "
                                     f"{s.challenge.node}")
            return self._done(att, vector, reasons, now, proves_nothing)
        if ev.backend != reg.backend:
            bad("hardware", f"evidence from backend {ev.backend}, node registered {reg.backend}")
            return self._done(att, vector, reasons, now, proves_nothing)
        if ev.backend == "sim" and not policy.accepts_sim():
            bad("hardware", "sim evidence refused: the policy does not accept sim "
                            "(it proves nothing; set allow_sim: true to opt in)", ear.UNTRUSTED)
        elif ev.backend not in policy.backends:
            bad("hardware", f"backend {ev.backend} is not accepted by the policy", ear.UNTRUSTED)
        try:
            claims = BACKENDS[ev.backend].check(ev, reg.identity)
        except EvidenceError as e:
            bad("instance-identity", str(e))
            return self._done(att, vector, reasons, now, proves_nothing)
        vector["instance-identity"] = ear.AFFIRMING
        if claims.report_data != binding(att.nonce, sha256(att.ephemeral_key)):
            what = "tsm report inblob" if ev.backend == "tsm" else "evidence"
            bad("freshness", f"{what} does not bind this session's nonce and ephemeral key")
        self._appraise_executables(claims, s, bad, vector)
        self._appraise_platform(ev.backend, claims, bad, vector)
        return self._done(att, vector, reasons, now, proves_nothing)

    def _appraise_executables(self, claims: Claims, s: _Session, bad, vector) -> None:
        module = claims.module_digest
        if module != s.module_digest:
            bad("executables", f"module digest {str(module)[:16]}… is not the expected "
                               f"{s.module_digest[:16]}…")
        elif self.policy.modules is not None and module not in self.policy.modules:
            bad("executables", f"module digest {module[:16]}… is not in the policy's modules")
        else:
            vector["executables"] = ear.AFFIRMING

    def _appraise_platform(self, backend: str, claims: Claims, bad, vector) -> None:
        policy = self.policy
        if backend == "tpm":
            ok = True
            pcr16 = claims.pcrs.get(MEASURE_PCR)
            if claims.module_digest is None or pcr16 != expected_pcr(claims.module_digest):
                ok = False
                bad("executables", f"PCR {MEASURE_PCR} mismatch: it does not hold the "
                                   "measurement of the module")
            for index, ref in sorted(policy.tpm_pcrs.items()):
                got = claims.pcrs.get(index)
                if got is None or got.hex() != ref:
                    ok = False
                    bad("configuration", f"PCR {index} mismatch: "
                                         f"{got.hex()[:16] if got else 'not quoted'}…, "
                                         f"reference {ref[:16]}…")
            if ok:
                vector["configuration"] = vector["hardware"] = max(ear.AFFIRMING,
                                                                   vector["hardware"])
        elif backend == "tsm":
            ok = True
            if policy.tsm_providers and claims.provider not in policy.tsm_providers:
                ok = False
                bad("hardware", f"tsm provider {claims.provider!r} not accepted by the policy")
            if policy.tsm_measurements and claims.measurement not in policy.tsm_measurements:
                ok = False
                bad("configuration", f"tsm measurement {str(claims.measurement)[:16]}… "
                                     "not in the policy")
            if ok:
                vector["configuration"] = vector["hardware"] = max(ear.AFFIRMING,
                                                                   vector["hardware"])

    def _done(self, att: Attestation, vector: dict[str, int], reasons: list[str], now: float,
              proves_nothing: bool) -> ear.AttestationResult:
        return self._sign(att.node, vector, reasons, att.evidence.backend,
                          att.evidence.module_digest, now, att.nonce, proves_nothing)

    # --- 3. secret release --------------------------------------------------------------------
    def release(self, session: str, secrets: Mapping[str, bytes]) -> str:
        """A JWT with ``secrets`` encrypted to the session's ephemeral key.

        TrustError if the session did not end in an affirming, still fresh result, or if a
        name is not one the session was opened for.
        """
        now = self.clock()
        with self._lock:
            s = self._sessions.get(session)
            if s is None or s.result is None or not s.result.affirming:
                raise TrustError(f"session {session}: no affirming attestation; no secrets")
            if not s.result.fresh(now):
                raise TrustError(f"session {session}: attestation older than max_age; "
                                 "attest again")
            extra = sorted(set(secrets) - s.secrets)
            if extra:
                raise TrustError(f"session {session}: secret {extra[0]!r} is not named by "
                                 "this app")
            peer = X25519PublicKey.from_public_bytes(s.ephemeral_key)
            nonce = s.challenge.nonce
        eph = new_ephemeral()
        shared = eph.exchange(peer)
        boxes = {}
        for name, value in secrets.items():
            if len(value) > _MAX_SECRET:
                raise TrustError(f"secret {name!r}: larger than 1 MiB")
            key = hkdf(shared, nonce, secret_key_info(name))
            boxes[name] = base64.b64encode(
                box_seal(key, value, session.encode() + b"\0" + name.encode())).decode()
        claims = {"iat": int(now), "session": session, "node": s.challenge.node,
                  "epk": base64.b64encode(x25519_raw(eph.public_key())).decode(),
                  "secrets": boxes}
        return jwt.encode(claims, self.identity.signing_key, algorithm="EdDSA")

    def seal_secret(self, name: str, value: bytes) -> bytes:
        """A secret sealed at rest (for KV) under the controller's master key."""
        if len(value) > _MAX_SECRET:
            raise TrustError(f"secret {name!r}: larger than 1 MiB")
        return self.vault.seal(name, value)

    def release_sealed(self, session: str, sealed: Mapping[str, bytes]) -> str:
        """``release`` of secrets kept sealed at rest (unsealed only in this call)."""
        return self.release(session, {n: self.vault.unseal(n, b) for n, b in sealed.items()})

    # --- sealed snapshots: envelope keys (the controller never sees the snapshot) ----------
    def _affirmed_module(self, session: str) -> str:
        s = self._sessions.get(session)
        if s is None or s.result is None or not s.result.affirming:
            raise TrustError(f"session {session}: no affirming attestation; no key")
        return s.module_digest

    def seal_data_key(self, session: str, key_id: str, sealing_key: bytes) -> tuple[bytes, str]:
        """A fresh data key for one sealed snapshot of the session's attested module: the key
        wrapped under ``sealing_key`` (for the file's header) and released to the session's
        ephemeral key (``SEAL_DATA_KEY``)."""
        module = self._affirmed_module(session)
        data_key = os.urandom(32)
        wrapped = wrap_data_key(sealing_key, key_id, module, data_key)
        return wrapped, self.release(session, {SEAL_DATA_KEY: data_key})

    def open_data_key(self, session: str, key_id: str, sealing_key: bytes,
                      wrapped: bytes) -> str:
        """The data key of a sealed snapshot, unwrapped and released to the session's
        ephemeral key; SealError if it was wrapped for another module (or forged)."""
        module = self._affirmed_module(session)
        return self.release(session, {SEAL_DATA_KEY: unwrap_data_key(
            sealing_key, key_id, module, wrapped)})

    def session_result(self, session: str) -> ear.AttestationResult | None:
        s = self._sessions.get(session)
        return s.result if s else None

    def close_session(self, session: str) -> None:
        with self._lock:
            self._sessions.pop(session, None)


def controller_key(der: bytes) -> Ed25519PublicKey:
    """The controller's public key from a node's credentials."""
    return load_ed25519_public(der, "controller identity")
