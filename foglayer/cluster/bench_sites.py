"""``fog bench cluster --sites``: the continuum at scale, side by side in one run.

Three continua on this machine, one after the other, every component a process:

- sites (``cloud:3,edge-a@10,edge-b@25``: a 3-server hub with JetStream replicas, two leaf
  sites behind delaying relays, two controllers, a node per site): deploy-to-running over N
  apps spread across the sites; invoke at the edge, local (a client at edge-a, the app at
  edge-a: the bytes that crossed the leaf link are counted) and across the link; failover
  after ``kill -9`` of a node, of one hub server and of the leading controller; a partition
  of edge-a healed, timed until the consistency checker says consistent (its verdict shown);
- density: one node agent holding N idle kv service instances (10 apps of up to 100
  replicas): its RSS (``/proc/PID/status``), placement-to-running, invoke with them all
  present; and the node's instantiation path (:class:`LocalInstance`) timed in this process;
- observability: invoke latency on a node serving Prometheus metrics (scraped every 0.2 s)
  against one without, interleaved; the web view (``fog ui``, a process) page load and the
  time from a deploy to the server-sent event that carries it.

Then the scheduler alone (the controller's full scan), next to Nomad's and Kubernetes' figures.
"""

from __future__ import annotations

import http.client
import math
import queue
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from foglayer.cluster._abi import ServiceError
from foglayer.cluster._bus import Creds
from foglayer.cluster._consistency import check_continuum
from foglayer.cluster._manifest import load
from foglayer.cluster._server import free_port
from foglayer.cluster._sites import parse_sites
from foglayer.cluster._spec import decode_spec
from foglayer.cluster._sync import SyncClient, wait_until
from foglayer.cluster._up import Continuum, NodeSpec, site_nodes
from foglayer.cluster.bench import (
    _manifest,
    invoke_rtt,
    kill_leader,
    kill_node,
    pct,
    print_table,
    say,
    scheduler_rows,
)

SITES = "cloud:3,edge-a@10,edge-b@25"
SMALL = "{memory: 2MiB, max_fds: 8}"  # many on one node: memory and fds reserved
Rows = list[tuple[str, str]]
SCRAPE = 0.2  # seconds between scrapes while timing invokes (Prometheus's default: 15 s)


def _ms(xs: list[float]) -> str:
    return f"{1e3 * pct(xs, 50):.1f} / {1e3 * pct(xs, 99):.1f} ms"


def _us(xs: list[float]) -> str:
    return f"{1e6 * pct(xs, 50):.0f} / {1e6 * pct(xs, 99):.0f} µs"


def _progress(n: int, what: str):
    from rich.console import Console
    from rich.progress import track

    return track(range(n), description=what, console=Console(stderr=True), transient=True)


def _ready(client, n: int, timeout: float = 120) -> None:
    wait_until(lambda: len([r for r in client.nodes().values() if r["state"] == "ready"]) >= n,
               timeout, f"{n} ready nodes")


def _deploy(client, path: Path, timeout: float = 60) -> dict:
    """Deploy one replica and poll its placement until it runs (``client.wait`` watches
    through a consumer per call: a thousand deploys in a row on the 3-server hub ran into
    JetStream's "maximum consumers limit reached")."""
    m = load(path)
    rec = client.deploy(m)

    def running():
        (p,) = client.app_placements(m.name, 1)
        return p if p and p["generation"] == rec["generation"] and p["state"] == "running" else None

    return wait_until(running, timeout, f"{m.name} running", interval=0.01)


def _stop_all(client, names: list[str], timeout: float = 300) -> None:
    for n in names:
        client.stop(n)
    gone = set(names)
    wait_until(lambda: not any(k.rsplit(".", 1)[0] in gone for k in client.placements()),
               timeout, "the apps to go")


# -- sites ------------------------------------------------------------------------------------


def sites_rows(d: Path, apps: int, invokes: int, timeouts: dict,
               fault_limit: float = 120.0) -> Rows:
    rows: Rows = []
    specs = parse_sites(SITES)
    c = Continuum(d / "sites", site_nodes(specs), sites=specs, controllers=2, **timeouts)
    say(f"== sites {SITES}: 3 hub servers, 2 leaf sites behind relays, 2 controllers, "
        f"3 nodes (node timeout {c.node_timeout:g} s, lease ttl {c.lease_ttl:g} s)")
    c.start()
    hub = c.client("fog-bench")
    edge = None
    try:
        _ready(hub, 3)
        names = [s.name for s in specs]
        lat, ctl, first = [], [], None
        bulk = [f"s{i:04d}" for i in range(apps)]
        for i in _progress(apps, f"deploy {apps} apps across the sites"):
            extra = f"preferences: {{site: {names[i % len(names)]}}}\n"
            path = _manifest(d, bulk[i], extra, SMALL)
            t = time.time()
            p = _deploy(hub, path)
            dt = p["running_at"] - t  # (the controller's clock is this machine's)
            if first is None:
                first = dt  # (it also compiles the module)
            else:
                lat.append(dt)
            ctl.append(p["running_at"] - p["scheduled_at"])
        where: dict[str, int] = {}
        for p in hub.placements().values():
            where[p["node"]] = where.get(p["node"], 0) + 1
        rows.append((f"deploy-to-running, {apps} apps across sites, p50 / p99",
                     f"{_ms(lat)} (first, with the compile: {1e3 * (first or 0):.0f} ms; "
                     f"{', '.join(f'{n} {k}' for n, k in sorted(where.items()))})"))
        rows.append(("  of which placement-to-running p50 / p99", _ms(ctl)))
        _stop_all(hub, bulk)

        say(f"== invoke at the edge: {invokes} calls from edge-a, then from the cloud")
        p = _deploy(hub, _manifest(d, "near", "preferences: {site: edge-a}\n", SMALL))
        # (right after a thousand deploys and stops, the first call may find no responder
        # while the leaf link catches up: retried)
        wait_until(lambda: hub.invoke("near", "put", b"name=ada", timeout=5) is not None, 60,
                   "the first call of near")
        edge = SyncClient(Creds.load(c.server.creds_path("admin", "edge-a")), "fog-bench-edge")
        link = c.server.sites["edge-a"]
        wait_until(lambda: edge.invoke("near", "get", b"name", timeout=5), 60,
                   "the first call from edge-a")  # (its route to the app, looked up once)
        b0, t0 = link.link_bytes(), time.perf_counter()
        time.sleep(3)
        idle = (link.link_bytes() - b0) / (time.perf_counter() - t0)
        b0, t0 = link.link_bytes(), time.perf_counter()
        local = invoke_rtt(edge, "near", invokes)
        crossed, spent = link.link_bytes() - b0, time.perf_counter() - t0
        far = invoke_rtt(hub, "near", invokes)
        rows.append((f"invoke at edge-a, local (client and app at {p['node']}) p50 / p99",
                     f"{_us(local)}; {crossed:,} bytes crossed the leaf link during the "
                     f"{invokes + 50} calls ({crossed / (invokes + 50):.0f} per call; the "
                     f"link's idle traffic, heartbeats and probes: {idle * spent:,.0f} bytes "
                     "in as long)"))
        rows.append((f"invoke across the leaf link (cloud -> edge-a, "
                     f"{link.spec.delay_ms:g} ms each way) p50 / p99", _us(far)))

        say("== failover: kill -9 the node at edge-b")
        _deploy(hub, _manifest(d, "fo", "preferences: {site: edge-b}\n", SMALL))
        victim, q, took = kill_node(c, hub, "fo", 120)
        rows.append((f"failover: node {victim} killed -9 -> fo running on {q['node']}",
                     f"{took:.2f} s (node timeout {c.node_timeout:g} s; "
                     f"{1e3 * (q['running_at'] - q['lost_at']):.0f} ms after the loss was "
                     "detected)"))

        say("== failover: kill -9 one of the three hub servers")
        server = c.server.sites["cloud"].servers[0]
        t_kill = time.time()
        server.proc.kill()
        server.proc.wait()
        path = _manifest(d, "hub", "", SMALL)

        def accepted():  # (a write may fail while the servers elect new stream leaders)
            try:
                return hub.deploy(load(path))
            except Exception:  # noqa: BLE001
                return None

        def running(gen: int):
            q = hub.placements().get("hub.0")
            return q if q and q["generation"] == gen and q["state"] == "running" else None

        try:
            rec = wait_until(accepted, fault_limit, "a deploy accepted", interval=0.1)
            took_write = time.time() - t_kill
            q = wait_until(lambda: running(rec["generation"]), fault_limit, "the deploy to run",
                           interval=0.1)
            took = (f"{q['running_at'] - t_kill:.2f} s (the deploy written "
                    f"{took_write:.2f} s after the kill)")
        except TimeoutError as e:
            took = f"NOT within {fault_limit:g} s ({e})"
            for key in sorted(k for k in c.procs if k.startswith("controller-")):
                say(f"-- {key}'s log, last lines:\n{c.log_tail(key)}")
        def answer() -> bytes | str:
            try:
                return hub.invoke("near", "get", b"name", timeout=5)
            except ServiceError as e:  # an answer, but not the state it had
                return str(e)

        served = wait_until(answer, fault_limit, "an invoke after the loss of a hub server")
        where = hub.app_placements("near", 1)[0] or {}
        if served != b"ada":
            served = f"{served!r}; near now on {where.get('node')}, {where.get('restarts')} restarts"
        rows.append((f"failover: hub server {server.name} killed -9 -> a new deploy runs",
                     f"{took}; kv state kept: "
                     f"{'yes' if served == b'ada' else f'NO ({served})'}"))

        say("== failover: kill -9 the leading controller")
        lead, new, took = kill_leader(c, hub)
        t = time.perf_counter()
        _deploy(hub, _manifest(d, "after", "", SMALL))
        rows.append((f"failover: leader {lead} killed -9 -> {new} leads",
                     f"{took:.2f} s (lease ttl {c.lease_ttl:g} s); the next deploy ran in "
                     f"{1e3 * (time.perf_counter() - t):.0f} ms"))

        say("== partition: cut edge-a, wait until unreachable, heal, check")
        t_cut = time.time()
        link.cut()
        wait_until(lambda: hub.nodes()["edge-a"]["state"] == "unreachable", 120,
                   "edge-a marked unreachable")
        unreachable = time.time() - t_cut
        during = edge.invoke("near", "get", b"name")
        t_heal = time.time()
        link.heal()
        last: list = [None]

        def consistent():
            last[0] = hub.run(check_continuum(hub.client))
            return last[0].ok

        try:
            wait_until(consistent, fault_limit, "a consistent continuum", interval=0.1)
            healed = f"{time.time() - t_heal:.2f} s"
        except TimeoutError:
            healed = f"NOT within {fault_limit:g} s"
        rows.append(("partition of edge-a: cut -> unreachable",
                     f"{unreachable:.2f} s; local invoke during the cut: "
                     f"{'served' if during == b'ada' else repr(during)}"))
        rows.append(("  heal -> consistent (checker listens 1.5 s a look)",
                     f"{healed}; checker: {last[0]}"))
    finally:
        if edge is not None:
            edge.close()
        hub.close()
        c.stop()
    return rows


# -- density ----------------------------------------------------------------------------------


def _status(pid: int) -> dict[str, str]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def _rss(pid: int) -> int:
    return int(_status(pid)["VmRSS"].split()[0]) << 10


def instantiate_times(spec_json: dict, wasm: Path, n: int) -> list[float]:
    """The node's path for a new service instance (:class:`LocalInstance`: stdio pipes, WASI,
    instance, ``_initialize``), from a warm module, ``n`` times, all kept until the end."""
    from foglayer.cluster._exec import LocalInstance
    from foglayer.cluster._exec import load as load_module

    spec = decode_spec(spec_json)
    module = load_module(str(wasm), spec)
    held, out = [], []
    try:
        for _ in range(n):
            t = time.perf_counter()
            li = LocalInstance(module, spec, [], duty=1.0, on_output=lambda *_: None)
            li.start_service()
            out.append(time.perf_counter() - t)
            held.append(li)
    finally:
        for li in held:
            li.close()
    return out


def density_rows(d: Path, instances: int, invokes: int) -> Rows:
    rows: Rows = []
    per = min(100, instances)
    apps = math.ceil(instances / per)
    c = Continuum(d / "density", [NodeSpec("dense", "cloud")])
    say(f"== density: {instances} kv service instances ({apps} apps x {per} replicas) "
        "on one node agent")
    c.start()
    client = c.client("fog-bench")
    try:
        _ready(client, 1)
        pid = c.procs["node-dense"].pid
        time.sleep(1)
        base = _rss(pid)
        names = [f"d{i:02d}" for i in range(apps)]
        ctl: list[float] = []
        t0 = time.perf_counter()
        for i in _progress(apps, f"deploy {apps} apps x {per} replicas"):
            name = names[i]
            m = load(_manifest(d, name, f"replicas: {per}\n", SMALL))
            rec = client.deploy(m)
            for p in client.wait(name, rec["generation"], per, 600, states=("running",)):
                ctl.append(p["running_at"] - p["scheduled_at"])
        spent = time.perf_counter() - t0
        time.sleep(2)
        st = _status(pid)
        rss = _rss(pid)
        n = per * apps
        rows.append((f"density: agent RSS with {n} idle kv instances",
                     f"{rss / 2**20:.0f} MiB ({(rss - base) / n / 1024:.0f} KiB per instance "
                     f"over the idle agent's {base / 2**20:.0f} MiB; {st.get('Threads')} "
                     f"threads; target 1,000 within 1 GiB)"))
        rows.append((f"  placement-to-running ({per} replicas at once) p50 / p99",
                     f"{_ms(ctl)} ({n} instances running {spent:.1f} s after the first deploy)"))
        client.invoke(names[0], "put", b"name=ada")  # (the node serves an app from one slot)
        inv = invoke_rtt(client, names[0], invokes)
        rows.append((f"  fog invoke with {n} instances present p50 / p99", _us(inv)))
        spec = client.apps()[names[0]]["spec"]
        (wasm,) = (c.root / "nodes" / "dense" / "modules").glob("*.wasm")
    finally:
        client.close()
        c.stop()
    say(f"== instantiation: the node's path (pipes, WASI, instance, _initialize), {n} times")
    times = instantiate_times(spec, wasm, n)
    rows.append((f"  instantiation from a warm module, node path, {n} kept, p50 / p99",
                 f"{_ms(times)} (target <= 1 ms p50)"))
    return rows


# -- observability ----------------------------------------------------------------------------


class _Sse:
    """A small server-sent-events client in a thread: (arrival time, data) of each event."""

    def __init__(self, port: int, path: str) -> None:
        self.events: queue.Queue[tuple[float, str]] = queue.Queue()
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.conn.request("GET", path)
        self.resp = self.conn.getresponse()
        threading.Thread(target=self._read, daemon=True, name="bench-sse").start()

    def _read(self) -> None:
        try:
            for raw in self.resp:
                line = raw.decode(errors="replace")
                if line.startswith("data: "):
                    self.events.put((time.perf_counter(), line))
        except Exception:  # noqa: BLE001 - the view went away: the bench is over
            pass

    def wait_for(self, text: str, since: float, timeout: float = 30) -> float:
        deadline = time.monotonic() + timeout
        while True:
            t, data = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            if t >= since and text in data:
                return t

    def close(self) -> None:
        self.conn.close()


def observability_rows(d: Path, invokes: int, loads: int = 20, updates: int = 10) -> Rows:
    rows: Rows = []
    c = Continuum(d / "obs", [NodeSpec("with", "cloud", ["--label", "bench=with"]),
                              NodeSpec("without", "cloud", ["--label", "bench=without"],
                                       metrics=False)])
    say(f"== metrics overhead: a node serving Prometheus metrics (scraped every {SCRAPE:g} s) "
        "vs none")
    c.start()
    client = c.client("fog-bench")
    stop = threading.Event()
    ui = None
    try:
        _ready(client, 2)
        for which in ("with", "without"):
            _deploy(client, _manifest(d, f"kv-{which}",
                                      f"constraints: {{labels: {{bench: {which}}}}}\n", SMALL))
            client.invoke(f"kv-{which}", "put", b"name=ada")
        url = f"http://127.0.0.1:{c.metrics_ports['node-with']}/metrics"
        scrapes: list[float] = []

        def scrape() -> None:
            while True:
                t = time.perf_counter()
                with urllib.request.urlopen(url, timeout=10) as r:
                    r.read()
                scrapes.append(time.perf_counter() - t)
                if stop.wait(SCRAPE):
                    return

        threading.Thread(target=scrape, daemon=True, name="bench-scrape").start()
        times: dict[str, list[float]] = {"with": [], "without": []}

        async def go() -> None:
            cl = client.client
            for _ in range(50):
                for which in times:
                    await cl.invoke(f"kv-{which}", "get", b"name")
            for i in range(invokes):
                for which in (("with", "without") if i % 2 else ("without", "with")):
                    t = time.perf_counter()
                    await cl.invoke(f"kv-{which}", "get", b"name")
                    times[which].append(time.perf_counter() - t)

        client.run(go(), timeout=1200)
        stop.set()
        rows.append((f"invoke, node with metrics served and scraped every {SCRAPE:g} s, p50 / p99",
                     f"{_us(times['with'])} ({len(scrapes)} scrapes, p50 "
                     f"{1e3 * pct(scrapes, 50):.1f} ms)"))
        rows.append(("invoke, node without a metrics endpoint, p50 / p99",
                     f"{_us(times['without'])} (interleaved; overhead at p50 "
                     f"{1e6 * (pct(times['with'], 50) - pct(times['without'], 50)):+.0f} µs)"))

        say("== web view: fog ui's page load and live-update latency")
        port, token = free_port(), secrets.token_urlsafe(24)
        t0 = time.perf_counter()
        ui = subprocess.Popen([sys.executable, "-m", "foglayer.cli", "ui", "--creds",
                               str(c.creds("admin")), "--port", str(port), "--token", token],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              stdin=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"

        def get(path: str) -> bytes:
            with urllib.request.urlopen(f"{base}{path}", timeout=10) as r:
                return r.read()

        wait_until(lambda: get(f"/api/state?token={token}"), 60, "the web view's first state",
                   interval=0.02)
        started = time.perf_counter() - t0
        page, state = [], []
        for _ in range(loads):
            t = time.perf_counter()
            get(f"/?token={token}")
            page.append(time.perf_counter() - t)
            t = time.perf_counter()
            get(f"/api/state?token={token}")
            state.append(time.perf_counter() - t)
        rows.append(("web view page load: GET / p50 / p99", f"{_ms(page)} ({loads} loads)"))
        rows.append(("  then GET /api/state p50 / p99",
                     f"{_ms(state)} (fog ui up, first state served: {started:.2f} s)"))
        sse = _Sse(port, f"/api/stream?token={token}")
        try:
            live = []
            for i in range(updates):
                name = f"live{i:02d}"
                path = _manifest(d, name, "", SMALL)
                t = time.perf_counter()
                client.deploy(load(path))
                live.append(sse.wait_for(f'"{name}"', t) - t)
        finally:
            sse.close()
        rows.append(("web view live update: deploy -> SSE event naming it, p50 / p99",
                     f"{_ms(live)} ({updates} deploys; the view reads KV every 0.25 s)"))
    finally:
        stop.set()
        if ui is not None:
            ui.terminate()
            try:
                ui.wait(10)
            except subprocess.TimeoutExpired:
                ui.kill()
                ui.wait()
        client.close()
        c.stop()
    return rows


def run(apps: int = 1000, invokes: int = 1000, density: int = 1000, sim_nodes: int = 10000,
        sim_apps: int = 100000, timeouts: dict | None = None) -> Rows:
    """Every figure of the continuum at scale; print one table and return its rows.
    ``timeouts``: the continuum's node_timeout / lease_ttl / heartbeat (default fog up's)."""
    rows: Rows = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fog-bench-sites-") as tmp:
        d = Path(tmp)
        rows += sites_rows(d, apps, invokes, timeouts or {})
        rows += density_rows(d, density, invokes)
        rows += observability_rows(d, invokes)
    rows += scheduler_rows(sim_nodes, sim_apps)
    print_table(f"foglayer continuum at scale (sites {SITES}; {apps} apps, {invokes} invokes, "
                f"{density} instances; {time.perf_counter() - t0:.0f} s)", rows)
    return rows
