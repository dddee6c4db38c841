"""The client side of the cluster (what ``fog deploy``, ``ps``, ``invoke``... do), async.

A :class:`Client` talks to the bus with the ``admin`` credentials: it uploads modules to the
Object Store under their SHA-256, writes the desired state (``fog-apps``), reads placements,
nodes and decisions, calls services, and reads logs and events from their streams.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import nats.errors
from nats.js.api import DeliverPolicy
from nats.js.errors import KeyNotFoundError, NotFoundError, ObjectNotFoundError

from foglayer.cluster._abi import ServiceError, check_function
from foglayer.cluster._bus import (
    APPS,
    DECISIONS,
    EVENTS_STREAM,
    LOGS_STREAM,
    MODULES,
    NODES,
    PLACEMENTS,
    BusError,
    Creds,
    connect,
    ensure_state,
    node_cmd,
)
from foglayer.cluster._manifest import Manifest
from foglayer.errors import FogError
from foglayer.runtime import LimitExceeded, Trapped

DONE = ("running", "exited", "failed", "pending")


class UnknownApp(FogError):
    def __init__(self, app: str) -> None:
        super().__init__(f"no app named {app!r} (`fog ps` lists the apps)")


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
        raise BusError("no cluster to talk to: run `fog up`, or pass --server URL and --creds FILE")
    return c


class Client:
    """One connection to the cluster, as ``admin``."""

    def __init__(self, nc, kv: dict) -> None:
        self.nc, self.kv = nc, kv
        self.js = nc.jetstream()
        self._routes: dict[str, list[str]] = {}

    @classmethod
    async def open(cls, creds: Creds, name: str = "fog-cli") -> Client:
        nc = await connect(creds=creds, name=name, reconnect=False)
        try:
            kv = await ensure_state(nc.jetstream())
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

    async def _all(self, bucket: str) -> dict[str, dict]:
        from foglayer.cluster._controller import kv_snapshot

        return {k: json.loads(v) for k, v in (await kv_snapshot(self.kv[bucket])).items()}

    async def apps(self) -> dict[str, dict]:
        return await self._all(APPS)

    async def placements(self) -> dict[str, dict]:
        return await self._all(PLACEMENTS)

    async def nodes(self) -> dict[str, dict]:
        return await self._all(NODES)

    async def app(self, name: str) -> dict:
        try:
            return json.loads((await self.kv[APPS].get(name)).value)
        except KeyNotFoundError:
            raise UnknownApp(name) from None

    async def app_placements(self, name: str, replicas: int) -> list[dict | None]:
        out = []
        for r in range(replicas):
            try:
                out.append(json.loads((await self.kv[PLACEMENTS].get(f"{name}.{r}")).value))
            except KeyNotFoundError:
                out.append(None)
        return out

    async def decision(self, name: str) -> dict:
        try:
            return json.loads((await self.kv[DECISIONS].get(name)).value)
        except KeyNotFoundError:
            await self.app(name)  # unknown app -> UnknownApp
            raise FogError(f"app {name!r} has no scheduling decision yet (is a controller "
                           "running?)") from None

    # -- writing ----------------------------------------------------------------------------

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

    async def deploy(self, manifest: Manifest) -> dict:
        """Upload the module and write the desired state; returns the app record."""
        spec = manifest.spec
        await self.upload(spec["digest"], manifest.wasm)
        try:
            entry = await self.kv[APPS].get(spec["name"])
            old = json.loads(entry.value)
        except KeyNotFoundError:
            old = None
        if old is not None and old["spec"] == spec:
            return {**old, "unchanged": True}
        record = {"spec": spec, "generation": (old["generation"] + 1) if old else 1,
                  "deployed_at": time.time()}
        await self.kv[APPS].put(spec["name"], json.dumps(record).encode())
        return record

    async def wait(self, name: str, generation: int, replicas: int, timeout: float,
                   states: tuple[str, ...] = DONE) -> list[dict]:
        """Wait until every replica of ``generation`` is in one of ``states``."""
        deadline = time.monotonic() + timeout
        watcher = await self.kv[PLACEMENTS].watch(f"{name}.*")
        current: dict[str, dict] = {}
        try:
            while True:
                ready = [current.get(f"{name}.{r}") for r in range(replicas)]
                if all(p is not None and p["generation"] == generation and p["state"] in states
                       for p in ready):
                    return ready  # type: ignore[return-value]
                left = deadline - time.monotonic()
                if left <= 0:
                    states_now = ", ".join(f"{p['state']}" if p else "unplaced" for p in ready)
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
                    current[entry.key] = json.loads(entry.value)
        finally:
            await watcher.stop()

    async def stop(self, name: str) -> None:
        await self.app(name)
        await self.kv[APPS].delete(name)

    # -- services ---------------------------------------------------------------------------

    async def _route(self, app: str, refresh: bool = False) -> list[str]:
        nodes = self._routes.get(app)
        if nodes is None or refresh:
            record = await self.app(app)
            if record["spec"]["kind"] != "service":
                raise FogError(f"app {app!r} is a command, not a service: nothing to invoke")
            ps = await self.app_placements(app, record["spec"]["replicas"])
            nodes = [p["node"] for p in ps if p and p["state"] == "running" and p.get("node")]
            if not nodes:
                states = ", ".join(p["state"] if p else "unplaced" for p in ps) or "no replicas"
                raise FogError(f"app {app!r} has no running instance ({states})")
            self._routes[app] = nodes
        return nodes

    async def invoke(self, app: str, function: str, payload: bytes = b"",
                     timeout: float = 30.0) -> bytes:
        """Call ``function`` of service ``app`` on a node that runs it; the result bytes."""
        check_function(function)
        for attempt in range(2):
            nodes = await self._route(app, refresh=attempt > 0)
            node = nodes[int(time.monotonic_ns() // 1000) % len(nodes)]
            try:
                msg = await self.nc.request(f"{node_cmd(node)}.invoke.{app}.{function}", payload,
                                            timeout=timeout)
            except nats.errors.NoRespondersError:
                continue  # the node went away: look again
            except nats.errors.TimeoutError:
                raise FogError(f"{app}.{function}: no answer from node {node} within "
                               f"{timeout:g} s") from None
            err = (msg.headers or {}).get("Fog-Error")
            if err is None:
                return msg.data
            kind = msg.headers.get("Fog-Error-Kind", "usage")
            if kind == "unavailable":
                continue
            trace = [f for f in (msg.headers.get("Fog-Backtrace") or "").split(" | ") if f]
            if kind == "app":
                raise ServiceError(f"{app}.{function}: {err}")
            if kind == "limit":
                raise LimitExceeded("limit", f"{app}.{function}: {err}", trace)
            if kind == "trap":
                raise Trapped(f"{app}.{function}: {err}", trace)
            raise FogError(f"{app}.{function}: {err}")
        raise FogError(f"app {app!r}: no node answered (it may be moving; try again)")

    # -- streams ----------------------------------------------------------------------------

    async def logs(self, app: str, sink: Callable[[dict], None], follow: bool = False,
                   stop: asyncio.Event | None = None) -> int:
        """Send each output chunk of ``app`` to ``sink``; with ``follow``, until ``stop``."""
        known = True
        try:
            await self.app(app)
        except UnknownApp:
            known = False
        subject = f"fog.node.*.logs.{app}.>"
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
                sink({"node": parts[2], "app": parts[4], "replica": int(parts[5]),
                      "stream": parts[6], "data": msg.data,
                      "instance": (msg.headers or {}).get("Fog-Instance")})
                n += 1
                if not follow and msg.metadata.num_pending == 0:
                    break
        finally:
            await sub.unsubscribe()
        return n

    async def heartbeats(self, seconds: float = 1.0) -> dict[str, dict]:
        """The latest heartbeat of every node heard within ``seconds``."""
        latest: dict[str, dict] = {}

        async def cb(msg) -> None:
            try:
                latest[msg.subject.split(".")[2]] = json.loads(msg.data)
            except ValueError:
                pass

        sub = await self.nc.subscribe("fog.node.*.hb", cb=cb)
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
                out.append(json.loads(msg.data))
            except (NotFoundError, ValueError):
                continue
        return out
