"""The client side of the cluster (what ``fog deploy``, ``ps``, ``invoke``... do), async.

A :class:`Client` talks to the bus with the ``admin`` credentials. It is assembled from one
part per command group: reading the state (here), :class:`Apps` (upload, deploy, wait, stop),
:class:`Services` (invoke), :class:`Streams` (logs, events, heartbeats), :class:`Nodes`
(trust). Every name a user gives (app, function) is checked before it goes into a subject.
"""

from __future__ import annotations

import os
from pathlib import Path

from nats.js.errors import KeyNotFoundError

from foglayer.cluster._bus import BusError, Creds, check_name, connect, ensure_state, kv_snapshot
from foglayer.cluster._protocol import (
    APPS,
    CORDON,
    DECISIONS,
    JS_DOMAIN,
    NODES,
    PLACEMENTS,
    TRUST,
    BadMessage,
    NodeRecord,
    decode,
)
from foglayer.cluster._spec import AppRecord
from foglayer.cluster.client._apps import Apps
from foglayer.cluster.client._moves import Moves
from foglayer.cluster.client._nodes import Nodes
from foglayer.cluster.client._services import Services
from foglayer.cluster.client._streams import Streams
from foglayer.cluster.client._trust import Trust
from foglayer.cluster.client._usage import UsageQueries
from foglayer.errors import FogError


class UnknownApp(FogError):
    def __init__(self, app: str) -> None:
        super().__init__(f"no app named {app!r} (`fog ps` lists the apps)")


def check_app(name: str) -> str:
    """A user-given app name, safe to put in a subject or a key (else a one-line error)."""
    return check_name(name, "app name")


def default_creds_path() -> Path:
    from foglayer._dirs import data_dir

    return data_dir() / "continuum" / "nats" / "creds" / "admin.creds"


def resolve(server: str | None = None, creds: str | os.PathLike | Creds | None = None) -> Creds:
    """``--creds`` > ``$FOG_CREDS`` > the credentials ``fog up`` wrote; ``--server`` > ``$FOG_SERVER``."""
    if isinstance(creds, Creds):
        c = creds
    else:
        path = creds or os.environ.get("FOG_CREDS")
        if path:
            c = Creds.load(path)
        elif default_creds_path().exists():
            c = Creds.load(default_creds_path())
        else:
            c = Creds()
    url = server or os.environ.get("FOG_SERVER")
    if url:
        c = Creds(**{**c.__dict__, "server": url})
    if not c.server:
        raise BusError("no cluster to talk to", remedy="server")
    return c


class Client(Apps, Services, Streams, Nodes, Moves, Trust, UsageQueries):
    """One connection to the cluster, as ``admin``."""

    def __init__(self, nc, kv: dict) -> None:
        self.nc, self.kv = nc, kv
        self.js = nc.jetstream(domain=JS_DOMAIN)
        self._routes: dict[str, list[str]] = {}
        self.skipped: dict[str, str] = {}  # "<bucket>/<key>" -> why a stored record was skipped

    @classmethod
    async def open(cls, creds: Creds, name: str = "fog-cli", *, reconnect: bool = False) -> Client:
        """``reconnect``: a long-lived client fails over between servers and rides out a
        restart; a one-shot command does not wait for a server that is gone."""
        nc = await connect(creds=creds, name=name, reconnect=reconnect)
        try:
            kv = await ensure_state(nc.jetstream(domain=JS_DOMAIN))
        except Exception:
            await nc.close()
            raise
        return cls(nc, kv)

    async def close(self) -> None:
        await self.nc.drain()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- reading ----------------------------------------------------------------------------

    async def _all(self, bucket: str, typ: type | None = None) -> dict[str, dict]:
        """Every record of ``bucket`` (as builtins), each checked against ``typ``: a record
        that does not fit is skipped and noted in :attr:`skipped`, never a crash."""
        import msgspec

        out = {}
        for k, v in (await kv_snapshot(self.kv[bucket])).items():
            try:
                if typ is not None:
                    out[k] = msgspec.to_builtins(decode(v, typ))
                else:
                    rec = decode(v, dict)
                    out[k] = rec
            except BadMessage as e:
                self.skipped[f"{bucket}/{k}"] = str(e)
        return out

    async def apps(self) -> dict[str, dict]:
        return await self._all(APPS, AppRecord)

    async def placements(self) -> dict[str, dict]:
        return await self._all(PLACEMENTS)

    async def nodes(self, controller_key: bytes | None = None) -> dict[str, dict]:
        """The registry; each node's ``caps`` are its own claims, ``trusted`` the operator's
        note, ``cordoned`` whether it takes new work; with the controller's public key, its
        latest attestation result too (``attestation``: status, backend, fresh), checked."""
        nodes = await self._all(NODES, NodeRecord)
        trusted = set(await self._all(TRUST))
        cordoned = set(await kv_snapshot(self.kv[CORDON]))
        for name, rec in nodes.items():
            rec["trusted"] = name in trusted
            rec["cordoned"] = name in cordoned
        if controller_key is not None:
            for name, res in await self.attestations_of(sorted(nodes), controller_key):
                nodes[name]["attestation"] = None if res is None else {
                    "status": res.status, "backend": res.backend, "fresh": res.fresh()}
        return nodes

    async def app(self, name: str) -> dict:
        check_app(name)
        try:
            value = (await self.kv[APPS].get(name)).value
        except KeyNotFoundError:
            raise UnknownApp(name) from None
        try:
            import msgspec

            return msgspec.to_builtins(decode(value, AppRecord))
        except BadMessage as e:
            raise FogError(f"app {name!r}: its stored record is unreadable ({e}): deploy it "
                           "again") from None

    async def app_placements(self, name: str, replicas: int) -> list[dict | None]:
        check_app(name)
        out: list[dict | None] = []
        for r in range(replicas):
            try:
                rec = decode((await self.kv[PLACEMENTS].get(f"{name}.{r}")).value, dict)
            except (KeyNotFoundError, BadMessage):
                rec = None
            out.append(rec)
        return out

    async def decision(self, name: str) -> dict:
        check_app(name)
        try:
            return decode((await self.kv[DECISIONS].get(name)).value, dict)
        except (KeyNotFoundError, BadMessage):
            await self.app(name)  # unknown app -> UnknownApp
            raise FogError(f"app {name!r} has no scheduling decision yet (is a controller "
                           "running?)") from None

