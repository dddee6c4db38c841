"""Leader election through a lease in JetStream KV (bucket ``fog-leader``, key ``controller``).

The leader renews the key every ``ttl / 3`` with a compare-and-set on its last revision. A
standby polls the key; when the revision has not moved for ``ttl`` seconds *by its own
monotonic clock* (no clock sync across machines is assumed), it takes the key with a
compare-and-set on that revision. Only one contender can win a compare-and-set, so there is
never more than one leader; a leader whose renewal fails steps down at once.
"""

from __future__ import annotations

import asyncio
import json
import time

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

from foglayer.cluster._protocol import LEADER

KEY = "controller"
FENCE = 0.8  # a leader that could not renew for this much of a ttl stops leading


class Lease:
    def __init__(self, kv, holder: str, ttl: float = 5.0) -> None:
        self.kv, self.holder, self.ttl = kv, holder, ttl
        self.leader = False
        self.revision: int | None = None
        self.current: str | None = None  # who holds it, as last seen
        self._seen_rev: int | None = None
        self._seen_at = time.monotonic()
        self._renewed_at = 0.0

    @property
    def bucket(self) -> str:
        return LEADER

    def _value(self) -> bytes:
        return json.dumps({"holder": self.holder, "ttl": self.ttl, "time": time.time()}).encode()

    async def step(self) -> bool:
        """One round of the protocol; returns whether this process leads now."""
        now = time.monotonic()
        if self.leader:
            if now - self._renewed_at < self.ttl / 3:
                return True
            left = FENCE * self.ttl - (now - self._renewed_at)
            try:
                self.revision = await asyncio.wait_for(
                    self.kv.update(KEY, self._value(), last=self.revision), max(0.05, left))
                self._renewed_at = now
            except KeyWrongLastSequenceError:
                self.leader = False  # someone else took it: step down now
            except Exception:  # noqa: BLE001 - KV out of reach (a partition, a lost quorum)
                # The fence: a standby takes over a whole ttl after it last saw the revision
                # move, by its own clock. Stop acting before that can happen, however long the
                # renewal hangs, so that two leaders never act at once.
                if now - self._renewed_at >= FENCE * self.ttl:
                    self.leader = False
            return self.leader
        try:
            entry = await self.kv.get(KEY)
        except KeyNotFoundError:
            entry = None
        if entry is None or not entry.value:
            # Free (never taken, or released): create, or take over a release marker.
            try:
                if entry is None:
                    self.revision = await self.kv.create(KEY, self._value())
                else:
                    self.revision = await self.kv.update(KEY, self._value(), last=entry.revision)
            except Exception:  # noqa: BLE001 - another contender won the race
                return False
            return self._won(now)
        try:
            value = json.loads(entry.value)
        except ValueError:
            value = None
        holder = value.get("holder") if isinstance(value, dict) else None
        self.current = holder if isinstance(holder, str) else None
        if entry.revision != self._seen_rev:
            self._seen_rev, self._seen_at = entry.revision, now
            return False
        if now - self._seen_at < self.ttl:
            return False
        try:  # the holder has not renewed for a whole ttl: take over
            self.revision = await self.kv.update(KEY, self._value(), last=entry.revision)
        except KeyWrongLastSequenceError:
            return False
        return self._won(now)

    def _won(self, now: float) -> bool:
        self.leader, self._renewed_at, self.current = True, now, self.holder
        return True

    async def release(self) -> None:
        """Give the lease up (a clean shutdown): a standby takes over at its next poll."""
        if not self.leader:
            return
        self.leader = False
        try:
            await self.kv.update(KEY, b"", last=self.revision)
        except Exception:  # noqa: BLE001 - it expires anyway
            pass
