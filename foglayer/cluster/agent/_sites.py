"""Measured latency: a node answers its own site's echo and times the echo of every site.

The scheduler's ``latency`` scorer uses what nodes measure, not what they were told: every
``probe_every`` seconds the agent sends one request to each site's echo subject
(``fog.site.<site>.echo``, answered by a queue group at that site) and keeps the round trip
in milliseconds; the heartbeat carries them (``Heartbeat.rtt``). A site that does not answer
within a second is left out of that beat (the declared latency, if any, stands in).
"""

from __future__ import annotations

import asyncio
import time

from foglayer.cluster._protocol import site_echo

PROBE_TIMEOUT = 1.0


class SiteProbe:
    def behind_leaf(self) -> bool:
        """Whether this node's server is a leaf-node server: one without JetStream (every
        hub server has it; the controller needs it), so a link to the hub lies between."""
        info = getattr(self.nc, "_server_info", None) or {}  # nats-py keeps the server's INFO
        return bool(info) and not info.get("jetstream")

    async def _answer_site_echo(self) -> None:
        site = self.cfg.labels.get("site")
        if site:
            async def echo(msg) -> None:
                if msg.reply:
                    await self.nc.publish(msg.reply, b"")
            await self.nc.subscribe(site_echo(site), queue="echo", cb=echo)

    async def _probe_sites(self) -> None:
        while True:
            for site in self.cfg.probe_sites:
                t = time.perf_counter()
                try:
                    await self.nc.request(site_echo(site), b"", timeout=PROBE_TIMEOUT)
                except Exception:  # noqa: BLE001 - unreachable now: left out of this beat
                    self.rtt.pop(site, None)
                    continue
                self.rtt[site] = round((time.perf_counter() - t) * 1000, 3)
            await asyncio.sleep(self.cfg.probe_every)
