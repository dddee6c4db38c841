"""Nodes: the operator's trust (``fog node trust NAME``), kept in ``fog-trust``.

A node's capabilities are its own claims. Until attestation can prove them, apps with secrets
or a TEE requirement go only to nodes the operator has marked trusted here.
"""

from __future__ import annotations

import getpass
import time

from nats.js.errors import KeyNotFoundError

from foglayer.cluster._bus import check_name
from foglayer.cluster._protocol import TRUST, encode


class Nodes:
    async def trust(self, node: str, trusted: bool = True) -> None:
        """Mark ``node`` trusted (or withdraw it): only the operator's credentials may."""
        check_name(node)
        if trusted:
            await self.kv[TRUST].put(node, encode({"by": getpass.getuser(), "time": time.time()}))
        else:
            try:
                await self.kv[TRUST].delete(node)
            except KeyNotFoundError:
                pass
