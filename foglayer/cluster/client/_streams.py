"""Streams: an app's output (``fog logs``), the controller's events, live heartbeats.

A log line is shown only if the node that published it (the subject's node, which the server
authenticates) is the node its instance was placed on (``fog-instances``): a node cannot write
into another node's app's logs. Each chunk names its node.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import msgspec
import nats.errors
from nats.js.api import DeliverPolicy
from nats.js.errors import KeyNotFoundError, NotFoundError

from foglayer.cluster._bus import drop_consumer
from foglayer.cluster._protocol import (
    ALL_HB,
    EVENTS_STREAM,
    H_INSTANCE,
    INSTANCES,
    LOGS_STREAM,
    STREAMS,
    BadMessage,
    Heartbeat,
    InstanceRecord,
    app_logs_filter,
    decode,
    decode_node,
)


class Streams:
    async def _instance(self, iid: str, cache: dict) -> InstanceRecord | None:
        if iid not in cache:
            try:
                cache[iid] = decode((await self.kv[INSTANCES].get(iid)).value, InstanceRecord)
            except (KeyNotFoundError, BadMessage, ValueError):
                cache[iid] = None  # (ValueError: not a valid key)
        return cache[iid]

    async def logs(self, app: str, sink: Callable[[dict], None], follow: bool = False,
                   stop: asyncio.Event | None = None) -> int:
        """Send each output chunk of ``app`` to ``sink``; with ``follow``, until ``stop``.

        Chunks that no placement of ``app`` on that node wrote are dropped and counted in
        :attr:`dropped_logs`."""
        from foglayer.cluster.client._client import UnknownApp, check_app

        check_app(app)
        self.dropped_logs = 0
        known = True
        try:
            await self.app(app)
        except UnknownApp:
            known = False
        subject = app_logs_filter(app)
        try:
            info = await self.js.stream_info(LOGS_STREAM, subjects_filter=subject)
            have = bool(info.state.subjects)
        except (NotFoundError, TypeError):
            have = True
        if not known and not have:
            raise UnknownApp(app)
        if not have and not follow:
            return 0
        sub = await self.js.subscribe(subject, ordered_consumer=True,
                                      deliver_policy=DeliverPolicy.ALL, stream=LOGS_STREAM)
        cache: dict[str, InstanceRecord | None] = {}
        n = 0
        try:
            while True:
                if stop is not None and stop.is_set():
                    break
                try:
                    msg = await sub.next_msg(timeout=0.5)
                except nats.errors.TimeoutError:
                    if follow:
                        continue
                    break
                parts = msg.subject.split(".")
                iid = (msg.headers or {}).get(H_INSTANCE) or ""
                rec = await self._instance(iid, cache) if iid else None
                if (len(parts) != 7 or rec is None or rec.node != parts[2] or rec.app != app
                        or str(rec.replica) != parts[5] or parts[6] not in STREAMS):
                    self.dropped_logs += 1
                else:
                    sink({"node": parts[2], "app": app, "replica": rec.replica,
                          "stream": parts[6], "data": msg.data, "instance": iid})
                    n += 1
                if not follow and msg.metadata.num_pending == 0:
                    break
        finally:
            await drop_consumer(sub)
        return n

    async def heartbeats(self, seconds: float = 1.0) -> dict[str, dict]:
        """The latest valid heartbeat of every node heard within ``seconds``."""
        latest: dict[str, dict] = {}

        async def cb(msg) -> None:
            try:
                hb = decode_node(msg.subject, msg.data, Heartbeat)
            except BadMessage:
                return
            latest[hb.name] = msgspec.to_builtins(hb)

        sub = await self.nc.subscribe(ALL_HB, cb=cb)
        await asyncio.sleep(seconds)
        await sub.unsubscribe()
        return latest

    async def events(self, last: int = 20) -> list[dict]:
        """The last ``last`` controller events."""
        try:
            info = await self.js.stream_info(EVENTS_STREAM)
        except NotFoundError:
            return []
        end = info.state.last_seq
        if not info.state.messages:
            return []
        start = max(info.state.first_seq, end - last + 1)
        out = []
        for seq in range(start, end + 1):
            try:
                msg = await self.js.get_msg(EVENTS_STREAM, seq)
                out.append(decode(msg.data, dict))
            except (NotFoundError, BadMessage):
                continue
        return out
