"""The bus: credentials files, one NATS connection, and the JetStream state.

Everything the cluster says goes over NATS (``nats-py``) with JetStream; the subjects and the
messages are in :mod:`._protocol`. The state: KV buckets ``fog-apps`` (desired state),
``fog-placements``, ``fog-nodes`` (registry), ``fog-decisions`` (the scheduler's last table per
app), ``fog-leader`` (the lease), ``fog-trust`` (nodes the operator trusts), ``fog-instances``
(which node an instance was placed on); Object Store ``fog-modules`` (modules by SHA-256);
streams ``FOG_LOGS`` (app output) and ``FOG_EVENTS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import nats
import nats.errors
from nats.aio.client import Client

from foglayer.cluster._protocol import (
    ALL_LOGS,
    ALL_USAGE,
    APPS,
    ATTEST,
    CORDON,
    DECISIONS,
    EVENTS,
    EVENTS_STREAM,
    INSTANCES,
    LEADER,
    LOGS_STREAM,
    MODULES,
    NAME_RE,
    NODES,
    PLACEMENTS,
    SNAP_PAGES,
    SNAPSHOTS,
    TRUST,
    USAGE_STREAM,
)
from foglayer.errors import FogError

INSTANCES_TTL = 7 * 86400  # how long the log attribution of a gone instance is kept


class BusError(FogError):
    """The bus cannot be reached, refused us, or a request failed."""


def check_name(name: str, what: str = "node name") -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise FogError(f"invalid {what} {name!r}: use 1-63 of a-z, 0-9, '-' and '_', "
                       f"starting with a letter or digit")
    return name


# -- credentials ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Creds:
    """What a client needs to connect: a server URL and either a user/password pair
    (our ``.creds`` files, JSON) or a NATS JWT credentials file; plus TLS material."""

    server: str | None = None
    user: str | None = None
    password: str | None = None
    jwt_file: str | None = None
    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    # The controller's public key (base64 DER): nodes check attestation results and secret
    # releases against it, so a node knows it reached the right controller.
    controller_key: str | None = None

    def to_json(self) -> str:
        d = {k: v for k, v in self.__dict__.items() if v is not None}
        return json.dumps(d, indent=2) + "\n"

    @classmethod
    def load(cls, path: str | os.PathLike) -> Creds:
        """Read a ``.creds`` file: ours (JSON) or a NATS one (``BEGIN NATS USER JWT``)."""
        p = Path(path)
        try:
            text = p.read_text()
        except FileNotFoundError:
            raise FogError(f"{p}: no such credentials file") from None
        except OSError as e:
            raise FogError(f"{p}: cannot read credentials: {e.strerror}") from None
        if "BEGIN NATS USER JWT" in text:
            return cls(jwt_file=str(p))
        try:
            d = json.loads(text)
            if not isinstance(d, dict):
                raise ValueError("not an object")
        except ValueError:
            raise FogError(f"{p}: not a credentials file (expected JSON with user and password, "
                           "or a NATS .creds file)") from None
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise FogError(f"{p}: unknown credentials field {sorted(unknown)[0]!r}")
        return cls(**{k: str(v) for k, v in d.items()})

    def write(self, path: str | os.PathLike) -> Path:
        from foglayer._dirs import atomic_write

        p = Path(path)
        atomic_write(p, self.to_json().encode())
        os.chmod(p, 0o600)
        return p


def _tls_context(creds: Creds, url: str) -> ssl.SSLContext | None:
    if not (creds.ca or creds.cert or url.startswith("tls://")):
        return None
    ctx = ssl.create_default_context(cafile=creds.ca) if creds.ca else ssl.create_default_context()
    if creds.cert:
        ctx.load_cert_chain(creds.cert, creds.key)
    return ctx


async def connect(server: str | None = None, creds: Creds | None = None, *, name: str = "fog",
                  inbox_prefix: str | None = None, errors: list | None = None,
                  reconnect: bool = True, timeout: float = 5.0) -> Client:
    """Connect to the bus. ``errors`` collects asynchronous server errors (permissions)."""
    creds = creds or Creds()
    url = server or creds.server
    if not url:
        raise BusError("no server given", remedy="server")
    if "://" not in url:
        url = f"nats://{url}"
    opts: dict = {"name": name, "allow_reconnect": reconnect, "connect_timeout": max(1, int(timeout)),
                  "max_reconnect_attempts": -1 if reconnect else 0, "reconnect_time_wait": 0.5}
    if creds.user:
        opts.update(user=creds.user, password=creds.password)
    if creds.jwt_file:
        try:
            import nkeys  # noqa: F401 - nats-py signs with it
        except ImportError:
            raise BusError(f"{creds.jwt_file}: a NATS .creds file needs the nkeys package "
                           "(pip install nkeys)") from None
        opts["user_credentials"] = creds.jwt_file
    if inbox_prefix:
        opts["inbox_prefix"] = inbox_prefix
    try:
        tls = _tls_context(creds, url)
    except (OSError, ssl.SSLError) as e:
        raise BusError(f"TLS setup failed: {e}") from None
    if tls is not None:
        opts["tls"] = tls
        if url.startswith("nats://"):
            url = "tls://" + url[len("nats://"):]

    async def on_error(e: Exception) -> None:
        if errors is not None:
            errors.append(e)

    async def quiet(*_a) -> None:
        return None

    opts.update(disconnected_cb=quiet, reconnected_cb=quiet, closed_cb=quiet)
    failures: list[Exception] = []

    async def on_connect_error(e: Exception) -> None:
        failures.append(e)

    try:
        return await asyncio.wait_for(_connect_once(url, opts, on_connect_error, on_error),
                                      timeout + 1)
    except (nats.errors.Error, OSError, TimeoutError) as e:
        why = failures[-1] if failures else e
        raise BusError(f"cannot connect to {url}: {_reason(why)}") from None


async def _connect_once(url: str, opts: dict, on_connect_error, on_error) -> Client:
    # While connecting, errors go to ``failures``; afterwards to the caller's list.
    nc = Client()
    target = {"cb": on_connect_error}

    async def route(e: Exception) -> None:
        await target["cb"](e)

    opts = dict(opts, error_cb=route)
    reconnect = opts.pop("allow_reconnect")
    attempts = opts.pop("max_reconnect_attempts")
    # Several servers (a cluster, or a site's servers), comma-separated: the client fails over.
    servers = [u if "://" in u else f"nats://{u}" for u in url.split(",") if u]
    await nc.connect(servers, allow_reconnect=reconnect, max_reconnect_attempts=attempts, **opts)
    target["cb"] = on_error
    return nc


def _reason(e: BaseException) -> str:
    if isinstance(e, nats.errors.AuthorizationError) or "uthorization" in str(e):
        return "authorization refused (wrong or missing credentials)"
    if isinstance(e, ConnectionRefusedError):
        return "connection refused (is the server running?)"
    if isinstance(e, ssl.SSLError):
        return f"TLS: {e.reason or e}"
    text = str(e) or type(e).__name__
    return text.splitlines()[0]


def is_permission_error(e: BaseException) -> bool:
    return "permissions violation" in str(e).lower()


async def ensure_state(js, replicas: int = 1) -> dict:
    """Create (or open) the KV buckets, the Object Store and the streams; returns the KV handles.

    ``replicas``: copies of each (3 on a 3-server hub: the state survives losing a server)."""
    from nats.js.api import ObjectStoreConfig, RetentionPolicy, StreamConfig
    from nats.js.errors import BucketNotFoundError, NotFoundError

    kvs = {}
    for bucket, history, ttl in ((APPS, 5, None), (PLACEMENTS, 1, None), (NODES, 1, None),
                                 (DECISIONS, 1, None), (LEADER, 1, None), (TRUST, 1, None), (ATTEST, 1, None),
                                 (CORDON, 1, None), (SNAPSHOTS, 1, None),
                                 (INSTANCES, 1, INSTANCES_TTL)):
        try:
            kvs[bucket] = await js.key_value(bucket)
        except (BucketNotFoundError, NotFoundError):
            try:
                kvs[bucket] = await js.create_key_value(bucket=bucket, history=history, ttl=ttl,
                                                        replicas=replicas)
            except Exception:  # noqa: BLE001 - another process created it first
                kvs[bucket] = await js.key_value(bucket)
    for store in (MODULES, SNAP_PAGES):
        try:
            await js.object_store(store)
        except (BucketNotFoundError, NotFoundError):
            try:
                await js.create_object_store(store, ObjectStoreConfig(replicas=replicas))
            except Exception:  # noqa: BLE001
                await js.object_store(store)
    for name, subjects, max_msgs, max_bytes in (
            (LOGS_STREAM, [ALL_LOGS], 200_000, 64 << 20),
            (EVENTS_STREAM, [f"{EVENTS}.>"], 10_000, 16 << 20),
            (USAGE_STREAM, [ALL_USAGE], 1_000_000, 256 << 20)):
        try:
            await js.stream_info(name)
        except NotFoundError:
            try:
                await js.add_stream(StreamConfig(name=name, subjects=subjects, max_msgs=max_msgs,
                                                 max_bytes=max_bytes, num_replicas=replicas,
                                                 retention=RetentionPolicy.LIMITS))
            except Exception:  # noqa: BLE001
                await js.stream_info(name)
    return kvs


async def open_state(js) -> dict:
    """Open the KV buckets (made by ``fog up`` or a controller)."""
    from nats.js.errors import BucketNotFoundError, NotFoundError

    try:
        return {b: await js.key_value(b)
                for b in (APPS, PLACEMENTS, NODES, DECISIONS, LEADER, TRUST, INSTANCES,
                          ATTEST, CORDON)}
    except (BucketNotFoundError, NotFoundError):
        raise BusError("the cluster state does not exist yet: start a controller "
                       "(`fog controller` or `fog up`)") from None


# How long the server keeps a watcher's consumer once its client is gone without removing it
# (a crash, a lost link, a cancel while it was being made). nats-py's KV watch asks for 5 min,
# so a thousand watches in a row hit the server's consumer limit.
WATCH_IDLE = 10.0
LONG_WATCH = 300.0  # a controller's standing watch keeps its consumer through a partition
_CLEANUPS: set[asyncio.Task] = set()  # removals left running when their creator was cancelled


async def drop_consumer(sub) -> None:
    """Unsubscribe a JetStream push subscription and delete its ephemeral consumer now.

    nats-py's ``unsubscribe`` leaves the consumer to the server's inactivity timer; an ordered
    consumer names its current consumer in ``_consumer`` (nats-py 2.x; renamed on reset, so read
    it last). Best effort and bounded: a consumer we cannot reach goes after its idle threshold.
    """
    try:
        await sub.unsubscribe()
    except Exception:  # noqa: BLE001 - closed connection or already unsubscribed
        pass
    name = getattr(sub, "_consumer", None)
    if name:
        try:
            await asyncio.wait_for(sub._js.delete_consumer(sub._stream, name), 2.0)
        except Exception:  # noqa: BLE001 - gone already, or no server: the idle threshold removes it
            pass


async def _drop_watcher(watcher) -> None:
    with contextlib.suppress(Exception):  # a closed connection: the consumer is still deleted
        await watcher.stop()  # (also ends an ``async for`` over the watcher)
    await drop_consumer(watcher._sub)


def _drop_when_made(making: asyncio.Future) -> None:
    def made(f: asyncio.Future) -> None:
        if not f.cancelled() and f.exception() is None:
            task = asyncio.ensure_future(_drop_watcher(f.result()))
            _CLEANUPS.add(task)
            task.add_done_callback(_CLEANUPS.discard)
    making.add_done_callback(made)


@contextlib.asynccontextmanager
async def watching(kv, keys: str = ">", *, idle: float = WATCH_IDLE, **kwargs) -> AsyncIterator:
    """A KV watcher (``kv.watch(keys)``) whose consumer is deleted when the block ends: on
    return, error, timeout and cancellation, including a cancel while it is being made.
    ``idle``: how long the server keeps the consumer of a client that went without a word."""
    making = asyncio.ensure_future(kv.watch(keys, inactive_threshold=idle, **kwargs))
    try:
        watcher = await asyncio.shield(making)
    except asyncio.CancelledError:
        _drop_when_made(making)  # its consumer may exist already: delete it once made
        raise
    try:
        yield watcher
    finally:
        await _drop_watcher(watcher)


async def next_entry(watcher, timeout: float):
    """The watcher's next entry (None: the end of what it found at start), else TimeoutError.

    Not nats-py's ``updates``: its ``asyncio.wait_for`` (Python 3.11) swallows a cancel that
    lands as an entry arrives, and a cancelled ``wait`` then ran on to its own timeout."""
    async with asyncio.timeout(timeout):
        return await anext(watcher)


async def kv_snapshot(kv) -> dict[str, bytes]:
    """Every live key of a bucket and its value (one watcher, not a get per key)."""
    out: dict[str, bytes] = {}
    seen = False
    async with watching(kv) as watcher:
        while True:
            entry = await next_entry(watcher, 5.0)
            if entry is None:
                # nats-py marks "nothing at start" from the consumer's counts, which can come
                # before an entry already on its way (under load `fog ps` listed no apps):
                # the mark ends the read only for a bucket that holds nothing.
                if seen or (await kv.status()).values == 0:
                    break
                continue
            seen = True
            if entry.operation in ("DEL", "PURGE"):
                out.pop(entry.key, None)
            else:
                out[entry.key] = entry.value
            if entry.delta == 0:
                break
    return out
