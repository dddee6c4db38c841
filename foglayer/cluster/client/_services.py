"""Services: ``fog invoke APP FUNCTION``, on a node that runs the app."""

from __future__ import annotations

import time

import nats.errors

from foglayer.cluster._protocol import (
    FUNCTION_RE,
    H_BACKTRACE,
    H_ERROR,
    H_ERROR_KIND,
    ErrorKind,
    invoke_subject,
)
from foglayer.errors import FogError
from foglayer.runtime import LimitExceeded, Trapped


def check_function(name: str) -> str:
    if not isinstance(name, str) or not FUNCTION_RE.fullmatch(name):
        raise FogError(f"invalid function name {name!r}: expected a C identifier "
                       "(letters, digits, '_')")
    return name


class Services:
    async def _route(self, app: str, refresh: bool = False) -> list[str]:
        nodes = self._routes.get(app)
        if nodes is None or refresh:
            record = await self.app(app)
            if record["spec"]["kind"] != "service":
                raise FogError(f"app {app!r} is a command, not a service: nothing to invoke")
            ps = await self.app_placements(app, record["spec"]["replicas"])
            nodes = [p["node"] for p in ps if p and p.get("state") == "running" and p.get("node")]
            if not nodes:
                states = ", ".join(p.get("state", "?") if p else "unplaced" for p in ps) or "no replicas"
                raise FogError(f"app {app!r} has no running instance ({states})")
            self._routes[app] = nodes
        return nodes

    async def invoke(self, app: str, function: str, payload: bytes = b"",
                     timeout: float = 30.0) -> bytes:
        """Call ``function`` of service ``app`` on a node that runs it; the result bytes."""
        from foglayer.cluster._abi import ServiceError
        from foglayer.cluster.client._client import check_app

        check_app(app)
        check_function(function)
        limit = self.nc.max_payload
        if len(payload) > limit - 4096:  # (the headers and the subject count too)
            raise FogError(f"{app}.{function}: the payload is {len(payload)} bytes; the bus "
                           f"carries at most {limit - 4096}")
        for attempt in range(2):
            nodes = await self._route(app, refresh=attempt > 0)
            node = nodes[int(time.monotonic_ns() // 1000) % len(nodes)]
            try:
                msg = await self.nc.request(invoke_subject(node, app, function), payload,
                                            timeout=timeout)
            except nats.errors.NoRespondersError:
                continue  # the node went away: look again
            except nats.errors.TimeoutError:
                raise FogError(f"{app}.{function}: no answer from node {node} within "
                               f"{timeout:g} s") from None
            except nats.errors.MaxPayloadError:
                raise FogError(f"{app}.{function}: the payload is {len(payload)} bytes, over "
                               f"the bus's limit") from None
            err = (msg.headers or {}).get(H_ERROR)
            if err is None:
                return msg.data
            kind = msg.headers.get(H_ERROR_KIND, ErrorKind.USAGE)
            if kind == ErrorKind.UNAVAILABLE:
                continue
            trace = [f for f in (msg.headers.get(H_BACKTRACE) or "").split(" | ") if f]
            if kind == ErrorKind.APP:
                raise ServiceError(f"{app}.{function}: {err}")
            if kind == ErrorKind.LIMIT:
                raise LimitExceeded("limit", f"{app}.{function}: {err}", trace)
            if kind == ErrorKind.TRAP:
                raise Trapped(f"{app}.{function}: {err}", trace)
            raise FogError(f"{app}.{function}: {err}")
        raise FogError(f"app {app!r}: no node answered (it may be moving; try again)")
