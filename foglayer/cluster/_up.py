"""``fog up``: a whole continuum on one machine, as separate processes.

A :class:`Continuum` under ``root`` (default ``<data dir>/continuum``) holds:

- ``nats/``: the embedded server's config, users, credentials (``creds/*.creds``) and JetStream
  state;
- ``nodes/<name>/``: each node's app directories;
- ``logs/``: one log file per process;
- ``up.json``: the port and the nodes, so that running ``fog up`` again resumes the same
  continuum.

Node profiles stand for the tiers: ``cloud`` (all cores, 8 GiB for apps), ``edge`` (1 GiB)
and ``iot`` (64 MiB, throttled by a fuel rate). ``arm`` is an edge-class node on another CPU:
its agent runs on an aarch64 Python in the arm64 root (``foglayer.toolchain.arm_root``) under
qemu user emulation, and compiles aarch64 code; it shares the host's network, so it reaches
the server on 127.0.0.1. The root has no C compiler: its native libraries (the hot WASI calls,
the dirty-page scan) are built here for aarch64 into the root's cache before its agent starts.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from foglayer.cluster._bus import check_name
from foglayer.cluster._protocol import JS_DOMAIN
from foglayer.cluster._server import EmbeddedServer
from foglayer.cluster._sites import SiteCluster, SiteSpec, parse_sites
from foglayer.errors import FogError

if TYPE_CHECKING:
    import asyncio

    from foglayer.cluster._client import Client
    from foglayer.toolchain import ArmRoot

PROFILES: dict[str, dict] = {
    "cloud": {"labels": {"tier": "cloud", "site": "cloud"}, "max_memory": "8GiB",
              "latency": {"edge": 40, "iot": 45}},
    "edge": {"labels": {"tier": "edge", "site": "edge"}, "max_memory": "1GiB",
             "latency": {"cloud": 40, "iot": 5}, "cpus": 2},
    "iot": {"labels": {"tier": "iot", "site": "iot"}, "max_memory": "64MiB",
            "latency": {"edge": 5, "cloud": 45}, "cpus": 1, "fuel_rate": 100_000_000},
    "arm": {"labels": {"tier": "edge", "site": "edge"}, "max_memory": "1GiB",
            "latency": {"cloud": 40, "iot": 5}, "cpus": 1, "arch": "aarch64"},
}
DEFAULT_NODES = "cloud,edge,iot"


@dataclass
class NodeSpec:
    name: str
    profile: str
    args: list[str] = field(default_factory=list)  # extra `fog node` arguments
    site: str | None = None  # with sites: where it lives (its leaf server, its site label)
    metrics: bool = True  # serve Prometheus metrics (fog bench cluster compares without)
    server: str | None = None  # connect there instead (host:port of a relay to the server)


def site_nodes(sites: list[SiteSpec]) -> list[NodeSpec]:
    """One node per site, named after it: the hub's of the cloud profile, the others edge."""
    return [NodeSpec(s.name, "cloud" if s.hub else "edge", site=s.name) for s in sites]


def parse_nodes(text: str) -> list[NodeSpec]:
    """``cloud,edge,iot`` or ``cloud=2,iot=3`` (names ``cloud-1``, ``cloud-2``, ...)."""
    out: list[NodeSpec] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        m = re.fullmatch(r"([a-z]+)(?:[=:](\d+))?", part)
        if not m or m.group(1) not in PROFILES:
            raise FogError(f"{part!r}: expected PROFILE or PROFILE=COUNT with a profile "
                           f"among {', '.join(PROFILES)}", where="nodes")
        prof, count = m.group(1), int(m.group(2) or 1)
        if not 1 <= count <= 32:
            raise FogError(f"{part!r}: count must be between 1 and 32", where="nodes")
        for i in range(count):
            out.append(NodeSpec(prof if count == 1 else f"{prof}-{i + 1}", prof))
    if not out:
        raise FogError("no nodes given", where="nodes")
    names = [n.name for n in out]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise FogError(f"node {dup!r} is named twice", where="nodes")
    return out


def node_args(spec: NodeSpec, probe: list[str] = ()) -> list[str]:
    """``fog node`` arguments for a profile; with sites, the node's site label is its own and
    it measures its round trip to every site (``probe``) instead of declaring latencies."""
    prof = PROFILES[spec.profile]
    args = ["--max-memory", str(prof["max_memory"])]
    labels = dict(prof["labels"], **({"site": spec.site} if spec.site else {}))
    for k, v in labels.items():
        args += ["--label", f"{k}={v}"]
    if spec.site:
        for site in probe:
            args += ["--probe-site", site]
    else:
        for site, ms in prof.get("latency", {}).items():
            args += ["--latency", f"{site}={ms}"]
    if prof.get("cpus"):
        args += ["--cpus", str(min(prof["cpus"], os.cpu_count() or 1))]
    if prof.get("fuel_rate"):
        args += ["--fuel-rate", str(prof["fuel_rate"])]
    return args + spec.args


def ready_native(root: ArmRoot) -> None:
    """Build the node's native libraries (the hot WASI calls, the dirty-page scan) here for the
    arm64 root, which has no compiler; cached by content, so a hit runs nothing."""
    from foglayer.runtime import NATIVE_CALLS
    from foglayer.snapshot import DIRTY_SCAN

    root.ready_native([NATIVE_CALLS, DIRTY_SCAN])


def _fog(*args: str) -> list[str]:
    return [sys.executable, "-m", "foglayer.cli", *args]


class Continuum:
    """The server, controllers and nodes of one continuum, each a process of its own."""

    def __init__(self, root: str | os.PathLike, nodes: list[NodeSpec], *, port: int | None = None,
                 controllers: int = 1, node_timeout: float = 5.0, lease_ttl: float = 5.0,
                 heartbeat: float = 1.0, env: dict[str, str] | None = None,
                 sites: list[SiteSpec] | None = None, tee: str | None = None,
                 settle: float = 60.0) -> None:
        """``sites``: a hub cluster and leaf sites (:mod:`._sites`) instead of one server;
        each node connects to its own site's server. ``tee``: the nodes' evidence backend."""
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)  # node volumes, logs and credentials live below
        for n in nodes:
            check_name(n.name)
        self.nodes = {n.name: n for n in nodes}
        self.controllers = controllers
        self.node_timeout, self.lease_ttl, self.heartbeat = node_timeout, lease_ttl, heartbeat
        self.settle = settle  # the controllers' --move-settle
        self.env = {**os.environ, **(env or {})}
        self.sites = sites
        self.server: EmbeddedServer | SiteCluster = (
            SiteCluster(self.root / "nats", sites, nodes=tuple(self.nodes)) if sites
            else EmbeddedServer(self.root / "nats", port, nodes=tuple(self.nodes)))
        # The controllers' identity (foglayer.trust): its public key goes into every
        # credentials file, so nodes can check that results and secrets come from it.
        from foglayer.trust import ControllerIdentity

        self.trust_dir = self.root / "trust"
        self.trust_dir.mkdir(mode=0o700, exist_ok=True)
        identity = ControllerIdentity.load_or_create(self.trust_dir)
        import base64

        self.server.controller_key = base64.b64encode(identity.public_der).decode()
        self.tee = tee
        self.procs: dict[str, subprocess.Popen] = {}
        self.metrics_ports: dict[str, int] = {}  # process key -> its Prometheus port
        (self.root / "logs").mkdir(mode=0o700, exist_ok=True)

    # -- processes --------------------------------------------------------------------------

    def _spawn(self, key: str, argv: list[str]) -> subprocess.Popen:
        from foglayer.cluster._proc import die_with_parent, open_log

        log = open_log(self.root / "logs" / f"{key}.log")
        try:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=self.env,
                                    preexec_fn=die_with_parent)
        finally:
            log.close()
        self.procs[key] = proc
        return proc

    def creds(self, user: str) -> Path:
        return self.server.creds_path(user)

    def _metrics_port(self, key: str) -> list[str]:
        """A metrics port for process ``key``, kept across its restarts (fog up lists them)."""
        from foglayer.cluster._server import free_port

        port = self.metrics_ports.setdefault(key, free_port())
        return ["--metrics-port", str(port)]

    def start_controller(self, i: int = 0) -> subprocess.Popen:
        return self._spawn(f"controller-{i}", _fog(
            "controller", "--creds", str(self.creds("controller")), "--name", f"controller-{i}",
            "--node-timeout", str(self.node_timeout), "--lease-ttl", str(self.lease_ttl),
            "--move-settle", str(self.settle), "--trust-dir", str(self.trust_dir), *self._metrics_port(f"controller-{i}")))

    def start_node(self, name: str) -> subprocess.Popen:
        spec = self.nodes[name]
        if isinstance(self.server, SiteCluster):
            creds = self.server.creds_path(f"node-{name}", spec.site)
            probe = [s.name for s in self.server.specs]
        else:
            creds, probe = self.creds(f"node-{name}"), []
            if spec.server:  # the same user, through another address (a relay, in tests)
                import dataclasses

                creds = dataclasses.replace(self.server.creds(f"node-{name}"),
                                            server=spec.server).write(
                    self.server.root / "creds" / f"node-{name}-via.creds")
        argv = _fog(
            "node", "--name", name, "--creds", str(creds),
            "--heartbeat", str(self.heartbeat), "--data-dir", str(self.root / "nodes" / name),
            *(self._metrics_port(f"node-{name}") if spec.metrics else []),
            *(["--tee", self.tee] if self.tee else []), *node_args(spec, probe))
        if PROFILES[spec.profile].get("arch") == "aarch64":
            argv = self._in_arm_root(argv[1:])
        return self._spawn(f"node-{name}", argv)

    def _in_arm_root(self, args: list[str]) -> list[str]:
        """``python ARGS`` on the arm64 root's aarch64 Python; the continuum's files bound in."""
        from foglayer.toolchain import arm_root

        # The root has its own caches and data dirs (its AOT cache holds aarch64 code).
        env = {k: v for k, v in self.env.items() if k.startswith("FOG_")
               and k not in ("FOG_CACHE_DIR", "FOG_DATA_DIR")}
        root = arm_root()
        ready_native(root)
        return root.command(["python", *args], binds=[self.root], env=env)

    def add_node(self, spec: NodeSpec, start: bool = True) -> subprocess.Popen | None:
        self.nodes[spec.name] = spec
        if isinstance(self.server, SiteCluster):
            self.server.add_node(spec.name, spec.site)
        else:
            self.server.add_node(spec.name)
        return self.start_node(spec.name) if start else None

    def kill(self, key: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs[key]
        if proc.poll() is None:
            proc.send_signal(sig)
            proc.wait(10)

    def start(self) -> Continuum:
        self.server.start()
        self._ensure_state()
        for i in range(self.controllers):
            self.start_controller(i)
        for name in self.nodes:
            self.start_node(name)
        return self

    def _ensure_state(self) -> None:
        import asyncio

        from foglayer.cluster._bus import connect, ensure_state
        from foglayer.cluster._protocol import ATTEST

        async def go() -> None:
            nc = await connect(creds=self.server.creds("admin"), reconnect=False)
            try:
                replicas = self.sites[0].servers if self.sites else 1
                kv = await ensure_state(nc.jetstream(domain=JS_DOMAIN), replicas=replicas)
                if self.tee == "sim":
                    await _dev_policy(kv[ATTEST])
            finally:
                await nc.drain()

        asyncio.run(go())

    def stop(self, timeout: float = 10.0) -> None:
        """Nodes first, then controllers (the state stays as it was), then the server."""
        order = sorted(self.procs, key=lambda k: (not k.startswith("node-"), k))
        for key in order:
            p = self.procs[key]
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for key in order:
            p = self.procs[key]
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.server.stop()

    def __enter__(self) -> Continuum:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self, name: str = "fog-test"):
        """A :class:`SyncClient` as ``admin`` (close it when done)."""
        from foglayer.cluster._sync import SyncClient

        return SyncClient(self.server.creds("admin"), name)

    def wait_ready(self, client, timeout: float = 120.0) -> None:
        """Block until the controller sees every node of this continuum ready."""
        from foglayer.cluster._sync import wait_until

        want = sorted(self.nodes)
        wait_until(lambda: sorted(n for n, r in client.nodes().items() if r["state"] == "ready")
                   == want, timeout, f"{len(want)} ready nodes")

    def dead(self) -> list[str]:
        """One line per process of the continuum that has exited."""
        return [f"{k} exited ({p.returncode}): see {self.root / 'logs' / (k + '.log')}"
                for k, p in self.procs.items() if p.poll() is not None]

    def log_tail(self, key: str, lines: int = 20) -> str:
        try:
            text = (self.root / "logs" / f"{key}.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


async def _dev_policy(kv) -> None:
    """The development policy (accepts sim) unless a policy is already set."""
    from foglayer.trust import DEV_POLICY

    try:
        if (await kv.get("policy")).value:
            return
    except Exception:  # noqa: BLE001 - no policy yet
        pass
    await kv.put("policy", DEV_POLICY.to_yaml().encode())


DEV_POLICY_NOTE = ("fog up: nodes attest with the SIMULATED TEE (sim), and the development "
                   "policy accepts it: attestation here proves nothing (`fog policy set FILE` "
                   "for a strict one)")


# -- fog up -------------------------------------------------------------------------------------


def _state_file(root: Path) -> Path:
    return root / "up.json"


Watch = Callable[["Continuum", "Client", "asyncio.Event"], Awaitable[None]]


def up(nodes: str | None = None, *, root: str | os.PathLike | None = None, port: int | None = None,
       watch: Watch, echo: Callable[[str], None] = print, sites: str | None = None,
       on_start: Callable[[Continuum], Callable[[], None] | None] | None = None) -> None:
    """Run ``fog up`` until SIGINT/SIGTERM; resume the state of a previous run under ``root``.

    ``watch(continuum, client, stop)`` shows the continuum (the CLI draws it) until ``stop``;
    ``on_start(continuum)`` runs once it is up (the CLI starts the web view there) and may
    return a function that ``fog up`` calls when it stops.
    """
    import fcntl

    from foglayer._dirs import atomic_write, data_dir
    from foglayer.cluster._server import free_port

    root = Path(root) if root else data_dir("continuum")
    root.mkdir(parents=True, exist_ok=True)
    lock = open(root / "up.lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise FogError(f"fog up is already running on {root} (stop it with Ctrl-C first)") from None
    saved = {}
    if _state_file(root).exists():
        try:
            saved = json.loads(_state_file(root).read_text())
        except (OSError, ValueError):
            saved = {}
    sites = sites or saved.get("sites")
    if sites and nodes:
        raise FogError("--sites and --nodes: give one (with --sites every site gets a node)")
    site_specs = parse_sites(sites) if sites else None
    specs = site_nodes(site_specs) if site_specs else parse_nodes(nodes or saved.get("nodes")
                                                                 or DEFAULT_NODES)
    if port is None and not site_specs:
        port = saved.get("port") or (4222 if _port_free(4222) else free_port())
    text = nodes or saved.get("nodes") or DEFAULT_NODES
    atomic_write(_state_file(root), json.dumps(
        {"sites": sites} if sites else {"port": port, "nodes": text}).encode())
    c = Continuum(root, specs, port=port, sites=site_specs, tee="sim")
    resumed = bool(saved)
    echo(f"fog up: {'resuming' if resumed else 'starting'} a continuum in {root}")
    c.start()
    if isinstance(c.server, SiteCluster):
        for site in c.server.sites.values():
            link = (f", linked to {site_specs[0].name} through relays with {site.spec.delay_ms:g} ms "
                    "each way" if site.relays else " (the hub: JetStream with replicas)")
            echo(f"fog up: site {site.name}: {len(site.servers)} nats-server(s) at {site.url}{link}")
        echo(f"fog up: a controller in {site_specs[0].name}; nodes "
             f"{', '.join(f'{s.name} (at {s.site})' for s in specs)}")
    else:
        echo(f"fog up: nats-server on {c.server.url} (JetStream in {c.server.root / 'jetstream'}), "
             f"a controller, nodes {', '.join(f'{s.name} ({s.profile})' for s in specs)}")
    echo("fog up: metrics (Prometheus): " + ", ".join(
        f"{k} http://127.0.0.1:{p}/metrics" for k, p in sorted(c.metrics_ports.items())))
    admin = c.creds("admin")
    from foglayer.cluster.client import default_creds_path

    if admin.resolve() == default_creds_path().resolve():
        echo(f"fog up: credentials in {c.server.root / 'creds'}; other shells use them by "
             f"default (`fog nodes`, `fog deploy APP.yaml`)")
    else:  # a --dir of its own: other shells find it only when told
        echo(f"fog up: credentials in {c.server.root / 'creds'}; in other shells: "
             f"export FOG_CREDS={admin} (then `fog nodes`, `fog deploy APP.yaml`)")
    echo(DEV_POLICY_NOTE)
    stop_extra = None
    try:
        stop_extra = on_start(c) if on_start is not None else None
        _watch(c, watch)
    finally:
        echo("fog up: stopping (the state stays; `fog up` resumes it)")
        if stop_extra is not None:
            stop_extra()
        c.stop()
        lock.close()


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _watch(c: Continuum, watch: Watch) -> None:
    """Run ``watch`` with an admin client until SIGINT/SIGTERM."""
    import asyncio

    from foglayer.cluster._proc import run_until_signal
    from foglayer.cluster.client import Client

    async def main(stop: asyncio.Event) -> None:
        client = None
        for _ in range(50):
            try:
                client = await Client.open(c.server.creds("admin"), "fog-up")
                break
            except FogError:
                await asyncio.sleep(0.1)
        if client is None:
            raise FogError("fog up: cannot reach the embedded server")
        try:
            await watch(c, client, stop)
        finally:
            await client.close()

    run_until_signal(main)
