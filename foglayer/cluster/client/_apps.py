"""Apps: upload a module, write the desired state, wait for it, stop it."""

from __future__ import annotations

import time

import msgspec
import nats.errors
from nats.js.errors import KeyNotFoundError, ObjectNotFoundError

from foglayer.cluster._protocol import APPS, MODULES, PLACEMENTS, BadMessage, decode, encode
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

    async def deploy(self, manifest) -> dict:
        """Upload the module and write the desired state; returns the app record."""
        spec = manifest.spec
        await self.upload(spec.digest, manifest.wasm)
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
        await self.upload(spec.digest, manifest.wasm)
        return msgspec.to_builtins(record)

    async def wait(self, name: str, generation: int, replicas: int, timeout: float,
                   states: tuple[str, ...] = DONE) -> list[dict]:
        """Wait until every replica of ``generation`` is in one of ``states``."""
        deadline = time.monotonic() + timeout
        watcher = await self.kv[PLACEMENTS].watch(f"{name}.*")
        current: dict[str, dict] = {}
        try:
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
                    entry = await watcher.updates(timeout=min(left, 1.0))
                except nats.errors.TimeoutError:
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
        finally:
            await watcher.stop()

    async def stop(self, name: str) -> None:
        await self.app(name)
        await self.kv[APPS].delete(name)
