"""Sites: a NATS cluster in the cloud, and a leaf-node server per edge site.

``fog up --sites cloud:3,edge-a,edge-b@25`` describes the continuum as sites:

- the first site is the hub: ``N`` NATS servers in one cluster (routes between each pair),
  JetStream on each, so KV buckets and streams keep 3 replicas and survive the loss of one
  server. The controller connects here.
- every other site is one leaf-node server (no JetStream of its own: its nodes use the hub's
  through the leaf link). A site's nodes connect only to their own leaf server, so an
  invocation between a client and an app at the same site never crosses the link: NATS
  forwards a message over a leaf connection only where the other side has interest.
- each leaf link runs through a :class:`~foglayer.cluster._relay.Relay` per hub server, with
  the site's one-way delay (``@MS``, default 10 ms): real, measurable latency, and a place to
  cut the link (a partition) and heal it.

All servers share one user table (the same roles and passwords everywhere); the leaf servers
log in to the hub as the user ``leaf``. The same configuration runs across machines: give each
server its own host (``docs/continuum.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from foglayer.cluster._bus import Creds, check_name
from foglayer.cluster._protocol import JS_DOMAIN
from foglayer.cluster._relay import Relay
from foglayer.cluster._server import Auth, EmbeddedServer, free_port
from foglayer.errors import FogError

DEFAULT_DELAY_MS = 10.0


@dataclass(frozen=True)
class SiteSpec:
    """One site: its name, how many servers (the hub only), and its link's one-way delay."""

    name: str
    servers: int = 1
    delay_ms: float = DEFAULT_DELAY_MS
    hub: bool = False


def parse_sites(text: str) -> list[SiteSpec]:
    """``cloud:3,edge-a,edge-b@25``: the first site is the hub (``:N`` servers, 1 to 5);
    ``@MS`` is a leaf site's one-way link delay in milliseconds."""
    out: list[SiteSpec] = []
    for i, part in enumerate(p.strip() for p in text.split(",") if p.strip()):
        m = re.fullmatch(r"([a-z][a-z0-9-]{0,30})(?::(\d+))?(?:@(\d+(?:\.\d+)?))?", part)
        if not m:
            raise FogError(f"{part!r}: expected NAME[:SERVERS][@DELAY_MS], e.g. cloud:3 "
                           "or edge-a@20", where="sites")
        name, servers, delay = m.group(1), int(m.group(2) or 1), float(m.group(3) or DEFAULT_DELAY_MS)
        if i == 0 and not 1 <= servers <= 5:
            raise FogError(f"{part!r}: the hub takes 1 to 5 servers", where="sites")
        if i > 0 and m.group(2) and servers != 1:
            raise FogError(f"{part!r}: a leaf site has one server (only the hub, "
                           f"{out[0].name}, is a cluster)", where="sites")
        if i == 0 and m.group(3):
            raise FogError(f"{part!r}: the hub has no link delay (its leaves do)", where="sites")
        if delay > 5000:
            raise FogError(f"{part!r}: a delay above 5000 ms is not a link", where="sites")
        out.append(SiteSpec(check_name(name), servers, delay, hub=i == 0))
    if not out:
        raise FogError("no sites given", where="sites")
    names = [s.name for s in out]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise FogError(f"site {dup!r} is named twice", where="sites")
    return out


@dataclass
class _Ports:
    client: int
    route: int = 0
    leaf: int = 0


@dataclass
class Site:
    """A running site: its servers, and (a leaf site) the relays of its link to the hub."""

    spec: SiteSpec
    servers: list[EmbeddedServer]
    relays: list[Relay] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def url(self) -> str:
        """Where this site's clients connect (every server of the site, for failover)."""
        return ",".join(s.url for s in self.servers)

    def cut(self) -> None:
        """Partition the site from the hub: every relay of its link drops and refuses."""
        for r in self.relays:
            r.cut()

    def heal(self) -> None:
        for r in self.relays:
            r.heal()

    def link_bytes(self) -> int:
        """Bytes that crossed this site's link, both directions, since it started."""
        return sum(r.stats.up + r.stats.down for r in self.relays)


class SiteCluster:
    """Every site's servers under ``root``/``<site>``/``<server>``, sharing one user table.

    Ports are chosen once and kept in ``root``/``sites.json`` so that a restart resumes the
    same topology (JetStream's cluster remembers its peers by name and address).
    """

    controller_key: str | None = None  # written into every credentials file (foglayer.trust)

    def __init__(self, root: str | os.PathLike, sites: list[SiteSpec], *, nodes: tuple[str, ...] = (),
                 host: str = "127.0.0.1") -> None:
        if not sites or not sites[0].hub:
            raise FogError("a site cluster needs a hub site first")
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        self.host, self.specs = host, sites
        self.auth = Auth(self.root / "users.json")
        for user in ("admin", "controller", "leaf", *(f"node-{check_name(n)}" for n in nodes)):
            self.auth.ensure(user)
        self.ports = self._ports()
        self.sites: dict[str, Site] = {}
        self._sentinel: _Sentinel | None = None

    # -- layout ---------------------------------------------------------------------------

    def _ports(self) -> dict[str, list[_Ports]]:
        path = self.root / "sites.json"
        saved: dict = {}
        if path.exists():
            try:
                saved = json.loads(path.read_text())
            except (OSError, ValueError) as e:
                raise FogError(f"{path}: unreadable ({e}); remove it to start over") from None
        ports: dict[str, list[_Ports]] = {}
        for s in self.specs:
            old = saved.get(s.name) or []
            if len(old) == s.servers and all(isinstance(p, dict) for p in old):
                try:
                    ports[s.name] = [_Ports(int(p["client"]), int(p.get("route", 0)),
                                            int(p.get("leaf", 0))) for p in old]
                    continue
                except (KeyError, TypeError, ValueError):
                    pass
            ports[s.name] = [_Ports(free_port(self.host),
                                    free_port(self.host) if s.hub else 0,
                                    free_port(self.host) if s.hub else 0)
                             for _ in range(s.servers)]
        from foglayer._dirs import atomic_write

        atomic_write(path, json.dumps({k: [vars(p) for p in v] for k, v in ports.items()},
                                      indent=2).encode())
        return ports

    @property
    def hub(self) -> SiteSpec:
        return self.specs[0]

    def _hub_config(self, i: int) -> dict:
        hub = self.hub
        ports = self.ports[hub.name]
        # no_advertise: a leaf must reach the hub only through its link (the relays), never
        # learn the hub servers' own leaf ports and go around it.
        extra: dict = {"leafnodes": {"listen": f"{self.host}:{ports[i].leaf}", "no_advertise": True,
                                     "authorization": {"user": "leaf",
                                                       "password": self.auth.users["leaf"]}}}
        if hub.servers > 1:
            extra["cluster"] = {
                "name": f"fog-{hub.name}",
                "listen": f"{self.host}:{ports[i].route}",
                "routes": [f"nats-route://{self.host}:{p.route}" for j, p in enumerate(ports) if j != i],
            }
        return extra

    def _leaf_config(self, relays: list[Relay]) -> dict:
        password = self.auth.users["leaf"]
        urls = [f"nats-leaf://leaf:{password}@{r.host}:{r.port}" for r in relays]
        return {"leafnodes": {"remotes": [{"urls": urls}], "reconnect": 1}}

    # -- life cycle -----------------------------------------------------------------------

    def start(self, timeout: float = 20.0) -> SiteCluster:
        hub = self.hub
        servers = [EmbeddedServer(self.root / hub.name / f"{hub.name}-{i + 1}",
                                  self.ports[hub.name][i].client, host=self.host,
                                  name=f"{hub.name}-{i + 1}", auth=self.auth,
                                  extra=self._hub_config(i))
                   for i in range(hub.servers)]
        # The servers of a cluster wait for each other: start all, then wait for each.
        for s in servers:
            s.spawn()
        self.sites[hub.name] = Site(hub, servers)
        for s in servers:
            s.wait_ready(timeout)
        self._wait_jetstream(timeout)
        for spec in self.specs[1:]:
            relays = [Relay((self.host, p.leaf), spec.delay_ms / 1000, host=self.host).start()
                      for p in self.ports[hub.name]]
            leaf = EmbeddedServer(self.root / spec.name / spec.name, self.ports[spec.name][0].client,
                                  host=self.host, name=spec.name, auth=self.auth, jetstream=False,
                                  extra=self._leaf_config(relays))
            self.sites[spec.name] = Site(spec, [leaf.start(timeout)], relays)
        (self.root / "creds").mkdir(mode=0o700, exist_ok=True)
        for user in self.auth.users:
            self.creds_path(user)
        self._sentinel = _Sentinel({name: self.creds("admin", name) for name in self.sites}).start()
        return self

    def _wait_jetstream(self, timeout: float) -> None:
        """A cluster's JetStream answers only once its servers have elected a meta leader."""
        import asyncio

        import nats

        c = self.creds("admin")

        async def go() -> None:
            nc = await nats.connect(c.server.split(","), user=c.user, password=c.password,
                                    connect_timeout=2, max_reconnect_attempts=-1)
            try:
                js = nc.jetstream(domain=JS_DOMAIN)
                deadline = time.monotonic() + timeout
                while True:
                    try:
                        await js.account_info()
                        return
                    except Exception:  # noqa: BLE001 - not elected yet: any error means wait
                        if time.monotonic() > deadline:
                            raise FogError(f"the {self.hub.name} site's JetStream did not elect a "
                                           f"leader within {timeout:g} s") from None
                        await asyncio.sleep(0.2)
            finally:
                await nc.close()

        asyncio.run(go())

    def stop(self) -> None:
        if self._sentinel is not None:
            self._sentinel.stop()
            self._sentinel = None
        for site in reversed(list(self.sites.values())):
            for s in site.servers:
                s.stop()
            for r in site.relays:
                r.stop()
        self.sites.clear()

    def __enter__(self) -> SiteCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- credentials ----------------------------------------------------------------------

    def creds(self, user: str, site: str | None = None) -> Creds:
        """``user``'s credentials at ``site`` (default: the hub)."""
        s = self.sites[site or self.hub.name]
        return Creds(server=s.url, user=user, password=self.auth.users[user],
                     controller_key=self.controller_key)

    @property
    def url(self) -> str:
        return self.sites[self.hub.name].url if self.sites else ""

    def creds_path(self, user: str, site: str | None = None) -> Path:
        """A credentials file for ``user`` at ``site`` (default: the hub), written now."""
        name = user if site in (None, self.hub.name) else f"{user}@{site}"
        return self.creds(user, site).write(self.root / "creds" / f"{name}.creds")

    def add_node(self, node: str, site: str | None = None) -> Path:
        """Give node ``node`` a user on every server (each reloads its config)."""
        self.auth.ensure(f"node-{check_name(node)}")
        for s in self.sites.values():
            for server in s.servers:
                server.reload()
        return self.creds_path(f"node-{node}", site)


class _Sentinel:
    """An echo responder at every site (``fog.site.<site>.echo``, queue ``echo``).

    The controller asks a site's echo before it declares the site's silent nodes lost: an
    answer means the site is reachable and the nodes died; no answer means the site is cut
    off (or down as a whole), and its apps stay where they are. On one machine ``fog up``
    runs this for every site; across machines, each site's nodes answer for it.
    """

    def __init__(self, creds: dict[str, Creds]) -> None:
        self.creds = creds
        self._loop = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None

    def start(self) -> _Sentinel:
        ready = threading.Event()

        async def main() -> None:
            from foglayer.cluster._bus import connect
            from foglayer.cluster._protocol import site_echo

            self._stop = asyncio.Event()
            conns = []
            for site, c in self.creds.items():
                nc = await connect(creds=c, name=f"fog-sentinel-{site}")
                conns.append(nc)

                async def echo(msg, nc=nc) -> None:
                    if msg.reply:
                        await nc.publish(msg.reply, b"")
                await nc.subscribe(site_echo(site), queue="echo", cb=echo)
                await nc.flush()
            ready.set()
            await self._stop.wait()
            for nc in conns:
                with contextlib.suppress(Exception):
                    await nc.close()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(main())
            except Exception:  # noqa: BLE001 - the sites work without it (nodes answer too)
                ready.set()
            finally:
                self._loop.close()

        self._thread = threading.Thread(target=run, name="fog-sentinel", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(5)
