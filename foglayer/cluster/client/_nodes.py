"""Nodes: the operator's trust (``fog node trust NAME``), kept in ``fog-trust``; drains
(``fog drain NAME`` / ``fog uncordon NAME``, kubectl's words), kept in ``fog-cordon``.

A node's capabilities are its own claims. Until attestation can prove them, apps with secrets
or a TEE requirement go only to nodes the operator has marked trusted here.
"""

from __future__ import annotations

import asyncio
import getpass
import time
from collections.abc import Callable

from nats.js.errors import KeyNotFoundError

from foglayer.cluster._bus import check_name
from foglayer.cluster._protocol import CORDON, PLACEMENTS, TRUST, BadMessage, decode, encode
from foglayer.errors import FogError

ACTIVE = ("scheduled", "starting", "running")


class Nodes:
    async def _mark(self, bucket: str, node: str, on: bool) -> None:
        check_name(node)
        if on:
            await self.kv[bucket].put(node, encode({"by": getpass.getuser(), "time": time.time()}))
        else:
            try:
                await self.kv[bucket].delete(node)
            except KeyNotFoundError:
                pass

    async def _placed_on(self, key: str, node: str) -> bool:
        try:
            p = decode((await self.kv[PLACEMENTS].get(key)).value, dict)
        except (KeyNotFoundError, BadMessage):
            return False
        return p.get("node") == node and p.get("state") in ACTIVE

    async def _known(self, bucket: str, node: str, on: bool) -> None:
        """Refuse a node that does not exist; one that left may still carry a mark to lift."""
        check_name(node)
        if node in await self.nodes():
            return
        if not on:
            try:
                await self.kv[bucket].get(node)
                return
            except KeyNotFoundError:
                pass
        raise FogError(f"no node named {node!r} (`fog nodes` lists the nodes)")

    async def trust(self, node: str, trusted: bool = True) -> None:
        """Mark ``node`` trusted (or withdraw it): only the operator's credentials may."""
        await self._known(TRUST, node, trusted)
        await self._mark(TRUST, node, trusted)

    async def cordon(self, node: str, on: bool = True) -> None:
        """Mark ``node`` unschedulable (or lift it: ``fog uncordon``)."""
        await self._known(CORDON, node, on)
        await self._mark(CORDON, node, on)

    async def drain(self, node: str, on_left: Callable[[list[str]], None] | None = None,
                    timeout: float = 600.0,
                    on_blocked: Callable[[str], None] | None = None) -> None:
        """``fog drain``: cordon ``node``; the controller moves its apps off, live if they
        move live, else by a restart elsewhere. Returns once nothing runs there (``on_left``
        sees what is left, each time it changes; ``on_blocked`` each reason the controller
        gives why an app cannot leave)."""
        await self.cordon(node)
        deadline, last = time.monotonic() + timeout, None
        said: set[str] = set()
        next_look = time.monotonic() + 1.0
        while True:
            here = {k for k, p in (await self.placements()).items()
                    if p.get("node") == node and p.get("state") in ACTIVE}
            # A key gone from one snapshot of the bucket is no proof that it left: read
            # it alone before the drain is said to be done.
            left = sorted(here | {k for k in (last or ()) if k not in here
                                  and await self._placed_on(k, node)})
            if left != last and on_left is not None:
                on_left(left)
            last = left
            if not left:
                return
            late = time.monotonic() > deadline
            if on_blocked is not None and (late or time.monotonic() > next_look):
                next_look = time.monotonic() + 2.0  # (and once more before giving up)
                for e in await self.events(50):
                    msg = str(e.get("message", ""))
                    if (e.get("kind") == "drain-blocked" and e.get("node") == node
                            and e.get("key") in left and msg not in said):
                        said.add(msg)
                        on_blocked(msg)
            if late:
                raise FogError(f"drain of {node}: still there after {timeout:g} s: "
                               f"{', '.join(left)} (see fog events)")
            await asyncio.sleep(0.25)
