"""Attestation: the controller is the verifier and relying party (foglayer.trust).

- At a node's first join (its heartbeat names a TEE backend and a key) the key is registered
  (``reg.<node>`` in ``fog-attest``; a different key later is refused) and the node attested.
- Every start of an app that needs it (``tee:`` or ``secrets:``) waits for a fresh attestation
  that measures that app's module; the app's secrets go out in the start request, encrypted to
  the attested instance's ephemeral key, only after an affirming result.
- A result older than the policy's ``max_age`` is renewed.
- Results are EARs signed by the controller, kept in ``result.<node>``; the scheduler sees a
  node's TEE only through an affirming, fresh result (``fog explain`` shows why not).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from pathlib import Path

from foglayer.cluster._bus import LONG_WATCH, kv_snapshot, watching
from foglayer.cluster._protocol import ATTEST, H_ERROR, AttestRequest, cmd_subject, encode
from foglayer.trust import (
    Attestation,
    AttestationResult,
    Broker,
    ControllerIdentity,
    EvidenceError,
    Policy,
    PolicyError,
    Registration,
    TrustError,
    parse_policy,
    verify_result,
)

#: The "module" a node measures when it is attested for itself (at join, on renewal).
PLATFORM = hashlib.sha256(b"foglayer: node platform attestation").hexdigest()
ATTEST_TIMEOUT = 15.0


def trust_dir_default() -> Path:
    from foglayer._dirs import data_dir

    return data_dir("controller-trust")


class Attesting:
    def _init_attest(self) -> None:
        identity = ControllerIdentity.load_or_create(self.cfg.trust_dir or trust_dir_default())
        self.broker = Broker(identity, Policy())
        self.results: dict[str, AttestationResult] = {}
        self._attesting: dict[str, asyncio.Task] = {}
        self._warned_keys: set[str] = set()
        self._vault_published = False  # the vault key in fog-attest, for `fog secret put`

    # -- state in fog-attest ------------------------------------------------------------------

    async def _load_attest(self) -> None:
        """Policy, registrations and results from ``fog-attest`` (at a take-over). Never
        raises: a leader that cannot read them yet runs with the strict default policy and
        attests nodes afresh; a later take-over or the policy watch catch up."""
        try:
            await self._read_attest()
        except Exception as e:  # noqa: BLE001 - the take-over must not fail for this
            self.log(f"attestation state not loaded ({type(e).__name__}: {e}): nodes will "
                     "be attested afresh")

    async def _read_attest(self) -> None:
        raw = await kv_snapshot(self.kv[ATTEST])
        if raw.get("vault") == self.broker.vault.public_key:
            self._vault_published = True
        self._apply_policy(raw.get("policy"))
        for key, value in raw.items():
            kind, _, name = key.partition(".")
            try:
                if kind == "reg":
                    self.broker.registry[name] = Registration.from_bytes(value)
                elif kind == "result":
                    self.results[name] = verify_result(value.decode(),
                                                       self.broker.identity.public_key)
            except (TrustError, UnicodeDecodeError) as e:
                self.log(f"skipped the stored {kind} of {name!r}: {e}")

    def _apply_policy(self, text: bytes | None) -> None:
        old = self.broker.policy.id
        if not text:
            self.broker.policy = Policy()
        else:
            try:
                self.broker.policy = parse_policy(text.decode(), "policy in fog-attest")
            except (PolicyError, UnicodeDecodeError) as e:
                self.broker.policy = Policy()   # a bad policy never loosens anything
                self.log(f"{e}: using the strict default policy")
        if self.broker.policy.id != old:
            # Results appraised under another policy no longer count: nodes attest again.
            self.results = {n: r for n, r in self.results.items()
                            if r.policy_id == self.broker.policy.id}

    async def _watch_policy(self) -> None:
        while True:
            try:
                async with watching(self.kv[ATTEST], "policy", idle=LONG_WATCH) as watcher:
                    async for entry in watcher:
                        if entry is None:
                            continue
                        gone = entry.operation in ("DEL", "PURGE")
                        self._apply_policy(None if gone else entry.value)
                        self._dirty.set()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - re-watch after a reconnect
                self.log(f"policy watch restarted: {e}")
                await asyncio.sleep(0.5)

    async def _put_raw(self, key: str, data: bytes) -> None:
        if self.lease.leader:  # a deposed leader writes nothing
            await self.kv[ATTEST].put(key, data)

    # -- registration and attestation ---------------------------------------------------------

    async def _on_tee(self, node: str, backend: str, key_b64: str) -> None:
        """A heartbeat that names a TEE: register its key at first join, attest when due."""
        if node in self._attesting:
            return
        reg = self.broker.registry.get(node)
        try:
            identity = base64.b64decode(key_b64, validate=True)
        except ValueError:
            return await self._drop(node, "heartbeat", "tee_key is not base64")
        if reg is None:
            try:
                self.broker.register(node, backend, identity)
            except TrustError as e:
                return await self.event("attest", str(e), node=node)
            await self._put_raw(f"reg.{node}", self.broker.registry[node].to_bytes())
            await self.event("attest", f"node {node} registered its {backend} attestation key "
                             "(first join)", node=node)
        elif reg != Registration(backend, identity):
            if node not in self._warned_keys:
                self._warned_keys.add(node)
                await self.event("attest", f"node {node} shows another {backend} key than the "
                                 "one it registered: refused", node=node)
            return
        result = self.results.get(node)
        if result is None or not result.fresh():
            self._attesting[node] = asyncio.create_task(self._attest_task(node))

    async def _attest_task(self, node: str) -> None:
        try:
            await self.attest(node, PLATFORM)
        except Exception as e:  # noqa: BLE001 - recorded as an event; retried on expiry
            self.log(f"attestation of {node} failed: {type(e).__name__}: {e}")
        finally:
            self._attesting.pop(node, None)

    async def attest(self, node: str, module: str, secrets: tuple[str, ...] = ()
                     ) -> tuple[AttestationResult, str]:
        """Challenge ``node`` to measure ``module``; the signed result and its session."""
        t0 = time.perf_counter()
        ch = self.broker.challenge(node, module, secrets)
        body = AttestRequest(ch.to_bytes().decode(), module)
        try:
            msg = await self.nc.request(cmd_subject(node, "attest"), encode(body),
                                        timeout=ATTEST_TIMEOUT)
            if msg.headers and H_ERROR in msg.headers:
                raise TrustError(f"node {node} could not attest: {msg.headers[H_ERROR]}")
            result = self.broker.attest(Attestation.from_bytes(msg.data))
        except EvidenceError as e:
            self.broker.close_session(ch.session)
            raise TrustError(f"node {node} sent malformed evidence: {e}") from None
        except Exception:
            self.broker.close_session(ch.session)
            raise
        self.results[node] = result
        await self._put_raw(f"result.{node}", result.token.encode())
        what = "its platform" if module == PLATFORM else f"module {module[:12]}"
        await self.event("attest", f"node {node} attested ({result.backend}, {what}): "
                         f"{result.why()} [{1000 * (time.perf_counter() - t0):.0f} ms]",
                         node=node, status=result.status)
        self._dirty.set()
        return result, ch.session

    async def _renew_attestations(self) -> None:
        """Publish the vault key if not yet done; attest again each node whose result passed
        ``max_age``."""
        if not self._vault_published:
            await self._put_raw("vault", self.broker.vault.public_key)
            self._vault_published = True
        for node, rec in self.nodes.items():
            c = rec.caps
            if rec.state == "ready" and c.tee and c.tee_key and node not in self._attesting:
                r = self.results.get(node)
                if r is not None and not r.fresh():
                    self._attesting[node] = asyncio.create_task(self._attest_task(node))

    def attested(self, node: str) -> tuple[list[str], str]:
        """The TEE backends the scheduler may count on for ``node``, and a note on why."""
        r = self.results.get(node)
        if r is None:
            return [], "not attested"
        if not r.fresh():
            return [], f"attestation older than max_age ({r.backend})"
        note = f"{r.backend} {r.why()}"
        return ([r.backend], note) if r.affirming else ([], note)

    async def release_for(self, node: str, spec) -> tuple[str, str]:
        """Attest ``node`` for the module of ``spec`` (an AppSpec); if affirming, the release
        token (the app's secrets, and an encrypted module's key) and the session."""
        names = self.release_names(spec)
        result, session = await self.attest(node, spec.digest, tuple(names))
        if not result.affirming:
            raise TrustError(f"attestation of {node}: {result.why()}")
        if not names:
            return "", session
        try:
            plain = await self.released_values(spec, names)
            return self.broker.release(session, plain), session
        except TrustError:
            self.broker.close_session(session)
            raise

    @staticmethod
    def release_names(spec, *extra: str) -> list[str]:
        """The names released to a node that starts ``spec``: ``extra``, its secrets, and for
        an encrypted module its key."""
        from foglayer.cluster._spec import MODULE_KEY

        return [*extra, *(s.name for s in spec.secrets),
                *((MODULE_KEY,) if spec.encrypted else ())]

    async def released_values(self, spec, names: list[str]) -> dict[str, bytes]:
        """The plaintext of ``names`` (secrets, an encrypted module's key), unsealed from the
        vault only for the release being made."""
        from foglayer.cluster._spec import MODULE_KEY, module_key_name

        out = {}
        for n in names:
            if n == MODULE_KEY:
                blob = await self._attest_value(f"modkey.{spec.digest}")
                if blob is None:
                    raise TrustError(f"encrypted module {spec.digest[:12]}: its key is not in "
                                     "fog-attest (deploy it again with --encrypt)")
                out[n] = self.broker.vault.unseal(module_key_name(spec.digest), blob)
            else:
                out[n] = self.broker.vault.unseal(n, await self._sealed_secret(n))
        return out

    async def _attest_value(self, key: str) -> bytes | None:
        try:
            entry = await self.kv[ATTEST].get(key)
        except Exception:  # noqa: BLE001 - KeyNotFound and friends
            entry = None
        return entry.value if entry is not None and entry.value else None

    async def _sealed_secret(self, name: str) -> bytes:
        value = await self._attest_value(f"secret.{name}")
        if value is None:
            raise TrustError(f"secret {name!r} does not exist (`fog secret put {name} ...`)")
        return value
