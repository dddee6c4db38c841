"""Sealed snapshot files: the controller as a KBS for their data keys (``fog run --seal``).

Envelope encryption, KMS-style: each sealing key (``key_id``, default ``default``) is a
32-byte key the controller creates at first use and keeps in ``fog-attest`` as
``sealkey.<key_id>``, sealed under its vault key (like secrets); it never leaves the
controller. A process on a node (with that node's credentials, so the server vouches for the
node's name) asks on ``fog.node.<node>.sealkey``:

1. :class:`SealKeyRequest` (the snapshot's module, the key id, and for a restore the file's
   wrapped data key) → a challenge: nonce + session, opened for the one name
   ``SEAL_DATA_KEY``;
2. :class:`SealKeyAttest` (evidence binding the nonce and an ephemeral X25519 key, from the
   node's registered TEE backend) → the signed EAR; if it affirms under the policy in force,
   a fresh data key wrapped under the sealing key for that module (sealing), or the file's
   data key unwrapped (restoring: it unwraps only for the module it was wrapped for), released
   to the ephemeral key. The snapshot itself never reaches the controller.

These appraisals do not replace the node's result for scheduling (a refused restore of some
snapshot must not take a node's apps away); each one is an ``attest`` event.
"""

from __future__ import annotations

import base64
import os
import time

from foglayer.cluster._protocol import (
    ALL_SEALKEY,
    ATTEST,
    H_ERROR,
    BadMessage,
    SealKeyAttest,
    SealKeyMessage,
    SealKeyReply,
    SealKeyRequest,
    decode_node,
    encode,
    subject_node,
)
from foglayer.trust import SEAL_DATA_KEY, Attestation, EvidenceError, SealError, TrustError

MAX_PENDING = 1000  # open sealing handshakes (each also holds a broker session)
PENDING_TTL = 60.0  # seconds a challenge waits for its evidence


class Sealing:
    def _init_sealing(self) -> None:
        # session -> (node, key id, wrapped data key or None, when opened)
        self._seal_ops: dict[str, tuple[str, str, bytes | None, float]] = {}

    async def _subscribe_sealing(self) -> None:
        await self.nc.subscribe(ALL_SEALKEY, cb=self._on_sealkey)

    async def _on_sealkey(self, msg) -> None:
        if not msg.reply or not self.lease.leader or not self.leader:
            return  # only the leader answers (it holds the broker's sessions)
        node = subject_node(msg.subject)
        try:
            req = decode_node(msg.subject, msg.data, SealKeyMessage)
            if isinstance(req, SealKeyRequest):
                reply = self._seal_challenge(node, req)
            else:
                reply = await self._seal_release(node, req)
        except BadMessage as e:
            await self._drop(node, msg.subject, str(e))
            reply = f"malformed sealing request: {e}"
        except (TrustError, EvidenceError) as e:  # SealError is a TrustError
            reply = str(e)
        except Exception as e:  # noqa: BLE001 - told to the requester, never raised
            self.log(f"sealing request of {node} failed: {type(e).__name__}: {e}")
            reply = f"{type(e).__name__}: {e}"
        if isinstance(reply, str):
            await self.nc.publish(msg.reply, b"", headers={H_ERROR: reply.replace("\n", " ")[:500]})
        else:
            await self.nc.publish(msg.reply, encode(reply))

    def _seal_challenge(self, node: str, req: SealKeyRequest) -> SealKeyReply:
        now = time.monotonic()
        for sid in [s for s, op in self._seal_ops.items() if now - op[3] > PENDING_TTL]:
            self._seal_ops.pop(sid)
            self.broker.close_session(sid)
        if len(self._seal_ops) >= MAX_PENDING:
            raise TrustError("too many sealing handshakes in progress; try again")
        try:
            wrapped = base64.b64decode(req.wrapped, validate=True) if req.wrapped else None
        except ValueError:
            raise TrustError("sealing request: wrapped key is not base64") from None
        ch = self.broker.challenge(node, req.module, (SEAL_DATA_KEY,))
        self._seal_ops[ch.session] = (node, req.key_id, wrapped, now)
        return SealKeyReply(challenge=ch.to_bytes().decode())

    async def _seal_release(self, node: str, req: SealKeyAttest) -> SealKeyReply:
        att = Attestation.from_bytes(req.attestation.encode())
        op = self._seal_ops.pop(att.session, None)
        if op is None or op[0] != node or att.node != node:
            raise TrustError(f"sealing: no open handshake {att.session} for node {node}")
        _, key_id, wrapped, _ = op
        try:
            result = self.broker.attest(att)
            what = "a new snapshot data key" if wrapped is None else "a snapshot's data key"
            await self.event("attest", f"node {node} attested ({result.backend}, module "
                             f"{(result.module_digest or '?')[:12]}) for {what} ({key_id}): "
                             f"{result.why()}", node=node, status=result.status)
            if not result.affirming:
                return SealKeyReply(result=result.token, policy=self.broker.policy.id)
            sealing_key = await self._sealing_key(key_id, create=wrapped is None)
            if wrapped is None:
                wrapped, release = self.broker.seal_data_key(att.session, key_id, sealing_key)
            else:
                release = self.broker.open_data_key(att.session, key_id, sealing_key, wrapped)
        finally:
            self.broker.close_session(att.session)
        return SealKeyReply(result=result.token, release=release,
                            wrapped=base64.b64encode(wrapped).decode(),
                            policy=self.broker.policy.id)

    async def _sealing_key(self, key_id: str, create: bool) -> bytes:
        """The sealing key ``key_id`` (created at the first seal), unsealed for this call."""
        name = f"sealkey:{key_id}"
        blob = await self._attest_value(f"sealkey.{key_id}")
        if blob is None:
            if not create:
                raise SealError(f"the controller has no sealing key {key_id!r} (sealed "
                                "under another cluster's controller?)")
            blob = self.broker.vault.seal(name, os.urandom(32))
            try:
                await self.kv[ATTEST].create(f"sealkey.{key_id}", blob)
            except Exception:  # noqa: BLE001 - another leader made it first: use that one
                blob = await self._attest_value(f"sealkey.{key_id}")
                if blob is None:
                    raise
        return self.broker.vault.unseal(name, blob)
