"""The controller's voice: its log (stderr) and its events (stream ``FOG_EVENTS``)."""

from __future__ import annotations

import sys
import time

from foglayer.cluster._protocol import EVENTS, encode


class Events:
    def log(self, text: str) -> None:
        if self.cfg.log:
            print(f"{time.strftime('%H:%M:%S')} {self.id}: {text}", file=sys.stderr, flush=True)

    async def event(self, kind: str, message: str, **fields) -> None:
        self.log(message)
        self.metrics.on_event(kind, fields)
        body = {"time": time.time(), "kind": kind, "message": message, "controller": self.id,
                **fields}
        try:
            await self.nc.publish(f"{EVENTS}.{kind}", encode(body))
        except Exception:  # noqa: BLE001 - events are best effort
            pass
