"""Apps: upload a module, write the desired state, wait for it, stop it."""

from __future__ import annotations

import time

import msgspec
from nats.js.errors import KeyNotFoundError, ObjectNotFoundError

from foglayer.cluster._bus import next_entry, watching
from foglayer.cluster._protocol import APPS, ATTEST, MODULES, PLACEMENTS, BadMessage, decode, encode
from foglayer.cluster._spec import AppRecord
from foglayer.errors import FogError

DONE = ("running", "exited", "failed", "pending")


class Apps:
    async def upload(self, digest: str, wasm: bytes) -> bool:
        """Put a module in the Object Store under its SHA-256 (once); True if uploaded."""
        obs = await self.js.object_store(MODULES)
        try:
            await obs.get_info(digest)
            return False
        except ObjectNotFoundError:
            pass
        await obs.put(digest, wasm)
        return True

    async def upload_sealed(self, digest: str, wasm: bytes) -> bool:
        """Put a module in the Object Store encrypted (``<digest>.sealed``, once): AEAD under a
        fresh key, the key sealed here to the controller's vault key (only a controller opens
        it) and kept in ``fog-attest`` as ``modkey.<digest>``. True if uploaded."""
        from foglayer.cluster._spec import module_key_name
        from foglayer.trust import encrypt_module, new_key, seal_secret

        obs = await self.js.object_store(MODULES)
        try:
            await obs.get_info(f"{digest}.sealed")
            return False  # (its key is in fog-attest already)
        except ObjectNotFoundError:
            pass
        vault = await self._attest_get("vault")
        if vault is None:
            raise FogError("deploy --encrypt: no controller has published its vault key yet "
                           "(start one: `fog controller` or `fog up`)")
        key = new_key()
        # The key first: an object in the store always has its key (a re-upload writes both).
        await self.kv[ATTEST].put(f"modkey.{digest}",
                                  seal_secret(vault, module_key_name(digest), key))
        await obs.put(f"{digest}.sealed", encrypt_module(wasm, key))
        return True

    async def deploy(self, manifest, *, encrypt: bool = False) -> dict:
        """Upload the module and write the desired state; returns the app record. With
        ``encrypt`` the module is stored encrypted and only attested nodes get its key."""
        spec = manifest.spec
        if encrypt:
            if spec.snapshots is not None:
                raise FogError(f"{manifest.where}: deploy --encrypt: not for an app with "
                               "snapshots: (its pages would be stored unsealed)")
            spec = msgspec.structs.replace(spec, encrypted=True)
        await self.check_secrets([r.name for r in spec.secrets], manifest.where)
        upload = self.upload_sealed if encrypt else self.upload
        await upload(spec.digest, manifest.wasm)
        try:
            old = decode((await self.kv[APPS].get(spec.name)).value, AppRecord)
        except (KeyNotFoundError, BadMessage):
            old = None
        if old is not None and old.spec == spec:
            return {**msgspec.to_builtins(old), "unchanged": True}
        record = AppRecord(spec, (old.generation + 1) if old else 1, time.time())
        await self.kv[APPS].put(spec.name, encode(record))
        # The leader collects modules no app uses: one may have gone between the check above
        # and the write; now that the app names it, it stays (uploaded again if it went).
        await upload(spec.digest, manifest.wasm)
        return msgspec.to_builtins(record)

    async def wait(self, name: str, generation: int, replicas: int, timeout: float,
                   states: tuple[str, ...] = DONE) -> list[dict]:
        """Wait until every replica of ``generation`` is in one of ``states``."""
        deadline = time.monotonic() + timeout
        current: dict[str, dict] = {}
        async with watching(self.kv[PLACEMENTS], f"{name}.*") as watcher:
            while True:
                ready = [current.get(f"{name}.{r}") for r in range(replicas)]
                if all(p is not None and p.get("generation") == generation
                       and p.get("state") in states for p in ready):
                    return ready  # type: ignore[return-value]
                left = deadline - time.monotonic()
                if left <= 0:
                    states_now = ", ".join(f"{p.get('state')}" if p else "unplaced" for p in ready)
                    raise FogError(f"app {name!r} is not running after {timeout:g} s "
                                   f"({states_now}): is a controller running? (`fog nodes`)")
                try:
                    entry = await next_entry(watcher, min(left, 1.0))
                except TimeoutError:
                    continue
                if entry is None:
                    continue
                if entry.operation in ("DEL", "PURGE"):
                    current.pop(entry.key, None)
                else:
                    try:
                        current[entry.key] = decode(entry.value, dict)
                    except BadMessage:
                        current.pop(entry.key, None)

    async def stop(self, name: str) -> None:
        await self.app(name)
        await self.kv[APPS].delete(name)
