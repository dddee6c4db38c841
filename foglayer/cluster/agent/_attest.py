"""The node as RATS attester: its TEE backend answers the controller's challenges.

The backend (``--tee sim|tpm|tsm``) is opened at start; its attestation key goes out in the
capabilities (registered by the controller at first join). An ``attest`` command carries a
challenge and the module to measure; the answer binds the nonce and a fresh ephemeral X25519
key, which stays in this process's memory until the start request brings the app's secrets,
encrypted to it and signed by the controller whose key came with the node's credentials.
"""

from __future__ import annotations

import base64
from collections import OrderedDict

import msgspec

from foglayer.cluster._protocol import H_ERROR, AttestRequest, StartRequest, decode
from foglayer.errors import FogError

MAX_SESSIONS = 64  # answered challenges kept for their start request


class NodeAttester:
    async def _open_tee(self) -> None:
        self._tee = None
        self._attester = None
        self._sessions: OrderedDict[str, object] = OrderedDict()
        if not self.cfg.tee:
            return
        from foglayer.cluster._bus import Creds
        from foglayer.cluster._sealing import write_profile
        from foglayer.trust import Attester, backend_location, controller_key, open_backend

        if self.cfg.controller_key is None:
            raise FogError(f"node {self.name}: --tee {self.cfg.tee} needs the controller's "
                           "public key in the credentials (controller_key)")
        backend = await self.loop.run_in_executor(
            None, lambda: open_backend(self.cfg.tee, self.data_dir / "tee",
                                       tcti=self.cfg.tpm_tcti, tsm_root=self.cfg.tsm_root))
        self._tee = backend
        key = await self.loop.run_in_executor(None, backend.identity)
        # Processes on this node (fog run --seal, fog restore of a sealed snapshot) attest
        # as this node, with its backend: they read how from here.
        write_profile(self.data_dir, self.name, self.cfg.tee, self.cfg.creds or Creds(),
                      self.cfg.server, self.cfg.controller_key, backend_location(backend))
        self._attester = Attester(self.name, backend, controller_key(self.cfg.controller_key))
        self.caps = msgspec.structs.replace(self.caps, tee=[backend.name],
                                            tee_key=base64.b64encode(key).decode())

    def _close_tee(self) -> None:
        if getattr(self, "_tee", None) is not None:
            self._tee.close()
            self._tee = None

    async def _attest(self, msg) -> None:
        from foglayer.trust import Challenge

        try:
            if self._attester is None:
                raise FogError(f"node {self.name} has no TEE backend (fog node --tee)")
            req = decode(msg.data, AttestRequest)
            challenge = Challenge.from_bytes(req.challenge.encode())
            att, session = await self.loop.run_in_executor(
                None, self._attester.answer, challenge, req.module)
        except Exception as e:  # noqa: BLE001 - told to the controller, never raised
            if msg.reply:
                await self.nc.publish(msg.reply, b"", headers={H_ERROR: str(e)[:500]})
            return
        self._sessions[challenge.session] = session
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)
        if msg.reply:
            await self.nc.publish(msg.reply, att.to_bytes())

    def _open_release(self, req: StartRequest, extra: tuple[str, ...] = ()) -> dict[str, bytes]:
        """The app's secrets (and ``extra`` names) from a start or move request: checked
        against the controller's key, decrypted, in memory."""
        what = req.app or "move"
        session = self._sessions.pop(req.session, None) if req.session else None
        if session is None:
            raise FogError(f"{what}: no attested session on node {self.name} for this request")
        names = [*extra, *(s.name for s in req.spec.secrets)] if req.spec else [*extra]
        if not names:
            return {}
        if not req.release:
            raise FogError(f"{what}: the request carries no released secrets")
        return session.open_secrets(req.release, names)
